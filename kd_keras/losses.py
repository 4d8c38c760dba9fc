"""Loss functions of both papers, as serialisable Keras losses.

Every loss casts its inputs to float32 first, so it stays exact under a
mixed-precision policy. Categorical losses take one-hot or sparse integer labels.

Examples:
    >>> import kd_keras
    >>> loss = kd_keras.losses.AMSoftmax(scale=30.0, margin=0.35)
    >>> model = keras.Sequential([keras.Input((16,)), kd_keras.layers.CosineDense(3)])  # cos theta per class
    >>> model.compile(optimizer="adam", loss=loss)
"""

import dataclasses
import math

import keras
from keras import ops

from kd_keras.loss_heads import LOSS_HEADS

_register = keras.saving.register_keras_serializable(package="kd_keras")


def as_targets(y_true, y_pred):
    """Returns ``y_true`` in float32 with the shape of ``y_pred``'s class axis.

    Sparse labels of shape ``(n,)`` or ``(n, 1)`` are one-hot encoded when ``y_pred``
    has more than one class; targets that already match pass unchanged.
    """
    y_true = ops.convert_to_tensor(y_true)
    num_classes = y_pred.shape[-1]
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == num_classes:
        return ops.cast(y_true, "float32")
    if num_classes == 1:
        return ops.reshape(ops.cast(y_true, "float32"), (-1, 1))
    labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    return ops.one_hot(labels, num_classes, dtype="float32")


class _Loss(keras.losses.Loss):
    """Base: float32 inputs, constructor arguments round-trip through get_config."""

    _params = ()

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        return self.compute(as_targets(y_true, y_pred), y_pred)

    def get_config(self):
        config = super().get_config()
        config.update({name: getattr(self, name) for name in self._params})
        return config


@_register
class AMSoftmax(_Loss):
    """Additive-margin softmax (Wang et al. 2018).

    ``L = -log( e^{s(cos θ_y - m)} / (e^{s(cos θ_y - m)} + Σ_{j≠y} e^{s cos θ_j}) )``

    ``y_pred`` holds cos θ_j per class (values in [-1, 1]) from a
    :class:`kd_keras.layers.CosineDense` head.

    Args:
        scale: s, the scale of the cosines (30 in the AM-softmax paper).
        margin: m, subtracted from the target cosine (0.35 in the AM-softmax paper).
    """

    _params = ("scale", "margin")

    def __init__(self, scale=30.0, margin=0.35, name="am_softmax", **kwargs):
        super().__init__(name=name, **kwargs)
        self.scale = float(scale)
        self.margin = float(margin)

    def compute(self, onehot, cosine):
        logits = self.scale * (cosine - self.margin * onehot)
        return keras.losses.categorical_crossentropy(onehot, logits, from_logits=True)


@_register
class CosineLoss(_Loss):
    """Cosine loss (Barz & Denzler 2020): ``L = 1 - <f(x), φ(y)> / (||f(x)||_2 ||φ(y)||_2)``.

    φ(y) is the one-hot embedding of the class; ``y_pred`` is the network's plain output
    (a linear head, as Barz & Denzler and the thesis's ``1 − σ_cos(f(θ), φ(y))``); the
    predicted class is its argmax.
    """

    def __init__(self, name="cosine_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def compute(self, onehot, y_pred):
        dot = ops.sum(onehot * y_pred, axis=-1)
        norms = ops.norm(onehot, axis=-1) * ops.norm(y_pred, axis=-1)
        return 1.0 - dot / ops.maximum(norms, 1e-12)


@_register
class Huber(_Loss):
    """Huber loss, mean over the last axis: ``0.5 a²`` if ``|a| <= δ`` else ``δ(|a| - 0.5 δ)``, ``a = y - ŷ``.

    Args:
        delta: δ, where the quadratic part turns linear.
    """

    _params = ("delta",)

    def __init__(self, delta=1.0, name="huber", **kwargs):
        super().__init__(name=name, **kwargs)
        self.delta = float(delta)

    def compute(self, y_true, y_pred):
        error = ops.abs(y_true - y_pred)
        quadratic = 0.5 * ops.square(error)
        linear = self.delta * (error - 0.5 * self.delta)
        return ops.mean(ops.where(error <= self.delta, quadratic, linear), axis=-1)


@_register
class Hinge(_Loss):
    """Binary hinge loss: ``mean_j max(0, 1 - t_j ŷ_j)`` with ``t`` in {-1, 1}.

    Labels in {0, 1} are mapped to {-1, 1} first, as Keras's ``Hinge`` does.
    ``y_pred`` is a raw score (no sigmoid).
    """

    def __init__(self, name="hinge", **kwargs):
        super().__init__(name=name, **kwargs)

    def compute(self, y_true, y_pred):
        is_binary = ops.all(ops.logical_or(ops.equal(y_true, 0.0), ops.equal(y_true, 1.0)))
        signs = ops.where(is_binary, 2.0 * y_true - 1.0, y_true)
        return ops.mean(ops.relu(1.0 - signs * y_pred), axis=-1)


@_register
class CategoricalHinge(_Loss):
    """Categorical hinge (Crammer & Singer): ``max(0, max_{j≠y} ŷ_j - ŷ_y + 1)`` on raw scores.

    Keras's ``CategoricalHinge`` takes ``max_j (1 - y_j) ŷ_j``, which counts a 0 at the
    target; the two agree whenever some other class scores above 0.
    """

    def __init__(self, name="categorical_hinge", **kwargs):
        super().__init__(name=name, **kwargs)

    def compute(self, onehot, y_pred):
        positive = ops.sum(onehot * y_pred, axis=-1)
        negative = ops.max(ops.where(onehot > 0, -1e30, y_pred), axis=-1)
        return ops.relu(negative - positive + 1.0)


@_register
class ThesisHinge(_Loss):
    """The thesis's hinge, as written there: ``L = Σ_j max(0, ½ − y_j ŷ_j)`` with y in {0, 1}.

    Only the target class's score enters (the other terms are ½ for every sample), so the
    loss pushes the target score above ½ and stops there. ``y_pred`` is a raw score.
    """

    def __init__(self, name="thesis_hinge", **kwargs):
        super().__init__(name=name, **kwargs)

    def compute(self, onehot, y_pred):
        return ops.sum(ops.relu(0.5 - onehot * y_pred), axis=-1)


class _ProbabilityDistance(_Loss):
    """``||y - σ(z)||_p^p`` between one-hot labels and class probabilities σ(z)."""

    order = 1

    def compute(self, onehot, probabilities):
        return ops.sum(ops.abs(onehot - probabilities) ** self.order, axis=-1)


@_register
class L1Sigma(_ProbabilityDistance):
    """L1∘σ (Janocha & Czarnecki 2017): ``Σ_j |y_j - p_j|`` on softmax probabilities p."""

    order = 1

    def __init__(self, name="l1_sigma", **kwargs):
        super().__init__(name=name, **kwargs)


@_register
class L2Sigma(_ProbabilityDistance):
    """L2∘σ (Janocha & Czarnecki 2017): ``Σ_j (y_j - p_j)²`` on softmax probabilities p."""

    order = 2

    def __init__(self, name="l2_sigma", **kwargs):
        super().__init__(name=name, **kwargs)


def lsoftmax_psi(theta, margin):
    """Liu et al.'s ψ(θ) = (-1)^k cos(mθ) - 2k for θ in [kπ/m, (k+1)π/m], k = 0..m-1.

    ψ(θ) = cos(mθ) on [0, π/m] and keeps decreasing monotonically after it.
    """
    k = ops.floor(theta * margin / math.pi)
    k = ops.minimum(k, margin - 1.0)
    sign = 1.0 - 2.0 * ops.mod(k, 2.0)
    return sign * ops.cos(margin * theta) - 2.0 * k


@_register
class LSoftmax(keras.losses.Loss):
    """Large-margin softmax (Liu et al. 2016).

    Logits ``f_j = ||W_j|| ||x|| cos θ_j``; the target logit becomes ``||W_y|| ||x|| ψ(θ_y)``
    (see :func:`lsoftmax_psi`), then softmax cross-entropy. ``y_pred`` comes from a
    :class:`kd_keras.layers.LSoftmaxDense` head: shape ``(n, classes, 2)`` holding cos θ_j
    and ``||W_j|| ||x||``.

    Args:
        margin: m, a positive integer; larger m, larger angular margin.
    """

    def __init__(self, margin=2, name="l_softmax", **kwargs):
        super().__init__(name=name, **kwargs)
        if int(margin) != margin or margin < 1:
            raise ValueError(f"L-softmax margin must be a positive integer, got {margin}")
        self.margin = int(margin)

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        cosine, norms = y_pred[..., 0], y_pred[..., 1]
        onehot = as_targets(y_true, cosine)
        theta = ops.arccos(ops.clip(cosine, -1.0 + 1e-7, 1.0 - 1e-7))
        target = norms * lsoftmax_psi(theta, float(self.margin))
        logits = ops.where(onehot > 0, target, norms * cosine)
        return keras.losses.categorical_crossentropy(onehot, logits, from_logits=True)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}


class _SoftTargetLoss(_Loss):
    """Base of the distillation losses: a temperature T > 0 and whether predictions are logits."""

    _params = ("temperature", "from_logits")

    def __init__(self, temperature=1.0, from_logits=False, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.from_logits = bool(from_logits)


@_register
class SoftTargetBCE(_SoftTargetLoss):
    """Binary cross-entropy against soft targets, with an optional temperature T.

    With T = 1 and probabilities, this is plain BCE: ``-(p log q + (1 - p) log(1 - q))``,
    p the target (a teacher's probability), q the prediction. With T != 1 both sides
    are turned into logits z, softened as σ(z / T), and the loss is scaled by T²
    (Hinton et al. 2015) so its gradients keep their size.

    Args:
        temperature: T > 0.
        from_logits: whether ``y_pred`` holds logits rather than probabilities.
    """

    def __init__(self, temperature=1.0, from_logits=False, name="soft_target_bce", **kwargs):
        super().__init__(temperature, from_logits, name=name, **kwargs)

    def compute(self, targets, y_pred):
        if self.temperature == 1.0:
            return keras.losses.binary_crossentropy(targets, y_pred, from_logits=self.from_logits)
        t = self.temperature
        student_logits = y_pred if self.from_logits else _logit(y_pred)
        soft_targets = ops.sigmoid(_logit(targets) / t)
        loss = keras.losses.binary_crossentropy(soft_targets, student_logits / t, from_logits=True)
        return loss * t * t


@_register
class SoftTargetCrossentropy(_SoftTargetLoss):
    """Categorical cross-entropy against soft targets, with an optional temperature T.

    The K-class form of :class:`SoftTargetBCE` for a softmax student: with T = 1 and
    probabilities, ``-Σ_k p_k log q_k``, p the target (a teacher's probability row, or a one-hot
    label), q the prediction. With T != 1 both sides are softened as ``softmax(log(·) / T)``
    and the loss is scaled by T² (Hinton et al. 2015). At K = 2 it equals SoftTargetBCE on the
    second class's probability (tested).

    Args:
        temperature: T > 0.
        from_logits: whether ``y_pred`` holds logits rather than probabilities.
    """

    def __init__(self, temperature=1.0, from_logits=False, name="soft_target_crossentropy", **kwargs):
        super().__init__(temperature, from_logits, name=name, **kwargs)

    def compute(self, targets, y_pred):
        if self.temperature == 1.0:
            return keras.losses.categorical_crossentropy(targets, y_pred, from_logits=self.from_logits)
        t = self.temperature
        student_logits = y_pred if self.from_logits else ops.log(ops.clip(y_pred, 1e-7, 1.0))
        soft_targets = ops.softmax(ops.log(ops.clip(targets, 1e-7, 1.0)) / t, axis=-1)
        loss = keras.losses.categorical_crossentropy(soft_targets, student_logits / t, from_logits=True)
        return loss * t * t


def _logit(p, eps=1e-7):
    p = ops.clip(p, eps, 1.0 - eps)
    return ops.log(p) - ops.log1p(-p)


@dataclasses.dataclass(frozen=True)
class LossSpec:
    """A loss chosen by its CLI name, with the classifier head it needs.

    ``head`` is one of ``"softmax"`` (probabilities), ``"linear"`` (raw scores),
    ``"cosine"`` (:class:`~kd_keras.layers.CosineDense`) or ``"lsoftmax"``
    (:class:`~kd_keras.layers.LSoftmaxDense`).
    """

    name: str
    loss: keras.losses.Loss
    head: str


_FACTORIES = {
    "softmax": lambda: keras.losses.CategoricalCrossentropy(name="softmax"),
    "cosine": CosineLoss,
    "am-softmax": AMSoftmax,
    "hinge": CategoricalHinge,
    "thesis-hinge": ThesisHinge,
    "huber": Huber,
    "l1": L1Sigma,
    "l2": L2Sigma,
    "l-softmax": LSoftmax,
}
_BY_NAME = {name: (_FACTORIES[name], head) for name, head in LOSS_HEADS.items()}

NAMES = tuple(_BY_NAME)


def get(name):
    """Returns the :class:`LossSpec` for a CLI loss name (see ``NAMES``).

    Examples:
        >>> spec = get("am-softmax")
        >>> spec.head
        'cosine'
    """
    if name not in _BY_NAME:
        raise ValueError(f"unknown loss {name!r}; choose from {', '.join(NAMES)}")
    factory, head = _BY_NAME[name]
    return LossSpec(name, factory(), head)
