"""Soft targets for ``keras.distillation`` (Keras 3.12+): sigmoid heads and probability outputs.

Keras's ``LogitsDistillation`` divides the outputs by T as logits and, with a
``keras.losses.KLDivergence`` loss, takes a softmax over the last axis. On a one-unit sigmoid
head (Paper B's student and teacher) that softmax is identically 1, so a binary teacher distils
nothing (tested). :class:`SoftTargetDistillation` is a
``keras.distillation.DistillationLoss`` that reads the outputs as what they are:

- one unit: the teacher's probability p is the target of a binary cross-entropy,
  ``-(p log q + (1 - p) log(1 - q))`` (formula 14 of Paper B, its soft student), with q the
  student's probability (:class:`~kd_keras.losses.SoftTargetBCE`);
- K units: a probability row and the categorical cross-entropy ``-Σ_k p_k log q_k``
  (:class:`~kd_keras.losses.SoftTargetCrossentropy`).

With a temperature T != 1 both sides are softened (``σ(logit(·) / T)``, or
``softmax(log(·) / T)``) and the loss scaled by T², as Hinton et al. (2015).

How Keras's ``Distiller`` differs from :class:`kd_keras.Distiller`:

- it is *online*: it calls the teacher on every batch, on the student's own (possibly
  augmented) images; ours takes the teacher's probabilities computed once on the plain images
  (offline, as Paper B), or ``online=True``;
- teacher and student take the *same input*; ours lets the teacher see its own input size
  (the targets are made beforehand);
- its ``student_loss_weight`` weighs the true-label loss:
  ``L = w * L_student(y, q) + (1 - w) * L_distill(p, q)``; our ``alpha`` is the same ``w``
  (``alpha=0`` is Paper B's pure soft student), and the default differs: Keras 0.5, ours 0.

Examples:
    >>> import keras, numpy as np
    >>> from kd_keras.keras_distillation import SoftTargetDistillation
    >>> loss = SoftTargetDistillation(temperature=1.0)
    >>> teacher_p = np.array([[0.9], [0.2]], "float32")
    >>> student_q = np.array([[0.6], [0.4]], "float32")
    >>> round(float(loss.compute_loss(teacher_p, student_q)), 4)
    0.5716
"""

from keras import ops
from keras.distillation import DistillationLoss

from kd_keras.losses import SoftTargetBCE, SoftTargetCrossentropy


class SoftTargetDistillation(DistillationLoss):
    """A ``keras.distillation.DistillationLoss`` on the models' probability outputs.

    Args:
        temperature: T > 0; 1 uses the probabilities as they are.

    Example:
        ```python
        distiller = keras.distillation.Distiller(
            teacher=teacher, student=student,  # both end in one sigmoid unit
            distillation_losses=SoftTargetDistillation(temperature=1.0),
            student_loss_weight=0.0)           # Paper B's soft student: no true-label loss
        distiller.compile(optimizer="adam", loss="binary_crossentropy")
        distiller.fit(images, labels, epochs=5)
        ```
    """

    def __init__(self, temperature=1.0):
        if not isinstance(temperature, (int, float)) or not temperature > 0:
            raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
        self.temperature = float(temperature)
        self._binary = SoftTargetBCE(self.temperature)
        self._categorical = SoftTargetCrossentropy(self.temperature)

    def validate_outputs(self, teacher_outputs, student_outputs):
        if ops.shape(teacher_outputs)[-1] != ops.shape(student_outputs)[-1]:
            raise ValueError(f"SoftTargetDistillation: teacher outputs {ops.shape(teacher_outputs)} and student "
                             f"outputs {ops.shape(student_outputs)} differ in their last axis")

    def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        """The batch mean of the soft-target cross-entropy of the student's q against the teacher's p."""
        teacher_outputs = ops.stop_gradient(ops.cast(teacher_outputs, "float32"))
        student_outputs = ops.cast(student_outputs, "float32")
        loss = self._binary if ops.shape(student_outputs)[-1] == 1 else self._categorical
        return loss(teacher_outputs, student_outputs)

    def get_config(self):
        return {"temperature": self.temperature}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


__all__ = ["SoftTargetDistillation"]
