"""Your own networks in the replay: a teacher from a Keras file, a student by name or from a file.

A teacher file is any Keras model whose output is K class probabilities (a softmax), or one
sigmoid probability for two classes. It takes float images in [0, 1] at its own input size:
put a ``Rescaling`` layer in front if it was trained on [0, 255]. It is loaded with Keras's safe
mode: a file with Python code in it (a ``Lambda`` layer) is refused.

A student is ``resnet18`` (the paper's, built by hand), any ``keras.applications`` name
(randomly initialised, global average pooling, then the class output), or a Keras file, whose
weights every student and generation starts from (its run seed then draws only the data order
and the augmentation).

Examples:
    >>> student = student_model("resnet18", (32, 32, 3), num_classes=4)
    >>> student.output_shape
    (None, 4)
    >>> student.save("student.keras")
    >>> check_classes(load_model_file("student.keras", "--student"), num_classes=4, what="student.keras")
    4
"""

import os

import keras

from kd_keras import backbones, models
from kd_keras.errors import UserError

DEFAULT_STUDENT = "resnet18"


MAX_UNCOMPRESSED = 4 * 2**30  # a .keras file unpacking to more than this is refused before it is loaded
MAX_RATIO = 200  # nor may a member expand more than 200-fold (weights compress to about 1.1x)


def _check_archive(path, what):
    """Refuses a ``.keras`` zip whose members would unpack to far more than the file (a zip bomb)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UserError(f"{what}: {path} is not a readable .keras file (a zip archive): "
                        f"{str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__}") from None
    total = sum(m.file_size for m in members)
    for m in members:
        if m.file_size > MAX_RATIO * max(m.compress_size, 1) + 2**20:
            raise UserError(f"{what}: {path}: {m.filename[:80]!r} would unpack from {m.compress_size} to "
                            f"{m.file_size} bytes; refused (not a model Keras wrote)")
    if total > MAX_UNCOMPRESSED:
        raise UserError(f"{what}: {path} would unpack to {total / 2**30:.1f} GiB, over the {MAX_UNCOMPRESSED // 2**30} "
                        "GiB limit")


def load_model_file(path, what):
    """A Keras model from ``path`` (safe mode, not compiled), or a one-line :class:`UserError`."""
    if not os.path.isfile(path):
        raise UserError(f"{what}: no such file: {path}")
    if not path.endswith(".keras"):
        raise UserError(f"{what}: {path} is not a .keras model file (save one with model.save('name.keras'))")
    _check_archive(path, what)
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except ValueError as e:
        if "TFSMLayer" in str(e):
            raise UserError(f"{what}: {path} wraps an external SavedModel (a TFSMLayer), which safe mode refuses "
                            "to load; save the Keras model itself, without the TFSMLayer") from None
        if "safe_mode" in str(e) or "unsafe" in str(e).lower() or "lambda" in str(e).lower():
            raise UserError(f"{what}: {path} holds Python code (a Lambda layer), which safe mode refuses to "
                            "run; rebuild the model without it") from None
        raise UserError(f"{what}: {path} is not a Keras model this version can read: {str(e).splitlines()[0]}") from None
    except Exception as e:  # a zip that is not a model, a truncated file, a missing custom class
        raise UserError(f"{what}: {path} is not a Keras model this version can read: "
                        f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UserError(f"{what}: {path} must take one image input and give one output, "
                        f"it has {len(model.inputs)} inputs and {len(model.outputs)} outputs")
    return model


def input_size(model, what):
    """The square input size a model file was built for."""
    shape = model.inputs[0].shape
    if len(shape) != 4 or shape[1] is None or shape[1] != shape[2] or shape[3] != 3:
        raise UserError(f"{what}: the model's input must be square RGB images (None, N, N, 3), "
                        f"it is {tuple(shape)}")
    return int(shape[1])


def check_classes(model, num_classes, what):
    """Raises a one-line :class:`UserError` unless the model's output fits ``num_classes`` classes.

    Accepted: K units (probabilities), or one unit (a sigmoid) when K = 2.
    """
    shape = tuple(model.outputs[0].shape)
    if len(shape) != 2:  # a map (None, H, W, K) or a sequence: not one answer per image
        raise UserError(f"{what}: the model's output has shape {shape}; it must be (None, K), one row of class "
                        "probabilities per image")
    units = shape[-1]
    if units == num_classes or (num_classes == 2 and units == 1):
        return units
    raise UserError(f"{what}: the model gives {units} output{'s' if units != 1 else ''}, the dataset has "
                    f"{num_classes} classes (give {num_classes} probabilities"
                    f"{', or one sigmoid' if num_classes == 2 else ''})")


def student_model(spec, input_shape, num_classes, bn_momentum=0.99):
    """The student to train: ``resnet18``, a ``keras.applications`` name, or a ``.keras`` file.

    Args:
        spec: the ``--student`` value.
        input_shape: ``(N, N, 3)`` for a student built here (a file keeps its own).
        num_classes: K; two classes give the paper's one sigmoid unit.
        bn_momentum: the ResNet-18's batch-norm momentum (:func:`kd_keras.models.resnet18`).
    """
    units, activation = models.class_output(num_classes)
    if spec.endswith(".keras"):
        model = load_model_file(spec, "--student")
        input_size(model, "--student")
        if model.outputs[0].shape[-1] != units:
            raise UserError(f"--student: {spec} gives {model.outputs[0].shape[-1]} outputs; a student for "
                            f"{num_classes} classes needs {units} ({activation})")
        return model
    if spec == DEFAULT_STUDENT:
        return models.resnet18(input_shape, num_outputs=units, activation=activation, bn_momentum=bn_momentum)
    features = backbones.backbone(spec, "none", input_shape)
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Dense(units, name="logits")(features(inputs))
    outputs = keras.layers.Activation(activation, dtype="float32", name="prediction")(x)
    return keras.Model(inputs, outputs, name=f"student_{backbones.canonical_name(spec)}")


def check_student(spec):
    """Checks a ``--student`` value before any work: a name we can build or an existing file."""
    if spec.endswith(".keras"):
        if not os.path.isfile(spec):
            raise UserError(f"--student: no such file: {spec}")
        return spec
    if spec == DEFAULT_STUDENT:
        return spec
    return backbones.check_name(spec)
