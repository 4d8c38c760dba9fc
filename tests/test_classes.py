"""K classes: the measures reduce to the paper's at K = 2, the Distiller's modes for K > 2, and
distillation end to end on a 3-class folder, from our teacher or a user's teacher file."""

import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from conftest import run_cli

from kd_keras import metrics
from kd_keras.distill import Distiller
from kd_keras.losses import SoftTargetBCE, SoftTargetCrossentropy

RNG = np.random.default_rng(0)
TENSORFLOW = keras.backend.backend() == "tensorflow"


def _rows(n, k):
    z = RNG.normal(size=(n, k)) * 2
    return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


def test_k_class_measures_are_the_papers_at_two_classes():
    p = RNG.uniform(size=200)
    two = np.stack([1 - p, p], axis=1)  # the sigmoid's p as a two-class row
    y = (RNG.uniform(size=200) > 0.5).astype("float32")
    formula_15 = np.mean((p - (p > 0.5)) ** 2)  # independent: the paper's formula
    assert metrics.uncertainty(p) == pytest.approx(formula_15)
    assert metrics.uncertainty(two) == pytest.approx(formula_15)
    assert metrics.accuracy(two, y.astype(int)) == pytest.approx(np.mean((p > 0.5) == (y > 0.5)))
    assert metrics.crossentropy(two, y.astype(int)) == pytest.approx(metrics.binary_crossentropy(p, y))
    # The top class's probability is max(p, 1 - p): the K-class histogram folds the binary one.
    folded = np.histogram(np.maximum(p, 1 - p), bins=20, range=(0, 1))[0] / 200
    np.testing.assert_allclose(metrics.histogram(two), folded)


def test_k_class_measures_against_independent_formulas():
    p, y = _rows(300, 4), RNG.integers(0, 4, 300)
    assert metrics.accuracy(p, y) == pytest.approx(np.mean(p.argmax(1) == y))
    onehot = np.eye(4)[p.argmax(1)]
    assert metrics.uncertainty(p) == pytest.approx(np.mean(np.sum((p - onehot) ** 2, axis=1)) / 2)
    expected = float(np.mean(keras.losses.categorical_crossentropy(np.eye(4)[y], p)))
    assert metrics.crossentropy(p, y) == pytest.approx(expected, rel=1e-5)
    np.testing.assert_array_equal(metrics.hard_labels(p), onehot)


@pytest.mark.parametrize("t", [1.0, 2.5])
def test_soft_target_crossentropy_is_soft_target_bce_at_two_classes(t):
    p, q = RNG.uniform(0.05, 0.95, (16, 1)), RNG.uniform(0.05, 0.95, (16, 1))
    binary = float(SoftTargetBCE(t)(p, q))
    categorical = float(SoftTargetCrossentropy(t)(np.hstack([1 - p, p]), np.hstack([1 - q, q])))
    assert categorical == pytest.approx(binary, rel=1e-4)


def test_distiller_modes_for_three_classes():
    student = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    x = RNG.normal(size=(8, 4)).astype("float32")
    labels = RNG.integers(0, 3, 8)
    teacher_p = _rows(8, 3).astype("float32")
    q = np.asarray(student(x))
    expected = {
        "classic": np.eye(3)[labels],
        "hard": np.eye(3)[teacher_p.argmax(1)],
        "soft": teacher_p,
    }
    for mode, targets in expected.items():
        distiller = Distiller(student, mode=mode)
        loss = float(distiller.compute_loss(x, {"label": labels, "teacher": teacher_p}, q))
        reference = float(np.mean(-np.sum(targets * np.log(np.clip(q, 1e-7, 1)), axis=1)))
        assert loss == pytest.approx(reference, rel=1e-5), mode
        distiller.compute_metrics(x, {"label": labels, "teacher": teacher_p}, q)
        assert float(distiller.label_accuracy.result()) == pytest.approx(np.mean(q.argmax(1) == labels))
        assert float(distiller.target_accuracy.result()) == pytest.approx(np.mean(q.argmax(1) == targets.argmax(1)))


# --- end to end (TensorFlow: Keras on JAX trains several times slower on a CPU; test_any_backend.py
# replays the pipeline on JAX) -------------------------------------------------------------------------

end_to_end = pytest.mark.skipif(not TENSORFLOW, reason="end to end on TensorFlow only (CPU speed)")

TINTS = {"red fox": (200, 80, 40), "snowy owl": (230, 230, 240), "moss": (40, 160, 60)}


def _three_classes(root):
    """A 3-class folder with train/ and valid/ only, one class name with a space."""
    rng = np.random.default_rng(1)
    for split, n in (("train", 30), ("valid", 12)):
        for name, tint in TINTS.items():
            os.makedirs(root / split / name)
            for i in range(n):
                pixels = np.clip(rng.normal(tint, 30, (36, 36, 3)), 0, 255).astype("uint8")
                Image.fromarray(pixels).save(root / split / name / f"{i}.png")
    return root


def _tiny_student_file(path, size=32, classes=3):
    """A user's own small softmax student, saved as a .keras file."""
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(x), name="tiny").save(path)
    return path


@end_to_end
def test_replay_on_three_classes_with_a_report(tmp_path, capsys):
    data_dir = _three_classes(tmp_path / "critters")
    runs_dir = tmp_path / "runs"
    student = _tiny_student_file(tmp_path / "tiny.keras")
    # recursive: our teacher, three students and the chains (reproduce adds only the timing run); the
    # students are the user's file (a ResNet-18 for three classes trains in the next test)
    code, out, err = run_cli(capsys, "recursive", "--preset", "smoke", "--data-dir", data_dir, "--weights", "none",
                          "--generations", "1", "--runs-dir", runs_dir, "--quiet", "--student", student)
    assert code == 0, err
    code, out, err = run_cli(capsys, "report", "--runs-dir", runs_dir, "--out", runs_dir / "results",
                          "--figures", runs_dir / "figures")
    assert code == 0, err
    seed_dir = runs_dir / "critters-smoke" / "seed0"
    for run in ("teacher", "student-classic", "student-hard", "student-soft", "hard-chain-1", "soft-chain-1"):
        m = json.load(open(seed_dir / run / "metrics.json"))
        assert 0 <= m["eval"]["test"]["accuracy"] <= 1 and 0 <= m["eval"]["test"]["uncertainty"] <= 1
        p = np.load(seed_dir / run / "predictions.npz")
        assert p["test"].shape[1] == 3 and np.allclose(p["test"].sum(1), 1, atol=1e-4)
        assert m["eval"]["test"]["accuracy"] == pytest.approx(np.mean(p["test"].argmax(1) == p["label_test"]))
    child = json.load(open(seed_dir / "hard-chain-1" / "config.json"))
    assert child["parent"].endswith("student-hard") and child["student"] == str(student)
    assert keras.models.load_model(seed_dir / "soft-chain-1" / "model.keras").name == "tiny"
    assert (runs_dir / "results" / "critters-smoke" / "teacher_students.md").exists()
    split = json.load(open(seed_dir / "teacher" / "split.json"))
    assert split["class_names"] == sorted(TINTS) and set(split["splits"]) == {"train", "valid", "test"}


def _user_teacher(path, size, units, activation="softmax", lambda_layer=False, nan=False, spatial=False):
    inputs = keras.Input((size, size, 3))
    x = inputs if spatial else keras.layers.GlobalAveragePooling2D()(inputs)
    if lambda_layer:
        x = keras.layers.Lambda(lambda t: t * 2.0)(x)
    dense = keras.layers.Dense(units, activation=activation)
    outputs = dense(x)
    if nan:  # NaN weights: NaN probabilities, which pass a min/max check
        dense.set_weights([np.full_like(w, np.nan) for w in dense.get_weights()])
    keras.Model(inputs, outputs).save(path)
    return path


@end_to_end
def test_student_from_a_users_softmax_teacher_at_another_input_size(tmp_path, capsys):
    data_dir = _three_classes(tmp_path / "critters")
    teacher = _user_teacher(tmp_path / "my_teacher.keras", 40, 3)
    runs_dir = tmp_path / "runs"
    code, out, err = run_cli(capsys, "student", "--mode", "soft", "--teacher-model", teacher, "--data-dir", data_dir,
                          "--preset", "smoke", "--weights", "none", "--runs-dir", runs_dir, "--quiet",
                          "--tensorboard")
    assert code == 0, err
    seed_dir = runs_dir / "critters-smoke" / "seed0"
    events = [f for _, _, files in os.walk(seed_dir / "student-soft" / "tensorboard") for f in files]
    assert any(f.startswith("events.out.tfevents") for f in events)
    config = json.load(open(seed_dir / "teacher" / "config.json"))
    assert config["image_size"] == 40 and config["model_file"] == str(teacher)
    teacher_p = np.load(seed_dir / "teacher" / "predictions.npz")["train"]
    # The teacher's predictions are the user's model on the plain [0, 1] images at 40 px.
    model = keras.models.load_model(teacher)
    from kd_keras import data, input_pipeline

    dataset = data.Dataset.load(str(seed_dir / "teacher" / "split.json"))
    images, _, _, _ = input_pipeline.cached_images(dataset.splits["train"], 40, str(runs_dir / ".cache"))
    np.testing.assert_allclose(teacher_p, model.predict(images / 255.0, verbose=0), atol=1e-5)
    student = keras.models.load_model(seed_dir / "student-soft" / "model.keras")
    assert student.input_shape[1] == 32 and student.output_shape[-1] == 3


@end_to_end
@pytest.mark.parametrize("case", ["not a model", "wrong outputs", "lambda", "logits", "nan outputs", "a map"])
def test_bad_teacher_files_are_one_line_and_leave_nothing(tmp_path, capsys, case):
    data_dir = _three_classes(tmp_path / "critters")
    path = tmp_path / "t.keras"
    if case == "not a model":
        path.write_text("hello")
    elif case == "wrong outputs":
        _user_teacher(path, 32, 2)
    elif case == "lambda":
        _user_teacher(path, 32, 3, lambda_layer=True)
    elif case == "nan outputs":
        _user_teacher(path, 32, 3, nan=True)
    elif case == "a map":  # (None, 32, 32, 3): per-pixel probabilities
        _user_teacher(path, 32, 3, spatial=True)
    else:
        _user_teacher(path, 32, 3, activation=None)
    runs_dir = tmp_path / "runs"
    code, out, err = run_cli(capsys, "student", "--mode", "hard", "--teacher-model", path, "--data-dir", data_dir,
                          "--preset", "smoke", "--weights", "none", "--runs-dir", runs_dir, "--quiet")
    assert code == 2 and err.startswith("error: --teacher-model") and err.count("\n") == 1, err
    assert not (runs_dir / "critters-smoke" / "seed0" / "teacher").exists()


@pytest.mark.parametrize("spec, classes, units", [
    ("resnet18", 2, 1), ("resnet18", 5, 5),
    # keras.applications is Keras's own backend-neutral code; JAX traces it 10x slower on a CPU
    pytest.param("MobileNetV2", 4, 4, marks=pytest.mark.tensorflow)])
def test_students_by_name_take_the_class_output(spec, classes, units):
    from kd_keras import user_models

    model = user_models.student_model(spec, (32, 32, 3), classes)
    assert model.output_shape == (None, units)
    p = np.asarray(model(np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype("float32")))
    assert np.all((p >= 0) & (p <= 1)) and (units == 1 or np.allclose(p.sum(1), 1, atol=1e-5))
