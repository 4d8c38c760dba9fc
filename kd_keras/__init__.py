"""kd_keras: knowledge distillation and loss functions for small image datasets, in Keras 3.

The package's public API is this library: backend-neutral (``keras.ops``) networks, losses,
layers, the :class:`Distiller` and the input pipeline. The papers' experiments built on it live in
:mod:`kd_keras.replay`, their report in :mod:`kd_keras.report`, TensorFlow-only deployment in
:mod:`kd_keras.deploy` and the ``kd-keras`` command in :mod:`kd_keras.cli`; none of them is
imported by the library.

``import kd_keras`` loads nothing heavy and changes nothing (no environment variable, no import
hook): each name below, and each submodule (``kd_keras.losses``, ``kd_keras.replay``, ...), is
imported on first use. The Keras layers and losses register with Keras when their module is
imported, so import ``kd_keras.layers`` (or use any of them) before ``keras.models.load_model``
reads a model saved with one.

Examples:
    >>> import keras
    >>> import kd_keras
    >>> student = kd_keras.resnet18((64, 64, 3))
    >>> distiller = kd_keras.Distiller(student, mode="soft")
    >>> distiller.compile(optimizer=keras.optimizers.Adam(1e-4))
    >>> student.output_shape
    (None, 1)
"""

import importlib

__version__ = "0.1.0"

# The public API: name -> the module that defines it.
_PUBLIC = {
    "Distiller": "kd_keras.distill",
    "resnet18": "kd_keras.models",
    "teacher": "kd_keras.models",
    "classifier_head": "kd_keras.models",
    "backbone": "kd_keras.backbones",
    "efficientnet_lite": "kd_keras.backbones",
    "AMSoftmax": "kd_keras.losses",
    "CosineLoss": "kd_keras.losses",
    "LSoftmax": "kd_keras.losses",
    "SoftTargetBCE": "kd_keras.losses",
    "SoftTargetCrossentropy": "kd_keras.losses",
    "SoftTargetDistillation": "kd_keras.keras_distillation",
    "CategoricalHinge": "kd_keras.losses",
    "ThesisHinge": "kd_keras.losses",
    "Huber": "kd_keras.losses",
    "L1Sigma": "kd_keras.losses",
    "L2Sigma": "kd_keras.losses",
    "CosineDense": "kd_keras.layers",
    "LSoftmaxDense": "kd_keras.layers",
    "ColorAffine": "kd_keras.layers",
    "legacy_decay": "kd_keras.schedules",
    "ArrayBatches": "kd_keras.input_pipeline",
    "preprocessing": "kd_keras.input_pipeline",
    "cached_images": "kd_keras.input_pipeline",
    "Dataset": "kd_keras.data",
    "scan": "kd_keras.data",
    "resolve_source": "kd_keras.sources",
    "read_legacy_torch": "kd_keras.checkpoints",
    "UserError": "kd_keras.errors",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    """A public name or a submodule (``kd_keras.distill``), imported on first use."""
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    try:
        return importlib.import_module(f"kd_keras.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"kd_keras.{name}":
            raise
        raise AttributeError(f"module 'kd_keras' has no attribute {name!r}") from None


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
