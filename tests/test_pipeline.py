"""End to end on the synthetic data: paper B's pipeline, paper A's study, and the report."""

import filecmp
import glob
import gzip
import json
import os
import subprocess

import keras
import numpy as np
import pytest
from conftest import run_cli
from kd_keras.errors import UserError

import kd_keras
from kd_keras.replay import archive, experiment, paper_b, presets, students, teacher, training
from kd_keras import report

pytestmark = pytest.mark.tensorflow  # see setup.cfg's markers


@pytest.fixture(scope="module")
def kd_runs(tmp_path_factory):
    runs_dir = str(tmp_path_factory.mktemp("runs"))
    exp = experiment.Experiment(presets.get("smoke"), "synthetic", runs_dir, weights="none", verbose=0)
    paper_b.reproduce(exp, generations=1)
    return runs_dir, exp


def test_reproduce_makes_every_run_folder_complete(kd_runs):
    runs_dir, exp = kd_runs
    names = ["teacher", "student-classic", "student-hard", "student-soft",
             "hard-chain-1", "soft-chain-1"]
    for name in names:
        run = exp.run_dir(name)
        for f in ("config.json", "split.json", "history.csv", "model.keras", "predictions.npz", "metrics.json"):
            assert os.path.exists(os.path.join(run, f)), (name, f)
    splits = {json.dumps(json.load(open(os.path.join(exp.run_dir(n), "split.json")))) for n in names}
    assert len(splits) == 1  # every model is scored on the same images
    hard = json.load(open(os.path.join(exp.run_dir("student-hard"), "metrics.json")))
    assert {"test_augmented", "test_teacher_labels", "test_teacher_labels_augmented"} <= set(hard)
    assert len(hard["eval"]["test"]["histogram"]) == 20
    for name in names:  # calibration beside the paper's measures, on every split of every run
        scores = json.load(open(os.path.join(exp.run_dir(name), "metrics.json")))["eval"]
        assert all({"ece", "nll", "brier"} <= set(scores[s]) for s in ("train", "valid", "test")), name
    timing = json.load(open(os.path.join(exp.run_dir("timing"), "metrics.json")))
    assert timing["teacher_ms"] > 0 and timing["speedup"] == timing["teacher_ms"] / timing["student_ms"]
    per_image = timing["per_image_ms"]["model"]
    assert len(per_image["student"]) == timing["images"]
    assert abs(np.mean(per_image["teacher"]) - timing["teacher_ms"]) < 1e-3 * timing["images"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          cwd=os.path.dirname(kd_keras.__file__)).stdout.strip()
    for name in names + ["timing"]:  # every run names the code that made it
        code = json.load(open(os.path.join(exp.run_dir(name), "config.json")))["code"]
        assert code["kd_keras"] == kd_keras.__version__ and code["keras"] == keras.__version__
        assert code["git_commit"] == (head or None) and code["backend"] == keras.backend.backend()


def test_chain_generation_learns_the_previous_generations_predictions(kd_runs):
    _, exp = kd_runs
    parent = np.load(os.path.join(exp.run_dir("student-hard"), "predictions.npz"))
    child = json.load(open(os.path.join(exp.run_dir("hard-chain-1"), "metrics.json")))
    assert child["parent"] == exp.run_dir("student-hard")
    teacher_labels = (parent["test"] > 0.5).astype("float32")
    child_p = np.load(os.path.join(exp.run_dir("hard-chain-1"), "predictions.npz"))["test"]
    expected = float(np.mean((child_p > 0.5) == (teacher_labels > 0.5)))
    assert child["test_teacher_labels"]["accuracy"] == pytest.approx(expected)


def test_every_run_draws_its_own_weights_order_and_augmentation(kd_runs, monkeypatch):
    _, exp = kd_runs
    names = ["student-classic", "student-hard", "student-soft", "hard-chain-1", "soft-chain-1"]
    seeds = [json.load(open(os.path.join(exp.run_dir(n), "config.json")))["run_seed"] for n in names]
    assert len(set(seeds)) == len(seeds)
    assert seeds[0] == experiment.run_seed(exp.seed, "student-classic")
    # A second hard-chain generation has the same parent and targets; only its own seed can make it differ.
    seen = []
    real = training.input_pipeline.ArrayBatches

    def spy(inputs, targets=None, *args, **kwargs):
        if isinstance(targets, dict):
            seen.append(np.array(targets["teacher"]))
        return real(inputs, targets, *args, **kwargs)

    monkeypatch.setattr(training.input_pipeline, "ArrayBatches", spy)
    twin = students.train_student(exp, "hard", exp.run_dir("student-hard"), name="hard-chain-1-twin", generation=1)
    first_epochs = [open(os.path.join(d, "history.csv")).read().splitlines()[1]
                    for d in (exp.run_dir("hard-chain-1"), twin)]
    assert first_epochs[0] != first_epochs[1]
    # Its targets are formula 13 on its parent's predictions on the training images, in the split's order.
    parent = np.load(os.path.join(exp.run_dir("student-hard"), "predictions.npz"))
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], (parent["train"] > 0.5).astype("float32"))


def test_augmented_test_keeps_every_draw_and_reports_best_and_mean(kd_runs):
    _, exp = kd_runs
    soft = json.load(open(os.path.join(exp.run_dir("student-soft"), "metrics.json")))
    aug = soft["test_augmented"]
    draws = aug["draws"]
    assert len(draws) == exp.preset.augmented_evaluations == aug["repeats"]
    assert aug["accuracy"] == max(d["accuracy"] for d in draws)
    assert aug["loss"] == min(d["loss"] for d in draws)  # each best on its own, as the paper
    assert aug["accuracy_mean"] == pytest.approx(np.mean([d["accuracy"] for d in draws]))
    vs_teacher = soft["test_teacher_labels_augmented"]
    assert vs_teacher["accuracy"] == max(d["accuracy"] for d in vs_teacher["draws"])


def test_distilled_students_report_train_accuracy_against_true_labels(kd_runs):
    _, exp = kd_runs
    hard = json.load(open(os.path.join(exp.run_dir("student-hard"), "metrics.json")))
    history = open(os.path.join(exp.run_dir("student-hard"), "history.csv")).read().splitlines()
    header = history[0].split(",")
    rows = [dict(zip(header, map(float, line.split(",")))) for line in history[1:]]
    assert hard["best"]["train_accuracy"] == max(r["label_accuracy"] for r in rows)
    assert hard["best"]["train_target_accuracy"] == max(r["accuracy"] for r in rows)


def test_rerun_reuses_finished_runs(kd_runs):
    _, exp = kd_runs
    before = os.path.getmtime(os.path.join(exp.run_dir("student-soft"), "metrics.json"))
    students.train_student(exp, "soft", exp.run_dir("teacher"))
    assert os.path.getmtime(os.path.join(exp.run_dir("student-soft"), "metrics.json")) == before


def test_report_is_complete_and_byte_identical(kd_runs, tmp_path):
    runs_dir, _ = kd_runs
    first = report.write_report(runs_dir, str(tmp_path / "a"), str(tmp_path / "fa"), latex=True, log=lambda *_: None)
    report.write_report(runs_dir, str(tmp_path / "b"), str(tmp_path / "fb"), latex=True, log=lambda *_: None)
    tables = [p for p in first if p.endswith((".md", ".csv", ".tex"))]
    assert len(tables) == 3 * 13 and any(p.endswith("latency.png") for p in first)
    assert any(p.endswith("run_record.md") for p in first)
    assert any(p.endswith("calibration.png") for p in first)
    claims = open(os.path.join(tmp_path, "a", "claims.md")).read()
    # One seed: the claims are listed with their rules, and none gets a verdict either way.
    assert "the soft student is at least as accurate as the classic" in claims
    assert "practically twice as fast as the classic" in claims
    assert "holds if the interval lies above 0" in claims and "no interval: one seed" in claims
    for row in (line for line in claims.splitlines() if line.endswith("| 1 seed |")):  # the seed rows
        assert "| holds |" not in row and "| does not hold |" not in row, row
    for path in tables:
        assert filecmp.cmp(path, path.replace(str(tmp_path / "a"), str(tmp_path / "b")), shallow=False), path
    chains = open(os.path.join(tmp_path, "a", "synthetic-smoke", "chains.md")).read()
    assert "not run" in chains  # generations 2-6 were not trained: marked, not crashed
    # Our cells are the runs' own numbers: read the tables back and compare with metrics.json.
    import pandas as pd

    _, exp = kd_runs
    table = pd.read_csv(os.path.join(tmp_path, "a", "synthetic-smoke", "uncertainty.csv"), dtype=str)
    for net, run in (("teacher", "teacher"), ("soft", "student-soft"), ("hard", "student-hard")):
        m = json.load(open(os.path.join(exp.run_dir(run), "metrics.json")))["eval"]
        for split in ("train", "test"):
            row = table[(table["network"] == net) & (table["set"] == split)].iloc[0]
            assert row["acc ours"] == f"{m[split]['accuracy']:.4f}" and row["unc ours"] == f"{m[split]['uncertainty']:.5f}"
    chain_table = pd.read_csv(os.path.join(tmp_path, "a", "synthetic-smoke", "chains.csv"), dtype=str)
    row = chain_table[(chain_table["chain"] == "soft") & (chain_table["generation"] == "1") & (chain_table["set"] == "valid")].iloc[0]
    m = json.load(open(os.path.join(exp.run_dir("soft-chain-1"), "metrics.json")))["eval"]["valid"]
    assert row["acc ours"] == f"{m['accuracy']:.4f}"


def test_the_archive_keeps_what_the_report_reads_and_names_no_machine(kd_runs, tmp_path, capsys):
    runs_dir, exp = kd_runs
    archived = str(tmp_path / "archive")
    code, out, _ = run_cli(capsys, "archive", "--runs-dir", runs_dir, "--to", archived)
    finished = archive.finished_runs(runs_dir)  # teacher, 3 students, 2 chains, timing, and any run added
    assert code == 0 and len(finished) >= 7 and f"archived {len(finished)} finished runs" in out
    assert all(os.path.isfile(os.path.join(archived, run, "metrics.json")) for run in finished)
    teacher = os.path.join(archived, "synthetic-smoke", "seed0", "teacher")
    assert sorted(os.listdir(teacher)) == sorted(archive.FILES.values())  # no model, no checkpoint
    for path in glob.glob(os.path.join(archived, "**", "*.json*"), recursive=True):
        text = gzip.open(path, "rt").read() if path.endswith(".gz") else open(path).read()
        assert runs_dir not in text and str(tmp_path) not in text, path  # portable paths only
        if path.endswith("config.json"):
            assert json.load(open(path))["code"]["kd_keras"] == kd_keras.__version__
    child = json.load(open(os.path.join(archived, "synthetic-smoke", "seed0", "hard-chain-1", "config.json")))
    assert child["parent"] == os.path.join("synthetic-smoke", "seed0", "student-hard")
    # The report from the archive equals the report from the run folders, table for table.
    a = report.write_report(runs_dir, str(tmp_path / "a"), str(tmp_path / "fa"), log=lambda *_: None)
    report.write_report(archived, str(tmp_path / "b"), str(tmp_path / "fb"), log=lambda *_: None)
    for path in (p for p in a if p.endswith((".md", ".csv"))):
        assert filecmp.cmp(path, path.replace(str(tmp_path / "a"), str(tmp_path / "b")), shallow=False), path
    code, _, err = run_cli(capsys, "archive", "--runs-dir", str(tmp_path / "nothing"), "--to", archived)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1


def test_a_run_in_use_by_another_process_is_refused_and_then_reused(kd_runs, tmp_path, capsys):
    from kd_keras.replay import lifecycle

    runs_dir, exp = kd_runs
    with lifecycle.RunLock(exp.run_dir("teacher")):  # another holder: flock refuses a second descriptor
        with pytest.raises(UserError, match=r"teacher is in use by PID \d+"):
            teacher.train_teacher(exp)
        code, _, err = run_cli(capsys, "student", "--mode", "soft", "--preset", "smoke", "--weights", "none",
                               "--runs-dir", runs_dir)
        assert code == 0  # another run of the same seed is free
        with lifecycle.RunLock(exp.run_dir("student-soft")) as held:
            assert held.fd is not None
    assert teacher.train_teacher(exp) == exp.run_dir("teacher")  # released: finished, reused


def test_load_runs_is_a_tidy_frame_of_every_run_and_split(kd_runs):
    runs_dir, exp = kd_runs
    frame = report.load_runs(runs_dir)
    for column in ("experiment", "seed", "run", "kind", "mode", "generation", "split", "accuracy", "loss",
                   "uncertainty", "backbone", "weights"):
        assert column in frame.columns
    soft = json.load(open(os.path.join(exp.run_dir("student-soft"), "metrics.json")))
    row = frame.query("run == 'student-soft' and split == 'test'").iloc[0]
    assert (row["kind"], row["mode"], row["generation"], row["seed"]) == ("student", "soft", 0, 0)
    assert row.accuracy == soft["eval"]["test"]["accuracy"] and row.uncertainty == soft["eval"]["test"]["uncertainty"]
    assert frame.query("run == 'student-soft' and split == 'test_augmented_mean'").accuracy.iloc[0] == \
        soft["test_augmented"]["accuracy_mean"]
    assert frame.query("run == 'teacher'").backbone.unique().tolist() == [exp.preset.teacher_backbone]
    assert set(frame.query("run == 'hard-chain-1'").split) >= {"train", "valid", "test", "test_augmented"}


def test_export_scores_the_exported_student_on_the_runs_test_split(kd_runs, tmp_path):
    from kd_keras.deploy import export

    _, exp = kd_runs
    out = str(tmp_path / "student.tflite")
    export.export_run(exp.run_dir("student-soft"), "tflite", "int8", out=out, calibration_images=8, log=lambda *_: None)
    _check_export(exp, out, "tflite", "int8")  # ONNX: through the command, below


def _check_export(exp, out, fmt, quantize):
    """The exported file's own answers on the run's test split against its report and the Keras student's."""
    from kd_keras import data, input_pipeline
    from kd_keras.deploy import export

    run_dir = exp.run_dir("student-soft")
    result = json.load(open(out + ".json"))
    assert (result["format"], result["quantization"], result["image_size"]) == (fmt, quantize, 32)
    split = data.Dataset.load(os.path.join(run_dir, "split.json")).splits["test"]
    images, labels, _, _ = input_pipeline.cached_images(split, 32, exp.cache_dir, log=lambda *_: None)
    p = export.load_runtime(out)(images.astype("float32") / 255.0).reshape(-1)
    assert result["test_accuracy"] == float(np.mean((p > 0.5) == (labels > 0.5)))
    soft = json.load(open(os.path.join(run_dir, "metrics.json")))
    assert result["keras_test_accuracy"] == soft["eval"]["test"]["accuracy"]
    assert result["accuracy_drop"] == pytest.approx(result["keras_test_accuracy"] - result["test_accuracy"])
    # The exported file answers as the Keras student does on the same images (its saved predictions):
    # a wrong input scaling or an inverted output cannot pass.
    keras_p = np.load(os.path.join(run_dir, "predictions.npz"))["test"]
    tolerance = 1e-4 if quantize == "none" else 0.05  # int8: one quantization step of a [0, 1] output
    np.testing.assert_allclose(p, keras_p, atol=tolerance)
    assert result["agreement_with_keras"] == float(np.mean((p > 0.5) == (keras_p > 0.5)))


def test_export_without_its_runtime_names_the_extra(kd_runs, monkeypatch):
    import builtins

    from kd_keras.deploy import export

    real_import = builtins.__import__
    monkeypatch.setattr(builtins, "__import__", lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name))
                        if name.startswith("onnxruntime") else real_import(name, *a, **k))
    with pytest.raises(UserError, match=r"pip install 'kd_keras\[deploy\]'"):
        export.export_run(kd_runs[1].run_dir("student-soft"), "onnx")


def test_export_through_the_cli_and_each_of_its_errors(kd_runs, tmp_path, capsys):

    _, exp = kd_runs

    def run(*argv):
        return run_cli(capsys, *argv)

    run_dir = exp.run_dir("student-soft")
    out = tmp_path / "student.onnx"
    code, stdout, err = run("export", run_dir, "--format", "onnx", "--out", out)
    assert code == 0, err
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["format"] == "onnx" and result == json.load(open(str(out) + ".json"))
    _check_export(exp, str(out), "onnx", "none")
    errors = {
        "not a finished run": (["export", tmp_path], "not a finished run"),
        "format and quantization": (["export", run_dir, "--format", "onnx", "--quantize", "float16"], "onnx takes"),
        "unknown format": (["export", run_dir, "--format", "pt"], "Invalid value"),
        "image size": (["export", run_dir, "--image-size", "16"], "--image-size must be >= 32"),
        "not a ResNet-18": (["export", exp.run_dir("teacher"), "--image-size", "64"], "works for ResNet-18"),
    }
    for case, (argv, message) in errors.items():
        code, _, err = run(*argv)
        assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1, (case, err)


def test_terminal_summary_names_each_models_test_accuracy_and_the_speed_up(kd_runs):
    _, exp = kd_runs
    lines = paper_b.summary(exp, generations=1)
    text = "\n".join(lines)
    for name in ("teacher", "student-classic", "student-hard", "student-soft", "hard-chain-1", "soft-chain-1"):
        accuracy = json.load(open(os.path.join(exp.run_dir(name), "metrics.json")))["eval"]["test"]["accuracy"]
        assert any(line.split()[:2] == [name, f"{accuracy:.3f}"] for line in lines), (name, text)
    timing = json.load(open(os.path.join(exp.run_dir("timing"), "metrics.json")))
    assert f"{timing['speedup']:.2f}x" in text
