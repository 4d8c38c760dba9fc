"""The ``Distiller``: a Keras model that trains a student on a teacher's predictions.

Paper B's offline distillation: the teacher's probabilities p on the un-augmented
training images are computed once, and the student trains on augmented images against
targets made from them:

- ``classic``: the true labels y;
- ``hard``: ``y_i = 1 if p_i > 0.5 else 0`` (formula 13);
- ``soft``: ``y_i = p_i`` (formula 14).

For K > 2 classes the student ends in a softmax over K units and the same modes read:
classic = one-hot labels, hard = ``onehot(argmax p)``, soft = the teacher's probability row;
the loss is :class:`~kd_keras.losses.SoftTargetCrossentropy` instead of BCE, and accuracy is
argmax agreement. The number of classes is read off the student's output (1 unit: the
paper's sigmoid).

Extensions: ``online=True`` calls the teacher inside the training step (its targets then
see the same augmented image as the student), ``temperature=T`` softens teacher and
student logits as in Hinton et al. (loss scaled by T²), and ``alpha`` mixes in the
true-label loss: ``L = alpha * CE(y, q) + (1 - alpha) * L_distill(target, q)``.

Keras's own ``keras.distillation.Distiller`` is online (the teacher runs on every batch, on
the student's input), needs one input for both models, and weighs the true-label loss by
``student_loss_weight`` (0.5 by default) where ours takes ``alpha`` (0 by default: Paper B's
students); :class:`~kd_keras.keras_distillation.SoftTargetDistillation` gives it soft targets
that work on a one-unit sigmoid head.

``preprocessing`` (e.g. :func:`kd_keras.input_pipeline.preprocessing`: flips, shifts and
the division by 255) runs inside the compiled step, in front of the student: augmented
in training, plain in validation, on the GPU where there is one.
"""

import keras
import numpy as np
from keras import ops

from kd_keras.losses import SoftTargetBCE, SoftTargetCrossentropy

MODES = ("classic", "hard", "soft")


class Distiller(keras.Model):
    """Trains ``student`` against true labels or a teacher's predictions.

    Training data yields ``(images, {"label": y, "teacher": p})`` (offline; ``p`` the
    teacher's fixed probabilities) or ``(images, y)`` (classic, online, and for
    validation, where loss and accuracy are against the true labels). Metrics:
    ``accuracy`` against the training targets and, when both are given, ``label_accuracy``
    against the true labels.

    Args:
        student: a Keras model with one sigmoid output (two classes) or a softmax over K.
        teacher: needed only for ``online=True``.
        mode: ``"classic"``, ``"hard"`` or ``"soft"``.
        online: call the teacher in every training step instead of using fixed targets.
        temperature: T of the soft targets (1 = the paper's plain BCE).
        alpha: weight of the true-label BCE (0 = the paper's pure distillation).
        preprocessing: Keras layers applied to the images before the student (and the
            online teacher), in training and evaluation; random layers act in training only.

    Examples:
        >>> from kd_keras.input_pipeline import ArrayBatches, preprocessing
        >>> from kd_keras.models import resnet18
        >>> images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype="uint8")
        >>> y = {"label": np.arange(16) % 2, "teacher": np.linspace(0, 1, 16)}  # the teacher's p, made once
        >>> distiller = Distiller(resnet18((32, 32, 3)), mode="soft", preprocessing=preprocessing(shift=0.4))
        >>> distiller.compile(optimizer=keras.optimizers.Adam(1e-4))
        >>> history = distiller.fit(ArrayBatches(images, y, 8, shuffle=True), epochs=1, verbose=0)
        >>> sorted(history.history)  # accuracy against the targets, and against the true labels
        ['accuracy', 'label_accuracy', 'loss']
        >>> distiller.student.save("student.keras")  # reloads alone; it takes images in [0, 1]
    """

    def __init__(self, student, teacher=None, mode="soft", online=False, temperature=1.0, alpha=0.0,
                 preprocessing=None, **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
        if online and teacher is None:
            raise ValueError("online distillation needs a teacher")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.student, self.teacher, self.preprocessing = student, teacher, preprocessing
        self.mode, self.online, self.temperature, self.alpha = mode, online, float(temperature), float(alpha)
        if teacher is not None:
            teacher.trainable = False
        self.binary_loss, self.categorical_loss = SoftTargetBCE(1.0), SoftTargetCrossentropy(1.0)
        self.binary_distillation = SoftTargetBCE(self.temperature)
        self.categorical_distillation = SoftTargetCrossentropy(self.temperature)
        self.target_accuracy = keras.metrics.Mean(name="accuracy")
        self.label_accuracy = keras.metrics.Mean(name="label_accuracy")
        if getattr(student, "inputs", None):  # a functional student is built: so is the Distiller
            self.build(student.input_shape)

    def build(self, input_shape):
        if not self.student.built:
            self.student.build(input_shape)
        self.built = True

    def compile(self, optimizer="adam", **kwargs):
        """Compiles with the distillation loss; extra arguments go to ``keras.Model.compile``."""
        super().compile(optimizer=optimizer, **kwargs)

    def call(self, inputs, training=False):
        if self.preprocessing is not None:
            inputs = self.preprocessing(inputs, training=training)
        self._step_inputs = inputs  # what an online teacher sees: the same augmented images
        return self.student(inputs, training=training)

    def _labels_and_targets(self, x, y, num_outputs):
        """(true labels as targets or None, the targets the student learns), shaped like its output."""
        if isinstance(y, dict):
            labels, teacher_p = y.get("label"), y.get("teacher")
        else:
            labels, teacher_p = y, None
        if labels is not None:
            labels = _as_rows(labels, num_outputs, sparse=True)
        if self.online and self.mode != "classic":
            seen = getattr(self, "_step_inputs", None)
            teacher_p = self.teacher(x if seen is None else seen, training=False)
        if self.mode == "classic" or teacher_p is None:
            return labels, labels
        teacher_p = _as_rows(teacher_p, num_outputs, sparse=False)
        if self.mode == "hard":  # formula 13, or the argmax's one-hot row
            teacher_p = (ops.cast(teacher_p > 0.5, "float32") if num_outputs == 1
                         else ops.one_hot(ops.argmax(teacher_p, axis=-1), num_outputs, dtype="float32"))
        return labels, teacher_p

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        k = y_pred.shape[-1]
        labels, targets = self._labels_and_targets(x, y, k)
        self._step_targets = (labels, targets)  # compute_metrics reuses them: one teacher call a step
        distillation = self.binary_distillation if k == 1 else self.categorical_distillation
        loss = distillation(targets, y_pred, sample_weight)
        if self.alpha and labels is not None and self.mode != "classic":
            label_loss = self.binary_loss if k == 1 else self.categorical_loss
            loss = self.alpha * label_loss(labels, y_pred, sample_weight) + (1.0 - self.alpha) * loss
        if self.losses:
            loss = loss + ops.sum(self.losses)
        self._step_inputs = None
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        labels, targets = getattr(self, "_step_targets", None) or self._labels_and_targets(x, y, y_pred.shape[-1])
        self._step_targets = None
        self.target_accuracy.update_state(agreement(targets, y_pred), sample_weight)
        if isinstance(y, dict) and labels is not None:
            self.label_accuracy.update_state(agreement(labels, y_pred), sample_weight)
        return {m.name: m.result() for m in self.metrics
                if m.name != "label_accuracy" or isinstance(y, dict)}


def _as_rows(values, num_outputs, sparse):
    """Labels or probabilities as float32 rows of the student's output width."""
    values = ops.convert_to_tensor(values)
    if num_outputs == 1:
        return ops.cast(ops.reshape(values, (-1, 1)), "float32")
    if sparse and (len(values.shape) == 1 or values.shape[-1] == 1):
        return ops.one_hot(ops.reshape(ops.cast(values, "int32"), (-1,)), num_outputs, dtype="float32")
    return ops.cast(values, "float32")


def agreement(targets, y_pred):
    """1 where prediction and target name the same class, else 0.

    One output: formulas 11-12, both > 0.5 or both <= 0.5. K outputs: the same argmax.
    """
    if y_pred.shape[-1] == 1:
        same = ops.equal(ops.reshape(targets, (-1,)) > 0.5, ops.reshape(y_pred, (-1,)) > 0.5)
    else:
        same = ops.equal(ops.argmax(targets, axis=-1), ops.argmax(y_pred, axis=-1))
    return ops.cast(same, "float32")


def offline_targets(mode, labels, teacher_p=None, num_classes=2):
    """The targets a student learns in ``mode``, made on the host once (formulas 13 and 14).

    - ``classic``: the true labels;
    - ``hard``: ``1 if p > 0.5 else 0`` (formula 13); for K classes, the one-hot row of ``argmax p``;
    - ``soft``: the teacher's probabilities ``p`` (formula 14).

    A ``Distiller(mode="soft")`` trained on these computes the same loss and metrics as one in
    ``mode`` that makes them inside its step, so one compiled step serves all three modes.

    Args:
        labels: the true labels: 0/1 (two classes) or class indices.
        teacher_p: the teacher's predictions: one probability per image, or rows of K.
        num_classes: K.

    Returns:
        float32 targets: one per image for two classes, rows of K otherwise.

    Examples:
        >>> offline_targets("hard", np.array([0, 1, 1]), np.array([0.2, 0.7, 0.4]))
        array([0., 1., 0.], dtype=float32)
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    if mode != "classic" and teacher_p is None:
        raise ValueError(f"mode {mode!r} needs the teacher's predictions")
    if mode == "classic":
        labels = np.asarray(labels)
        if num_classes == 2:
            return labels.reshape(-1).astype("float32")
        return np.eye(num_classes, dtype="float32")[labels.reshape(-1).astype(int)]
    p = np.asarray(teacher_p, "float32")
    if num_classes == 2:
        p = p.reshape(-1)
        return (p > 0.5).astype("float32") if mode == "hard" else p
    return np.eye(num_classes, dtype="float32")[p.argmax(axis=-1)] if mode == "hard" else p
