"""Ensembles of teachers: several --teacher-model files, or finished teacher runs, averaged into the targets."""

import json

import keras
import numpy as np
import pytest

from conftest import pooled_model_file, run_cli
from kd_keras import data, input_pipeline, sources
from kd_keras.errors import UserError
from kd_keras.replay import experiment, presets
from kd_keras.replay.imported_teacher import combine_teacher_runs, import_teacher

DATA = "synthetic:3:12"


def _teacher(path, size, units, seed):
    """A small softmax (or sigmoid) model on pooled colours: different seeds, different probabilities."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    x = keras.layers.Dense(8, activation="tanh", kernel_initializer=keras.initializers.RandomNormal(stddev=3.0))(x)
    outputs = keras.layers.Dense(units, activation="softmax" if units > 1 else "sigmoid")(x)
    keras.Model(inputs, outputs).save(path)
    return str(path)


def _model_on_train(model_file, split_file, size, cache):
    """The model's own prediction on the plain train images in [0, 1], read independently of the package's import."""
    dataset = data.Dataset.load(str(split_file))
    images, _, _, _ = input_pipeline.cached_images(dataset.splits["train"], size, cache)
    return keras.models.load_model(model_file).predict(images / 255.0, verbose=0)


def _exp(runs_dir, seed=0, data_dir=DATA):
    return experiment.Experiment(presets.get("smoke"), data_dir, str(runs_dir), seed=seed, weights="none", verbose=0)


@pytest.mark.tensorflow  # trains a student end to end
def test_a_student_on_two_teacher_files_trains_on_their_weighted_average(tmp_path, capsys):
    a = _teacher(tmp_path / "a.keras", 40, 3, seed=1)
    b = _teacher(tmp_path / "b.keras", 32, 3, seed=2)
    student = pooled_model_file(tmp_path / "student.keras", units=3)  # a small student: the targets are the subject
    runs_dir = tmp_path / "runs"
    code, out, err = run_cli(capsys, "student", "--mode", "soft", "--teacher-model", a, "--teacher-model", b,
                             "--teacher-weight", "0.25", "--teacher-weight", "0.75", "--data-dir", DATA,
                             "--preset", "smoke", "--weights", "none", "--runs-dir", runs_dir, "--quiet",
                             "--student", student)
    assert code == 0, err
    teacher_dir = next(runs_dir.glob("*/seed0/teacher"))
    cache = str(runs_dir / ".cache")
    expected = (0.25 * _model_on_train(a, teacher_dir / "split.json", 40, cache)
                + 0.75 * _model_on_train(b, teacher_dir / "split.json", 32, cache))
    targets = np.load(teacher_dir / "predictions.npz")["train"]
    np.testing.assert_allclose(targets, expected, atol=1e-5)
    assert not np.allclose(expected, _model_on_train(a, teacher_dir / "split.json", 40, cache), atol=1e-3)
    config = json.load(open(teacher_dir / "config.json"))
    assert [(m["model_file"], m["image_size"], m["weight"]) for m in config["ensemble"]] == [(a, 40, 0.25), (b, 32, 0.75)]
    assert all(len(m["sha256"]) == 64 for m in config["ensemble"])
    student = json.load(open(teacher_dir.parent / "student-soft" / "config.json"))
    assert student["parent"] == str(teacher_dir)


def test_finished_teacher_runs_combine_into_the_mean_of_their_predictions(tmp_path):
    a = _teacher(tmp_path / "a.keras", 32, 3, seed=1)
    b = _teacher(tmp_path / "b.keras", 24, 3, seed=2)
    folder = sources.resolve_source(DATA, str(tmp_path / "made"))  # one folder: the runs' splits name the same files
    run_a = import_teacher(_exp(tmp_path / "ra", data_dir=folder), a)
    run_b = import_teacher(_exp(tmp_path / "rb", data_dir=folder), b)
    combined = combine_teacher_runs(_exp(tmp_path / "rc", data_dir=folder), [run_a, run_b])
    p = {r: np.load(f"{r}/predictions.npz") for r in (run_a, run_b, combined)}
    for split in ("train", "valid", "test"):
        np.testing.assert_allclose(p[combined][split], (p[run_a][split] + p[run_b][split]) / 2, atol=1e-6)
        np.testing.assert_array_equal(p[combined][f"label_{split}"], p[run_a][f"label_{split}"])
    m = json.load(open(f"{combined}/metrics.json"))
    mean = p[combined]["test"]
    assert m["eval"]["test"]["accuracy"] == pytest.approx(np.mean(mean.argmax(1) == p[combined]["label_test"]))
    config = json.load(open(f"{combined}/config.json"))
    assert [e["run"] for e in config["ensemble"]] == [run_a, run_b]
    # A run on other images does not combine; neither does the target folder itself.
    other = sources.resolve_source("synthetic:3:14", str(tmp_path / "made"))
    run_other = import_teacher(_exp(tmp_path / "rd", data_dir=other), a)
    with pytest.raises(UserError, match="split or classes differ"):
        combine_teacher_runs(_exp(tmp_path / "re", data_dir=folder), [run_a, run_other])
    with pytest.raises(UserError, match="one of its teachers"):
        combine_teacher_runs(_exp(tmp_path / "ra", data_dir=folder), [run_a, run_b])
    with pytest.raises(UserError, match="not a finished teacher run"):
        combine_teacher_runs(_exp(tmp_path / "rf", data_dir=folder), [run_a, str(tmp_path)])


def test_a_sigmoid_and_a_two_unit_softmax_teacher_average_as_one_p(tmp_path):
    sigmoid = _teacher(tmp_path / "s.keras", 32, 1, seed=3)
    softmax = _teacher(tmp_path / "t.keras", 32, 2, seed=4)
    exp = _exp(tmp_path / "runs")
    exp.data_dir = "synthetic:2:12"
    run = import_teacher(exp, [sigmoid, softmax])
    split = f"{run}/split.json"
    cache = str(tmp_path / "runs" / ".cache")
    expected = (_model_on_train(sigmoid, split, 32, cache)[:, 0] + _model_on_train(softmax, split, 32, cache)[:, 1]) / 2
    np.testing.assert_allclose(np.load(f"{run}/predictions.npz")["train"], expected, atol=1e-5)


@pytest.mark.parametrize("case", ["classes disagree", "weights do not sum to 1", "a weight too many",
                                  "weights without teachers"])
def test_bad_ensembles_are_one_line_and_leave_nothing(tmp_path, capsys, case):
    a = _teacher(tmp_path / "a.keras", 32, 3, seed=1)
    b = _teacher(tmp_path / "b.keras", 32, 2 if case == "classes disagree" else 3, seed=2)
    args = {"classes disagree": ["--teacher-model", a, "--teacher-model", b],
            "weights do not sum to 1": ["--teacher-model", a, "--teacher-model", b,
                                        "--teacher-weight", "0.5", "--teacher-weight", "0.6"],
            "a weight too many": ["--teacher-model", a, "--teacher-model", b, "--teacher-weight", "0.5",
                                  "--teacher-weight", "0.25", "--teacher-weight", "0.25"],
            "weights without teachers": ["--teacher-weight", "1"]}[case]
    runs_dir = tmp_path / "runs"
    code, out, err = run_cli(capsys, "student", "--mode", "soft", *args, "--data-dir", DATA, "--preset", "smoke",
                             "--weights", "none", "--runs-dir", runs_dir, "--quiet")
    assert code == 2 and err.startswith("error: --teacher") and err.count("\n") == 1, err
    assert not list(runs_dir.glob("*/seed0/teacher"))
