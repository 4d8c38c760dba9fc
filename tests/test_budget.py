"""``--budget-minutes``: epochs sized from measured rates, kept per seed, recorded in every run."""

import json
import os
import shutil
import time

import pytest

from conftest import pooled_model_file
from kd_keras.replay import budget, experiment, layout, presets, run_files, teacher
from kd_keras import data
from kd_keras.errors import UserError

pytestmark = pytest.mark.tensorflow  # see setup.cfg's markers

COUNTS = {"train": 7600, "valid": 1628, "test": 1630}
RATES = budget.Rates(fixed_s=40.0, train_s=1 / 5000, infer_s=1 / 15000, save_s=0.5)


def _run_seconds(epochs, draws=5):
    """One run, written out independently: compile, then each epoch trains, validates and saves, then
    the three splits and the augmented test draws are predicted."""
    per_epoch = 7600 / 5000 + 1628 / 15000 + 0.5
    evaluation = (7600 + 1628 + 1630 + draws * 1630) / 15000
    return 40.0 + epochs * per_epoch + evaluation


def test_the_most_epochs_that_fit_and_no_more():
    seconds = 8 * 60
    epochs = budget.epochs_that_fit(seconds, 15, COUNTS, RATES, draws=5)
    assert 15 * _run_seconds(epochs) <= seconds < 15 * _run_seconds(epochs + 1)
    assert budget.run_minutes(epochs, COUNTS, RATES, 5) == pytest.approx(_run_seconds(epochs) / 60)
    assert budget.epochs_that_fit(10**9, 15, COUNTS, RATES, draws=5) == budget.MAX_EPOCHS  # the paper's 100
    assert budget.epochs_that_fit(60, 15, COUNTS, RATES, draws=5) < 1  # compilation alone takes 10 min


def _seed_with_a_teacher(tmp_path):
    exp = experiment.Experiment(presets.get("smoke"), "synthetic", str(tmp_path), weights="none", verbose=0)
    teacher_dir = exp.run_dir("teacher")
    os.makedirs(teacher_dir)
    splits = {s: [(f"{s}/{i}.png", i % 2) for i in range(n)] for s, n in COUNTS.items()}
    data.Dataset("cats_vs_dogs", ["cats", "dogs"], splits).save(os.path.join(teacher_dir, "split.json"))
    return exp, teacher_dir


def test_a_seed_is_sized_once_and_every_later_command_reuses_it(tmp_path, monkeypatch):
    exp, teacher_dir = _seed_with_a_teacher(tmp_path)
    measured = []
    monkeypatch.setattr(budget, "measure", lambda *args, **kwargs: measured.append(args) or RATES)
    names = [f"student-{m}" for m in ("classic", "hard", "soft")] + [f"hard-chain-{k}" for k in (1, 2)]
    started = time.time()
    lines = []
    sized = budget.size_students(exp, teacher_dir, names, 6, started, log=lines.append)
    epochs, draws = sized.preset.student_epochs, exp.preset.augmented_evaluations
    assert 5 * _run_seconds(epochs, draws) <= 6 * 60 * 0.9 < 5 * _run_seconds(epochs + 1, draws) + 2  # 10 % margin
    assert epochs > 10
    assert sized.budget["epochs"] == epochs and sized.budget["runs"] == 5 and sized.budget["minutes"] == 6
    assert sized.deadline == pytest.approx(started + 360) and exp.preset.student_epochs == 2  # exp itself unchanged
    assert "5 student runs x" in lines[-1] and "5000 training" in lines[-1]
    assert json.load(open(os.path.join(os.path.dirname(teacher_dir), "budget.json"))) == sized.budget
    again = budget.size_students(exp, teacher_dir, names, 6, time.time() - 200, log=lines.append)
    assert len(measured) == 1 and again.budget == sized.budget  # a resumed slice: the same epochs, not re-measured
    with pytest.raises(UserError, match="was sized for --budget-minutes 6"):
        budget.size_students(exp, teacher_dir, names, 5, time.time(), log=lines.append)


def test_a_budget_too_small_for_one_epoch_says_how_many_minutes_it_needs(tmp_path, monkeypatch):
    exp, teacher_dir = _seed_with_a_teacher(tmp_path)
    monkeypatch.setattr(budget, "measure", lambda *args, **kwargs: RATES)
    with pytest.raises(UserError, match=r"--budget-minutes 1: 15 student runs of one epoch each need about"):
        budget.size_students(exp, teacher_dir, [f"run-{k}" for k in range(15)], 1, time.time(), log=lambda *_: None)
    assert not os.path.exists(os.path.join(os.path.dirname(teacher_dir), "budget.json"))


def test_finished_runs_are_not_counted(tmp_path, monkeypatch):
    exp, teacher_dir = _seed_with_a_teacher(tmp_path)
    monkeypatch.setattr(budget, "measure", lambda *args, **kwargs: RATES)
    for name in ("student-classic", "student-hard"):
        run_files.write_json(os.path.join(exp.run_dir(name), "metrics.json"), {})
    sized = budget.size_students(exp, teacher_dir, ["student-classic", "student-hard", "student-soft"], 3,
                                 time.time(), log=lambda *_: None)
    assert sized.budget["runs"] == 1


def test_the_warm_up_measures_a_student_of_the_seed_and_leaves_nothing(tmp_path):

    teacher_file = pooled_model_file(tmp_path / "teacher.keras")  # imported, not trained: the warm-up is the subject
    exp = experiment.Experiment(presets.get("smoke"), "synthetic", str(tmp_path / "runs"), weights="none", verbose=0,
                                teacher_model=teacher_file)
    teacher_dir = teacher.teacher_run(exp)
    shutil.rmtree(exp.cache_dir)  # as on a machine the teacher's run was carried to: its data not yet unpacked
    before = sorted(os.listdir(os.path.dirname(teacher_dir)))
    rates = budget.measure(exp, teacher_dir, 32, log=lambda *_: None)
    assert rates.fixed_s > 0 and rates.train_s > 0 and rates.infer_s > 0 and rates.save_s > 0
    assert rates.train_s > rates.infer_s  # a training step also computes gradients
    assert sorted(os.listdir(os.path.dirname(teacher_dir))) == before  # the scratch run is gone
    assert layout.student_runs(2) == ["student-classic", "student-hard", "student-soft", "hard-chain-1",
                                        "hard-chain-2", "soft-chain-1", "soft-chain-2"]
