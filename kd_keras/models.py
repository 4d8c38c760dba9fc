"""The networks: the hand-built ResNet-18 student, the teacher, and heads.

Backbones (ResNet-50, EfficientNet-Lite, any ``keras.applications`` name) live in
:mod:`kd_keras.backbones` and are re-exported here.

Examples:
    >>> student = resnet18(input_shape=(224, 224, 3))
    >>> student.count_params()   # 11,177,025 trainable, and the batch norms' moving statistics
    11186625
"""

import keras
from keras import layers

from kd_keras.backbones import backbone, canonical_name, efficientnet_lite, is_pretrained, resolve_weights  # noqa: F401
from kd_keras.layers import CosineDense, LSoftmaxDense

_BN_EPSILON = 1.001e-5


def _conv_bn(x, filters, kernel_size, strides, name, relu=True, bn_momentum=0.99):
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False,
                      kernel_initializer="he_normal", name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=_BN_EPSILON, momentum=bn_momentum, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def basic_block(x, filters, strides, name, bn_momentum=0.99):
    """He et al.'s basic block: two 3x3 convolutions and an identity (or 1x1 projection) shortcut."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, 1, strides, f"{name}_shortcut", relu=False, bn_momentum=bn_momentum)
    x = _conv_bn(x, filters, 3, strides, f"{name}_1", bn_momentum=bn_momentum)
    x = _conv_bn(x, filters, 3, 1, f"{name}_2", relu=False, bn_momentum=bn_momentum)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.ReLU(name=f"{name}_out")(x)


def resnet18(input_shape=(224, 224, 3), num_outputs=1, activation="sigmoid", name="resnet18", bn_momentum=0.99):
    """ResNet-18 (He et al. 2016), built by hand, as the paper's student.

    7x7/2 stem with 64 filters, 3x3/2 max-pool, basic blocks [2, 2, 2, 2] with
    64/128/256/512 filters, global average pooling to 512, ``Dense(num_outputs)``
    (named ``logits``) and the output activation (in float32 under mixed precision).
    With ``num_outputs=1`` it has 11,177,025 trainable parameters.

    Args:
        input_shape: image shape; any size from 32x32 works.
        num_outputs: units of the last dense layer.
        activation: output activation (``"sigmoid"``, ``"softmax"`` or ``None``).
        name: model name.
        bn_momentum: of the batch norms' moving statistics (Keras's 0.99, the paper's). A short
            training needs less: after n steps the initial statistics still weigh momentum**n.

    Returns:
        A functional ``keras.Model``.

    Examples:
        >>> model = resnet18((64, 64, 3))
        >>> model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
        >>> model.output_shape
        (None, 1)
    """
    inputs = keras.Input(input_shape, name="image")
    x = _conv_bn(inputs, 64, 7, 2, "conv1", bn_momentum=bn_momentum)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    for stage, filters in enumerate((64, 128, 256, 512)):
        for block in range(2):
            strides = 2 if stage > 0 and block == 0 else 1
            x = basic_block(x, filters, strides, name=f"conv{stage + 2}_block{block + 1}", bn_momentum=bn_momentum)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dense(num_outputs, name="logits")(x)
    outputs = layers.Activation(activation or "linear", dtype="float32", name="prediction")(x)
    return keras.Model(inputs, outputs, name=name)


def resized_resnet18(model, image_size):
    """The same ResNet-18 (its weights, its output) at another input size: it is fully convolutional."""
    units = model.output_shape[-1]
    resized = resnet18((image_size, image_size, 3), units, "sigmoid" if units == 1 else "softmax")
    resized.set_weights(model.get_weights())
    return resized


def class_output(num_classes):
    """``(units, activation)`` of a classifier's last layer: the paper's one sigmoid unit for two
    classes, a softmax over K units for K > 2."""
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
    return (1, "sigmoid") if num_classes == 2 else (num_classes, "softmax")


def teacher(weights="imagenet", freeze_backbone=True, input_shape=(224, 224, 3), dropout=0.5,
            normalize_features=False, backbone_name="resnet50", num_classes=2):
    """The paper's teacher: backbone (avg-pooled) -> Dropout -> Dense(1) -> sigmoid.

    For K > 2 classes the head is Dense(K) -> softmax (:func:`class_output`).

    Layer table (paper Fig. 1, ResNet-50): Input (224,224,3) -> resnet50 (None, 2048) -> Dropout
    (None, 2048) -> Dense (None, 1) -> Activation (None, 1). Other backbones change only the
    feature width (1280 for EfficientNet-Lite0).

    Args:
        weights: ``"imagenet"``, a local weights file, or ``None`` (random initialisation).
        freeze_backbone: keep the backbone's weights fixed (the likelier reading of the paper).
        input_shape: image shape; images in [0, 1] (the backbone normalises inside).
        dropout: dropout rate before the dense layer.
        normalize_features: insert a ``Normalization`` layer (named ``head_normalization``)
            before the head, to be adapted on the training features. Randomly initialised
            ResNet-50 features are about 0.011 +- 0.003, too small for the head to learn
            with the paper's optimizer; a fixed affine map leaves the head's function class
            unchanged. Not part of the paper's table; used only without pretrained weights.
        backbone_name: ``"resnet50"`` (the paper's), ``"efficientnet-lite0"`` (ImageNet
            weights offline) or any ``keras.applications`` name.
        num_classes: K; 2 keeps the paper's sigmoid head.

    Examples:
        >>> model = teacher(weights="imagenet", backbone_name="efficientnet-lite0")
        >>> head = teacher_head(model)   # trains on cached features
        >>> head.input_shape, head.output_shape
        ((None, 1280), (None, 1))
    """
    features = backbone(backbone_name, weights, input_shape)
    features.trainable = not freeze_backbone
    inputs = keras.Input(input_shape, name="image")
    x = features(inputs, training=False if freeze_backbone else None)
    if normalize_features:
        x = layers.Normalization(name="head_normalization")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    units, activation = class_output(num_classes)
    x = layers.Dense(units, name="head_dense")(x)
    outputs = layers.Activation(activation, dtype="float32", name="head_activation")(x)
    return keras.Model(inputs, outputs, name="teacher")


def teacher_head(model):
    """The teacher's Dropout -> Dense -> sigmoid as a model on its features, sharing weights."""
    feature_dim = model.get_layer("head_dense").kernel.shape[0]
    inputs = keras.Input((feature_dim,), name="features")
    x = inputs
    if any(layer.name == "head_normalization" for layer in model.layers):
        x = model.get_layer("head_normalization")(x)
    x = model.get_layer("head_dropout")(x)
    x = model.get_layer("head_dense")(x)
    outputs = model.get_layer("head_activation")(x)
    return keras.Model(inputs, outputs, name="teacher_head")


def teacher_backbone(model):
    """The teacher's feature extractor, the one sub-model inside it (shares weights with ``model``)."""
    return next(layer for layer in model.layers if isinstance(layer, keras.Model))


def classifier_head(head, num_classes, name="classifier"):
    """The output layer a loss needs (see :class:`kd_keras.losses.LossSpec`).

    Args:
        head: ``"softmax"``, ``"linear"``, ``"cosine"`` (:class:`CosineDense`) or ``"lsoftmax"``.
        num_classes: number of classes.
    """
    if head == "cosine":
        return CosineDense(num_classes, name=name)
    if head == "lsoftmax":
        return LSoftmaxDense(num_classes, name=name)
    if head in ("softmax", "linear"):
        return layers.Dense(num_classes, activation=head, dtype="float32", name=name)
    raise ValueError(f"unknown head {head!r}")


def cosine_head(num_classes, name="cosine_head"):
    """A :class:`CosineDense` head whose outputs are cos θ per class (for AM-softmax and cosine loss)."""
    return classifier_head("cosine", num_classes, name=name)
