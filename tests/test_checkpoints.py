"""The legacy PyTorch checkpoint reader against crafted and mutated files it writes itself."""

import collections
import json
import os
import pickle
import struct
import subprocess
import sys
import types

import numpy as np
import pytest

from kd_keras import checkpoints

MAGIC, PROTOCOL = 0x1950A86A20F9469CFC6C, 1001


class _Storage:
    def __init__(self, key, numel, view=None):
        self.key, self.numel, self.view = key, numel, view


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride)


@pytest.fixture
def fake_torch(monkeypatch):
    """Stand-ins for torch's FloatStorage and _rebuild_tensor_v2, so pickle writes their names."""
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")
    FloatStorage = type("FloatStorage", (), {"__module__": "torch"})

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    torch.FloatStorage, utils._rebuild_tensor_v2 = FloatStorage, _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    _Tensor.__reduce__ = lambda self: (_rebuild_tensor_v2, (*self.args, False, collections.OrderedDict()))
    return FloatStorage


def write(path, float_storage, tensors, data, header_numel=None, keys=None, state=None):
    """A legacy file: ``tensors`` name -> (key, offset, size, stride); ``data`` key -> float32 values."""
    storages = {key: _Storage(key, len(values)) for key, values in data.items()}

    class Writer(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _Storage):
                pid = ("storage", float_storage, obj.key, "cpu", obj.numel)
                return pid if obj.view is None else pid + (obj.view,)
            return None

    with open(path, "wb") as f:
        for obj in (MAGIC, PROTOCOL, {"little_endian": True}):
            pickle.dump(obj, f, protocol=2)
        if state is None:
            state = collections.OrderedDict(
                (name, _Tensor(storages.get(key) or _Storage(key, 4), off, size, stride))
                for name, (key, off, size, stride) in tensors.items())
        Writer(f, protocol=2).dump(state)
        pickle.dump(list(data) if keys is None else keys, f, protocol=2)
        for key, values in data.items():
            f.write(struct.pack("<q", len(values) if header_numel is None else header_numel))
            f.write(np.asarray(values, "<f4").tobytes())


def control(path, fake_torch):
    data = {"0": np.arange(4, dtype="float32") + 1.5, "1": np.arange(6, dtype="float32") * -2.0}
    write(path, fake_torch, {"w": ("0", 0, (2, 2), (2, 1)), "b": ("1", 1, (3,), (2,))}, data)
    return data


def test_a_valid_checkpoint_reads_with_the_right_values(tmp_path, fake_torch):
    control(tmp_path / "ok.pth", fake_torch)
    state = checkpoints.read_legacy_torch(tmp_path / "ok.pth")
    np.testing.assert_array_equal(state["w"], [[1.5, 2.5], [3.5, 4.5]])
    np.testing.assert_array_equal(state["b"], [-2.0, -6.0, -10.0])  # offset 1, stride 2 over 0, -2, ..., -10
    assert state["w"].dtype == np.float32 and list(state) == ["w", "b"]


class _System:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


CRAFTED = {  # name -> (tensors, storage data, writer options)
    "stride 2**22": ({"t": ("0", 0, (2, 2), (2**22, 1))}, {"0": np.ones(4)}, {}),
    "offset 10**12": ({"t": ("0", 10**12, (2,), (1,))}, {"0": np.ones(4)}, {}),
    "offset -2": ({"t": ("0", -2, (2,), (1,))}, {"0": np.ones(4)}, {}),
    "shape (16,) on 4 floats": ({"t": ("0", 0, (16,), (1,))}, {"0": np.ones(4)}, {}),
    "zero-stride 100000 x 100000": ({"t": ("0", 0, (100000, 100000), (0, 0))}, {"0": np.ones(1)}, {}),
    "numel 2**40": ({"t": ("0", 0, (2,), (1,))}, {"0": np.ones(4)}, {"header_numel": 2**40}),
    "numel 2**62": ({"t": ("0", 0, (2,), (1,))}, {"0": np.ones(4)}, {"header_numel": 2**62}),
    "storage missing": ({"t": ("9", 0, (2,), (1,))}, {"0": np.ones(4)}, {}),
    "keys not a list": ({"t": ("0", 0, (2,), (1,))}, {"0": np.ones(4)}, {"keys": {"0": 1}}),
}


def test_crafted_files_are_refused_within_3_gib_of_address_space(tmp_path, fake_torch):
    files = {}
    for name, (tensors, data, options) in CRAFTED.items():
        files[name] = str(tmp_path / f"{len(files)}.pth")
        write(files[name], fake_torch, tensors, data, **options)
    files["empty file"] = str(tmp_path / "empty.pth")
    open(files["empty file"], "wb").close()
    files["os.system through __reduce__"] = str(tmp_path / "system.pth")
    write(files["os.system through __reduce__"], fake_torch, {}, {}, state={"x": _System()})
    files["a view"] = str(tmp_path / "view.pth")
    view = _Storage("0", 4, view=("1", 0, 2))
    write(files["a view"], fake_torch, {}, {"0": np.ones(4)}, state={"t": _Tensor(view, 0, (2,), (1,))})
    files["control"] = str(tmp_path / "ok.pth")
    control(files["control"], fake_torch)
    script = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))
sys.argv[0] = "kd-keras"  # kd_keras imports nothing heavy at first then
from kd_keras import checkpoints
out = {}
for name, path in json.loads(sys.argv[1]).items():
    try:
        state = checkpoints.read_legacy_torch(path)
        out[name] = ["loaded", {k: v.tolist() for k, v in state.items()}]
    except (checkpoints.CheckpointFormatError, checkpoints.UnsafeCheckpointError) as exc:
        out[name] = [type(exc).__name__, str(exc)]
print(json.dumps(out))
"""
    done = subprocess.run([sys.executable, "-c", script, json.dumps(files)], capture_output=True, text=True,
                          timeout=120, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert results.pop("control") == ["loaded", {"w": [[1.5, 2.5], [3.5, 4.5]], "b": [-2.0, -6.0, -10.0]}]
    assert results.pop("os.system through __reduce__")[0] == "UnsafeCheckpointError"
    assert {name: kind for name, (kind, _) in results.items()} == {name: "CheckpointFormatError" for name in results}
    assert "views are not supported" in results["a view"][1]


def test_build_cannot_change_the_readers_functions_or_storage_types(tmp_path, fake_torch):
    reader_function, storage_dtype = checkpoints._rebuild_tensor_v2, checkpoints.STORAGE_DTYPES["FloatStorage"]

    class Rebuild:  # GLOBAL torch._utils._rebuild_tensor_v2, then BUILD with {"__code__": ...}
        def __reduce__(self):
            return (getattr, (sys.modules["torch._utils"]._rebuild_tensor_v2, "__name__"), None, None, None)

    class Retype:
        def __reduce__(self):  # BUILD on the storage type: {"name": "DoubleStorage"}
            return (fake_torch, (), {"name": "DoubleStorage"})

    for i, payload in enumerate((Rebuild(), Retype())):
        write(tmp_path / f"{i}.pth", fake_torch, {}, {}, state={"x": payload})
        with pytest.raises((checkpoints.CheckpointFormatError, checkpoints.UnsafeCheckpointError)):
            checkpoints.read_legacy_torch(tmp_path / f"{i}.pth")
    assert checkpoints._rebuild_tensor_v2 is reader_function
    assert checkpoints.STORAGE_DTYPES["FloatStorage"] is storage_dtype
    control(tmp_path / "ok.pth", fake_torch)
    assert checkpoints.read_legacy_torch(tmp_path / "ok.pth")["w"].dtype == np.float32


def test_random_byte_mutations_load_exactly_or_are_refused(tmp_path, fake_torch):
    data = control(tmp_path / "ok.pth", fake_torch)
    original = (tmp_path / "ok.pth").read_bytes()
    data_start = len(original) - sum(8 + 4 * len(v) for v in data.values())
    rng = np.random.default_rng(0)
    outcomes = collections.Counter()
    for trial in range(1200):  # the pickle scan refuses most mutated pickles: enough trials that some load
        raw = bytearray(original)
        for _ in range(rng.integers(1, 4)):
            raw[rng.integers(len(raw))] = rng.integers(256)
        path = tmp_path / "mutated.pth"
        path.write_bytes(bytes(raw))
        try:
            state = checkpoints.read_legacy_torch(path)
        except (checkpoints.CheckpointFormatError, checkpoints.UnsafeCheckpointError):
            outcomes["refused"] += 1
            continue
        outcomes["loaded"] += 1
        flat = {}  # the storages as the mutated file holds them (a mutation never changes the length)
        offset = data_start
        for key, v in data.items():
            flat[key] = np.frombuffer(bytes(raw[offset + 8: offset + 8 + 4 * len(v)]), "<f4")
            offset += 8 + 4 * len(v)
        if raw[:data_start] == original[:data_start]:  # only storage bytes changed: the same view of them
            np.testing.assert_array_equal(state["w"], flat["0"].reshape(2, 2))
            np.testing.assert_array_equal(state["b"], flat["1"][1::2])
            outcomes["storage bytes changed, same view"] += 1
        else:  # a changed description may pick other elements, never bytes outside its storage
            for name, key in (("w", "0"), ("b", "1")):
                if name in state and isinstance(state[name], np.ndarray):
                    assert state[name].size <= len(data[key])
                    assert set(state[name].ravel().tolist()) <= set(flat[key].tolist()), (trial, name)
    assert outcomes["refused"] > 300 and outcomes["storage bytes changed, same view"] > 5, outcomes
    assert outcomes["loaded"] - outcomes["storage bytes changed, same view"] > 5, outcomes  # a pickle mutated


def test_build_cannot_change_a_tensors_stride_after_it_was_checked(tmp_path, fake_torch):
    rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2

    class Restrided:  # _rebuild_tensor_v2(...), then BUILD {"stride": (-1,)}: a read before the buffer
        def __reduce__(self):
            return (rebuild, (_Storage("0", 4), 3, (2,), (1,), False, collections.OrderedDict()), {"stride": (-1,)})

    write(tmp_path / "restride.pth", fake_torch, {}, {"0": np.ones(4)}, state={"t": Restrided()})
    with pytest.raises(checkpoints.CheckpointFormatError):
        checkpoints.read_legacy_torch(tmp_path / "restride.pth")


def test_one_storage_read_many_times_over_is_refused(tmp_path, fake_torch):
    tensors = {f"t{k}": ("0", 0, (1024,), (1,)) for k in range(400)}
    write(tmp_path / "shared.pth", fake_torch, tensors, {"0": np.ones(1024)})
    with pytest.raises(checkpoints.CheckpointFormatError, match="more elements than its storages"):
        checkpoints.read_legacy_torch(tmp_path / "shared.pth")


@pytest.mark.parametrize("payload", [
    b"\x80\x02Nr\x00\x00\x00\x08.",  # LONG_BINPUT 2**27: a C unpickler would zero-fill a 1 GiB memo
    b"\x80\x02Nj\xff\xff\xff\x7f.",  # LONG_BINGET of an index nothing made
    b"\x80\x02X\xff\xff\xff\x7fabc.",  # BINUNICODE of 2 GiB in a 12-byte file
])
def test_a_pickle_is_scanned_before_the_unpickler_allocates(tmp_path, payload):
    path = tmp_path / "memo.pth"
    path.write_bytes(payload)
    with pytest.raises(checkpoints.CheckpointFormatError):
        checkpoints.read_legacy_torch(path)


def test_files_of_a_few_bytes_cost_no_more_than_a_few_hundred_mib(tmp_path, fake_torch):
    # Before: 400 entries viewing one 4 MiB storage peaked at 2.3 GB, and a 100-byte file with one
    # LONG_BINPUT of 2**27 made the C unpickler zero-fill a 2.8 GB memo, each before its error.
    files = {"memo": str(tmp_path / "memo.pth"), "string": str(tmp_path / "string.pth"),
             "views": str(tmp_path / "views.pth")}
    open(files["memo"], "wb").write(b"\x80\x02Nr\x00\x00\x00\x08.")
    open(files["string"], "wb").write(b"\x80\x02X\xff\xff\xff\x7fabc.")
    tensors = {f"t{k}": ("0", 0, (2**20,), (1,)) for k in range(400)}
    write(files["views"], fake_torch, tensors, {"0": np.ones(2**20)})
    script = """
import json, resource, sys
sys.argv[0] = "kd-keras"  # kd_keras imports nothing heavy at first then
from kd_keras import checkpoints
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
refused = {}
for name, path in json.loads(sys.argv[1]).items():
    try:
        checkpoints.read_legacy_torch(path)
    except checkpoints.CheckpointFormatError as exc:
        refused[name] = str(exc)
print(json.dumps({"refused": refused, "peak_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline) / 1024}))
"""
    done = subprocess.run([sys.executable, "-c", script, json.dumps(files)], capture_output=True, text=True,
                          timeout=120, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert sorted(result["refused"]) == sorted(files)
    assert result["peak_mib"] < 300, result  # the 4 MiB storage itself, read once, and the reader
