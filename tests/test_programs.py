"""Compile once, train many: runs through one reused program equal runs that each compile their own."""

import json
import os

import keras
import numpy as np
import pytest

from kd_keras.distill import offline_targets
from kd_keras.replay import experiment, presets, run_files
from kd_keras.replay.programs import Programs
from kd_keras.replay.training import train_on_images

pytestmark = pytest.mark.tensorflow  # see setup.cfg's markers


def _runs(tmp_path, programs_for_run):
    """Two students (soft, then hard targets) as the replay trains them: their weights drawn from the run seed,
    their data order and augmentation from it too."""
    rng = np.random.default_rng(0)
    counts = {"train": 24, "valid": 8, "test": 8}
    images = {s: (rng.integers(0, 256, (n, 32, 32, 3), dtype="uint8"), None, None) for s, n in counts.items()}
    labels = {s: (rng.random(n) < 0.5).astype("float32") for s, n in counts.items()}
    teacher_p = rng.random(counts["train"]).astype("float32")
    preset = presets.override(presets.get("smoke"), ["batch_size=8", "augmented_evaluations=2"])
    exp = experiment.Experiment(preset=preset, data_dir="synthetic", runs_dir=str(tmp_path), verbose=0)
    parent = tmp_path / "parent"
    parent.mkdir(parents=True)
    run_files.save_predictions(str(parent / "predictions.npz"), test=rng.random(counts["test"]).astype("float32"))
    found = []
    for k, (mode, seed) in enumerate((("soft", 11), ("hard", 12))):
        keras.utils.set_random_seed(seed)  # as start_run does before the run's student is drawn
        program = programs_for_run(k).student(exp, (32, 32, 3), 2)
        run_dir = str(tmp_path / f"run{k}")
        train_on_images(exp, run_dir, seed, program, images, labels, 2, 0.0, {"kind": "student", "parent": str(parent)},
                        targets=teacher_p, mode=mode)
        found.append((run_files.read_predictions(os.path.join(run_dir, "predictions.npz"), ["train", "test"]),
                      json.load(open(os.path.join(run_dir, "metrics.json"))), program))
    return found


def test_two_runs_through_one_program_equal_two_runs_through_fresh_ones(tmp_path):
    made = []
    fresh = _runs(tmp_path / "fresh", lambda k: made.append(Programs()) or made[-1])
    reused = _runs(tmp_path / "reused", lambda k: made[0])  # the first fresh run's program, for both runs again
    assert reused[0][2] is reused[1][2] is fresh[0][2] and fresh[0][2].runs == 3  # one compiled program, 3 runs
    assert fresh[1][2] is not fresh[0][2]
    for (p_fresh, m_fresh, _), (p_reused, m_reused, _) in zip(fresh, reused):
        for split in ("train", "test"):
            np.testing.assert_allclose(p_reused[split], p_fresh[split], atol=1e-5)
        assert m_reused["best"]["epochs"] == m_fresh["best"]["epochs"] == 2
        assert m_reused["test_augmented"]["accuracy_mean"] == pytest.approx(m_fresh["test_augmented"]["accuracy_mean"])
    # Not a copy of the run before: the second run drew its own weights (its predictions differ).
    assert not np.allclose(reused[0][0]["test"], reused[1][0]["test"])


def test_offline_targets_are_the_modes_targets():
    labels = np.array([0, 1, 1, 0])
    p = np.array([0.2, 0.7, 0.4, 0.5], "float32")
    np.testing.assert_array_equal(offline_targets("classic", labels, p), [0, 1, 1, 0])
    np.testing.assert_array_equal(offline_targets("hard", labels, p), [0, 1, 0, 0])  # formula 13: strictly > 0.5
    np.testing.assert_array_equal(offline_targets("soft", labels, p), p)  # formula 14
    rows = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]], "float32")
    np.testing.assert_array_equal(offline_targets("hard", [1, 0], rows, 3), [[0, 1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(offline_targets("classic", [2, 0], rows, 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match="needs the teacher"):
        offline_targets("soft", labels)
