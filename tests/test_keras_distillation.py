"""Our soft targets inside Keras's own distillation API (keras.distillation, Keras 3.12+)."""

import keras
import numpy as np
import pytest
from keras import distillation

from kd_keras.keras_distillation import SoftTargetDistillation
from kd_keras.losses import SoftTargetBCE

RNG = np.random.default_rng(0)


def _reference_bce(p, q, t=1.0):
    """Binary cross-entropy of q against p, softened by T (logits divided by T, loss times T²), in NumPy."""
    logit = lambda x: np.log(np.clip(x, 1e-7, 1 - 1e-7)) - np.log1p(-np.clip(x, 1e-7, 1 - 1e-7))  # noqa: E731
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    ps, qs = sig(logit(p) / t), np.clip(sig(logit(q) / t), 1e-7, 1 - 1e-7)
    return float(np.mean(-(ps * np.log(qs) + (1 - ps) * np.log(1 - qs))) * t * t)


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_the_loss_on_sigmoid_outputs_is_soft_target_bce(temperature):
    p = RNG.uniform(0.02, 0.98, size=(16, 1)).astype("float32")
    q = RNG.uniform(0.02, 0.98, size=(16, 1)).astype("float32")
    loss = float(SoftTargetDistillation(temperature).compute_loss(p, q))
    assert loss == pytest.approx(float(SoftTargetBCE(temperature)(p, q)), rel=1e-5)
    assert loss == pytest.approx(_reference_bce(p, q, temperature), rel=1e-4)
    # Keras's own logits distillation with its KL divergence takes a softmax over one unit: 1 everywhere,
    # so a sigmoid teacher gives a loss of 0 whatever the student says.
    kl = distillation.LogitsDistillation(temperature, loss=keras.losses.KLDivergence())
    with pytest.warns(UserWarning, match="softmax"):
        assert float(kl.compute_loss(p, q)) == pytest.approx(0.0, abs=1e-6)


def test_the_loss_on_softmax_outputs_is_the_soft_target_crossentropy():
    p = RNG.dirichlet(np.ones(4), size=8).astype("float32")
    q = RNG.dirichlet(np.ones(4), size=8).astype("float32")
    expected = float(np.mean(-np.sum(p * np.log(q), axis=1)))
    assert float(SoftTargetDistillation().compute_loss(p, q)) == pytest.approx(expected, rel=1e-5)


def _sigmoid_model(name, scale):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Dense(1, activation="sigmoid",
                                 kernel_initializer=keras.initializers.RandomNormal(stddev=scale))(x)
    return keras.Model(inputs, outputs, name=name)


def test_keras_distiller_trains_a_sigmoid_student_with_our_loss():
    keras.utils.set_random_seed(0)
    images = RNG.uniform(size=(64, 8, 8, 3)).astype("float32")
    labels = (images[:, :, :, 0].mean(axis=(1, 2)) > 0.5).astype("float32")
    teacher = _sigmoid_model("teacher", scale=0.3)  # confident, varied probabilities
    student = _sigmoid_model("student", scale=0.01)
    distiller = distillation.Distiller(teacher=teacher, student=student,
                                       distillation_losses=SoftTargetDistillation(), student_loss_weight=0.0)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    # Before training: Keras's reported distillation loss is ours, on the teacher's and student's outputs.
    p, q = teacher.predict(images, verbose=0), student.predict(images, verbose=0)
    loss = float(distiller.compute_loss(images, labels, student(images, training=False), training=False))
    assert loss == pytest.approx(float(SoftTargetBCE()(p, q)), rel=1e-4)
    assert loss > 0.01
    before = student.get_weights()
    history = distiller.fit(images, labels, epochs=5, batch_size=16, verbose=0)
    losses = history.history["distillation_loss"]
    assert all(np.isfinite(losses)) and min(losses) > 0
    assert any(not np.allclose(a, b) for a, b in zip(before, student.get_weights()))
    # The student has moved toward the teacher: its soft-target loss fell.
    after = float(SoftTargetBCE()(p, student.predict(images, verbose=0)))
    assert after < float(SoftTargetBCE()(p, q))


def test_a_temperature_must_be_positive():
    for bad in (0, -1.0, float("nan"), "3"):
        with pytest.raises(ValueError, match="temperature"):
            SoftTargetDistillation(temperature=bad)
