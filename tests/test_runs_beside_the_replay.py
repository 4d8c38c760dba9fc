"""Runs outside Paper B's replay: Paper A's loss study on a user's folder, a fine-tuned teacher, and
the run-folder rules the report relies on."""

import dataclasses
import glob
import json
import os

import keras
import numpy as np
import pytest
from kd_keras.errors import UserError
from PIL import Image

from kd_keras.replay import experiment, paper_a, presets, run_files, teacher
from kd_keras import models, report

pytestmark = pytest.mark.tensorflow  # see setup.cfg's markers


def test_a_truncated_metrics_file_is_not_a_finished_run(tmp_path):
    (tmp_path / "metrics.json").write_text('{"eval": {"test": {"accur')
    assert not run_files.is_complete(str(tmp_path))
    (tmp_path / "metrics.json").write_text('{"eval": {}}')
    assert run_files.is_complete(str(tmp_path))


def test_report_on_empty_runs_dir_writes_nothing(tmp_path):
    assert report.write_report(str(tmp_path), str(tmp_path / "r"), str(tmp_path / "f"), log=lambda *_: None) == []


def _uneven_dataset(root):
    rng = np.random.default_rng(0)
    for name, count, tint in (("red fox", 30, (200, 80, 40)), ("snowy owl", 12, (230, 230, 240)), ("moss", 20, (40, 160, 60))):
        for split, n in (("train", count), ("valid", max(4, count // 3))):
            os.makedirs(root / split / name, exist_ok=True)
            for i in range(n):
                pixels = np.clip(rng.normal(tint, 40, (24, 24, 3)), 0, 255).astype("uint8")
                Image.fromarray(pixels).save(root / split / name / f"{i}.jpg")
    return root


def test_loss_study_on_uneven_classes_with_spaces_and_its_table(tmp_path):
    data_dir = _uneven_dataset(tmp_path / "Critters")
    runs_dir = str(tmp_path / "runs")
    preset = presets.get("smoke")
    from kd_keras import cli  # as a user runs it

    cli.main(["losses", "--data-dir", str(data_dir), "--loss", "softmax", "--loss", "am-softmax", "--loss",
              "l-softmax", "--seed", "0", "--seed", "1", "--preset", "smoke", "--backbone", "ResNet50",
              "--weights", "none", "--runs-dir", runs_dir, "--quiet"])
    run_dirs = sorted(glob.glob(os.path.join(runs_dir, "losses-smoke", "Critters", "*", "seed*")))
    assert len(run_dirs) == 6 and all(os.path.exists(os.path.join(d, "metrics.json")) for d in run_dirs)
    metrics = json.load(open(os.path.join(run_dirs[0], "metrics.json")))
    predictions = np.load(os.path.join(run_dirs[0], "predictions.npz"))
    assert metrics["valid_accuracy"] == pytest.approx(np.mean(predictions["predicted"] == predictions["label"]))
    assert metrics["best"]["epochs"] == preset.loss_epochs
    paths = report.write_report(runs_dir, str(tmp_path / "results"), str(tmp_path / "figures"), log=lambda *_: None)
    table = open(os.path.join(tmp_path, "results", "losses_smoke_frozen.md")).read()
    assert "Critters ours" in table and "(n=2)" in table and "best" in table and "frozen backbone features" in table
    assert "(n=2 seeds)" in table  # each loss minus the best, paired by seed
    assert any(p.endswith("loss_curves_Critters.png") for p in paths)
    # Another learning rate on the same runs folder: refused before anything trains, not silently reused.
    with pytest.raises(UserError, match=r"other settings \(lr\)"):
        paper_a.study_losses([str(data_dir)], ["softmax"], [0], dataclasses.replace(preset, loss_lr=0.5),
                                runs_dir=runs_dir, backbone="ResNet50", weights="none", verbose=0)


def test_fine_tuned_teacher_trains_the_whole_network(tmp_path, monkeypatch):
    preset = dataclasses.replace(presets.get("smoke"), teacher_fine_tune=True, teacher_epochs=1)
    exp = experiment.Experiment(preset, "synthetic", str(tmp_path), weights="none", verbose=0)
    initial = {}
    real = models.teacher

    def recording_teacher(*args, **kwargs):
        model = real(*args, **kwargs)
        initial["weights"] = [np.array(v) for v in models.teacher_backbone(model).trainable_variables]
        return model

    monkeypatch.setattr(teacher.models, "teacher", recording_teacher)
    run = teacher.train_teacher(exp)
    config = json.load(open(os.path.join(run, "config.json")))
    assert config["fine_tune"] is True and config["normalized_features"] is False
    trained = keras.models.load_model(os.path.join(run, "model.keras"))
    after = [np.array(v) for v in models.teacher_backbone(trained).trainable_variables]
    assert len(after) == len(initial["weights"]) > 10
    moved = [i for i, (a, b) in enumerate(zip(initial["weights"], after)) if a.shape != b.shape or not np.allclose(a, b)]
    assert all(initial["weights"][i].shape == after[i].shape for i in range(len(after)))
    assert len(moved) > len(after) // 2  # the backbone trained, not only the head
    metrics = json.load(open(os.path.join(run, "metrics.json")))
    assert metrics["best"]["epochs"] == 1 and "test_augmented" in metrics
