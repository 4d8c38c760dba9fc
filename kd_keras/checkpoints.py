"""Reading foreign checkpoints without their framework: PyTorch's legacy ``.pth`` format.

PyTorch before 1.6 saved ``torch.save(state_dict)`` as consecutive pickles: a magic
number, the protocol version, a sys-info dict, then the state dict, whose tensors point
at storages by *persistent id* ``('storage', <storage type>, key, location, numel[, view])``
and are rebuilt by ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``;
then a pickled list of storage keys, and for each key an int64 element count followed by
the raw little-endian data. This module reads that with a small unpickler and NumPy, so
torch is not needed.

Pickle can run code. The unpickler resolves only the globals this format needs
(``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and the storage type
names) and refuses every other one with :class:`UnsafeCheckpointError`.

Example:
    >>> state = read_legacy_torch("efficientnet-lite0-57934424.pth")
    >>> state["_conv_stem.weight"].shape
    (32, 3, 3, 3)
"""

import collections
import pickle
import struct

import numpy as np

from kd_keras.errors import UserError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class UnsafeCheckpointError(UserError):
    """The checkpoint asks pickle for a global outside the format's allow-list."""


class CheckpointFormatError(UserError):
    """The file is not a legacy PyTorch checkpoint, or is cut short."""


class _StorageType:
    def __init__(self, name):
        self.name, self.dtype = name, STORAGE_DTYPES[name]


class _LazyTensor:
    """A view into a storage that is read only after the pickled state dict."""

    def __init__(self, storage_key, offset, size, stride):
        self.storage_key, self.offset, self.size, self.stride = storage_key, offset, tuple(size), tuple(stride)

    def materialise(self, storages):
        flat = storages[self.storage_key]
        if not self.size:
            return flat[self.offset].copy()
        itemsize = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=self.size, strides=[s * itemsize for s in self.stride])
        return np.array(view)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *unused):
    return _LazyTensor(storage, storage_offset, size, stride)


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, path):
        super().__init__(file)
        self.path = path
        self.storage_types = {}  # key -> dtype

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafeCheckpointError(
            f"{self.path} asks to load {module}.{name}, which a plain PyTorch checkpoint never needs; refused")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise CheckpointFormatError(f"{self.path}: unexpected persistent id {pid!r:.80}")
        storage_type, key = pid[1], str(pid[2])
        if not isinstance(storage_type, _StorageType):
            raise CheckpointFormatError(f"{self.path}: storage {key} has no known type")
        self.storage_types[key] = storage_type.dtype
        return key


def read_legacy_torch(path):
    """A legacy (pre-1.6, non-zip) ``torch.save`` state dict as ``{name: numpy array}``.

    Args:
        path: the ``.pth`` file.

    Raises:
        UnsafeCheckpointError: the pickle names a global outside the allow-list.
        CheckpointFormatError: not this format, or truncated.
    """
    path = str(path)
    with open(path, "rb") as f:
        try:
            magic = _Unpickler(f, path).load()
            if magic != LEGACY_MAGIC:
                raise CheckpointFormatError(f"{path} is not a legacy PyTorch checkpoint (no magic number)")
            protocol = _Unpickler(f, path).load()
            if protocol != LEGACY_PROTOCOL:
                raise CheckpointFormatError(f"{path}: PyTorch protocol {protocol}, expected {LEGACY_PROTOCOL}")
            _Unpickler(f, path).load()  # sys info: endianness and type sizes
            unpickler = _Unpickler(f, path)
            state = unpickler.load()
            keys = _Unpickler(f, path).load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
            raise CheckpointFormatError(f"{path} is not a readable legacy PyTorch checkpoint ({exc})") from None
        storages = {}
        for key in keys:
            dtype = np.dtype(unpickler.storage_types[str(key)]).newbyteorder("<")
            head = f.read(8)
            if len(head) != 8:
                raise CheckpointFormatError(f"{path} ends before storage {key}")
            (numel,) = struct.unpack("<q", head)
            raw = f.read(numel * dtype.itemsize)
            if len(raw) != numel * dtype.itemsize:
                raise CheckpointFormatError(f"{path} ends inside storage {key}")
            storages[str(key)] = np.frombuffer(raw, dtype).astype(dtype.newbyteorder("="))
    if not isinstance(state, dict):
        raise CheckpointFormatError(f"{path} holds a {type(state).__name__}, not a state dict")
    return collections.OrderedDict(
        (name, value.materialise(storages) if isinstance(value, _LazyTensor) else value)
        for name, value in state.items())
