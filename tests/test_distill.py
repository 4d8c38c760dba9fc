import keras
import numpy as np
import pytest

from kd_keras import models
from kd_keras.distill import Distiller
from conftest import tiny_student

RNG = np.random.default_rng(0)
X = RNG.uniform(size=(24, 32, 32, 3)).astype("float32")
LABELS = RNG.integers(0, 2, 24).astype("float32")
TEACHER_P = RNG.uniform(size=24).astype("float32")


def _bce(p, y, eps=1e-7):
    p = np.clip(p, eps, 1 - eps)
    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))


@pytest.mark.parametrize("mode, targets", [
    ("classic", LABELS), ("hard", (TEACHER_P > 0.5).astype("float32")), ("soft", TEACHER_P)])
def test_loss_is_bce_against_the_modes_targets(mode, targets):
    distiller = Distiller(models.resnet18((32, 32, 3)), mode=mode)
    distiller.compile("adam")
    q = distiller.student.predict(X, verbose=0).reshape(-1)
    loss = distiller.compute_loss(X, {"label": LABELS, "teacher": TEACHER_P}, q.reshape(-1, 1))
    np.testing.assert_allclose(float(loss), _bce(q, targets), rtol=1e-4)


def test_alpha_mixes_true_label_loss():
    distiller = Distiller(models.resnet18((32, 32, 3)), mode="soft", alpha=0.3)
    distiller.compile("adam")
    q = RNG.uniform(0.05, 0.95, (24, 1)).astype("float32")
    loss = distiller.compute_loss(X, {"label": LABELS, "teacher": TEACHER_P}, q)
    expected = 0.3 * _bce(q.ravel(), LABELS) + 0.7 * _bce(q.ravel(), TEACHER_P)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-4)


@pytest.mark.parametrize("seed", [0, 1])
def test_fit_evaluate_and_student_round_trip(tmp_path, seed):
    keras.utils.set_random_seed(seed)  # the loss must fall whatever ran before in this process
    distiller = Distiller(tiny_student(), mode="hard")
    distiller.compile(keras.optimizers.Adam(1e-2))
    history = distiller.fit(X, {"label": LABELS, "teacher": TEACHER_P}, batch_size=8, epochs=8, verbose=0)
    assert {"loss", "accuracy", "label_accuracy"} <= set(history.history)
    assert history.history["loss"][-1] < history.history["loss"][0]
    result = distiller.evaluate(X, LABELS, verbose=0, return_dict=True)
    assert set(result) == {"loss", "accuracy"}
    path = str(tmp_path / "student.keras")
    distiller.student.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_allclose(reloaded.predict(X, verbose=0), distiller.student.predict(X, verbose=0), rtol=1e-5)


class _ConstantTeacher(keras.Model):
    """A teacher whose probability is a known function of the image (its mean), counting its calls."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def call(self, x, training=False):
        self.calls += 1
        return keras.ops.mean(x, axis=(1, 2, 3))[:, None] * 0.8 + 0.1


def test_online_mode_learns_the_teachers_output_on_the_same_images():
    teacher = _ConstantTeacher()
    distiller = Distiller(tiny_student(), teacher=teacher, mode="soft", online=True)
    q = RNG.uniform(0.05, 0.95, (24, 1)).astype("float32")
    loss = distiller.compute_loss(X, LABELS, q)  # no teacher targets given: they come from the teacher
    teacher_p = X.mean(axis=(1, 2, 3)) * 0.8 + 0.1
    np.testing.assert_allclose(float(loss), _bce(q.ravel(), teacher_p), rtol=1e-4)
    assert teacher.calls == 1


@pytest.mark.parametrize("t", [2.0, 4.0])
def test_temperature_softens_both_sides_and_scales_by_t_squared(t):
    distiller = Distiller(tiny_student(), mode="soft", temperature=t)
    q = RNG.uniform(0.05, 0.95, (24, 1)).astype("float32")
    loss = float(distiller.compute_loss(X, {"label": LABELS, "teacher": TEACHER_P}, q))
    # Independent reference (Hinton et al.): sigmoid(logit / T) on both sides, BCE, times T².
    logit = lambda p: np.log(p) - np.log1p(-p)  # noqa: E731
    soft = lambda p: 1 / (1 + np.exp(-logit(np.clip(p, 1e-7, 1 - 1e-7)) / t))  # noqa: E731
    np.testing.assert_allclose(loss, t * t * _bce(soft(q.ravel()), soft(TEACHER_P)), rtol=1e-4)
    assert abs(loss - _bce(q.ravel(), TEACHER_P)) > 1e-3  # the temperature changes the loss


def test_online_training_keeps_the_teacher_fixed():
    teacher = tiny_student(name="teacher_net")
    distiller = Distiller(tiny_student(), teacher=teacher, mode="soft", online=True,
                          temperature=4.0, alpha=0.5)
    distiller.compile(keras.optimizers.Adam(1e-3))
    before = [w.copy() for w in teacher.get_weights()]
    history = distiller.fit(X, LABELS, batch_size=8, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    for a, b in zip(before, teacher.get_weights()):
        np.testing.assert_array_equal(a, b)  # the teacher stays fixed


def test_bad_arguments_are_rejected():
    student = models.resnet18((32, 32, 3))
    with pytest.raises(ValueError, match="mode"):
        Distiller(student, mode="medium")
    with pytest.raises(ValueError, match="teacher"):
        Distiller(student, online=True)
