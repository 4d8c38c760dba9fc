"""The replay's plan, the gpu preset's code path on CPU, and --stop-after slices."""

import dataclasses
import json
import os
import time

import keras
import pytest

from kd_keras.replay import experiment, lifecycle, plan, presets, run_files, students, teacher
from kd_keras import runtime

pytestmark = pytest.mark.tensorflow  # see setup.cfg's markers


def test_plan_counts_images_runs_steps_and_cache_without_training(tmp_path):
    exp = experiment.Experiment(presets.get("smoke"), "synthetic", str(tmp_path), verbose=0)
    shape = plan.describe(exp, generations=6)
    assert shape["images"] == {"train": 48, "valid": 16, "test": 16}
    assert shape["student_runs"] == 15 and shape["steps_per_epoch"] == 3  # 48 images in batches of 16
    assert shape["cache_bytes"] == 80 * 32 * 32 * 3
    rates = {"feature_s": 0.01, "train_s": 0.02, "infer_s": 0.001}
    minutes = plan.estimate_minutes(shape, rates)
    per_student = 2 * (48 * 0.02 + 16 * 0.001) + (80 + 2 * 16) * 0.001  # 2 epochs, 2 augmented draws
    assert minutes["students"] == pytest.approx(15 * per_student / 60)
    assert minutes["teacher"] == pytest.approx((2 * 48 + 16 + 2 * 16) * 0.01 / 60)
    lines = plan.format_plan(shape, rates, minutes)
    assert any("15 runs" in line for line in lines) and "estimate" in lines[-1]
    assert not os.path.exists(os.path.join(tmp_path, "synthetic-smoke"))  # nothing trained


def test_gpu_preset_code_path_runs_on_cpu_with_tiny_data(tmp_path):
    tiny = dataclasses.replace(presets.get("gpu"), image_size=32, train_per_class=8, valid_per_class=4,
                               test_per_class=4, batch_size=8, teacher_epochs=1, student_epochs=1,
                               augmented_evaluations=2, timing_images=2, timing_size=32, estimate_before_run=False)
    assert tiny.mixed_precision == "bfloat16" and tiny.teacher_backbone == "efficientnet-lite0"
    runtime.configure(mixed_precision=tiny.mixed_precision)
    try:
        exp = experiment.Experiment(tiny, "synthetic:2:20", str(tmp_path), weights="imagenet", verbose=0)
        student_dir = students.train_student(exp, "soft", teacher.train_teacher(exp))
        config = json.load(open(os.path.join(exp.run_dir("teacher"), "config.json")))
        assert config["backbone"] == "efficientnet-lite0" and config["preset"]["mixed_precision"] == "bfloat16"
        assert run_files.is_complete(student_dir)
        student = keras.models.load_model(os.path.join(student_dir, "model.keras"))
        assert student.get_layer("conv1_conv").compute_dtype == "bfloat16"
        assert student.output.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_stop_after_stops_at_an_epoch_end_and_the_same_command_resumes(tmp_path, monkeypatch):
    smoke = dataclasses.replace(presets.get("smoke"), teacher_epochs=3)
    exp = experiment.Experiment(smoke, "synthetic", str(tmp_path), weights="none", verbose=0, deadline=time.time())
    with pytest.raises(lifecycle.DeadlineReached, match="before the next run"):
        teacher.train_teacher(exp)  # past the deadline: not even started
    assert not os.path.exists(os.path.join(exp.run_dir("teacher"), "history.csv"))
    check = lifecycle.check_deadline
    monkeypatch.setattr(lifecycle, "check_deadline", lambda deadline, where="before the next run": where == "before the next run" or check(
        deadline, where))  # let the run start, as if the deadline passed during its first epoch
    with pytest.raises(lifecycle.DeadlineReached, match="after epoch 1"):
        teacher.train_teacher(exp)
    monkeypatch.undo()
    assert len(run_files.read_history(os.path.join(exp.run_dir("teacher"), "history.csv"))) == 1
    assert not run_files.is_complete(exp.run_dir("teacher"))
    exp.deadline = None
    teacher.train_teacher(exp)
    assert [r["epoch"] for r in run_files.read_history(os.path.join(exp.run_dir("teacher"), "history.csv"))] == [1, 2, 3]


def test_reproduce_plan_measures_and_trains_nothing(tmp_path, capsys):
    from conftest import run_cli

    code, out, err = run_cli(capsys, "reproduce", "--plan", "--preset", "smoke", "--weights", "none", "--runs-dir",
                             tmp_path / "runs")
    assert code == 0, err
    assert "measured here: features" in out and "student training" in out and "estimate:" in out
    assert not (tmp_path / "runs" / "synthetic-smoke").exists()  # no run made
