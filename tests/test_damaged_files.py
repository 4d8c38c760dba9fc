"""Run and cache files cut short by a crash or a full disk: one error line, or rebuilt."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from kd_keras import input_pipeline
from kd_keras.replay import lifecycle, run_files

pytestmark = pytest.mark.tensorflow  # see setup.cfg's markers


def test_a_truncated_json_file_is_one_damaged_file_error(tmp_path):
    (tmp_path / "config.json").write_text('{"name": "teacher", "pres')
    with pytest.raises(run_files.DamagedFileError, match="config.json is damaged") as info:
        run_files.read_json(str(tmp_path / "config.json"))
    assert "\n" not in str(info.value)


def test_a_garbled_history_is_one_damaged_file_error(tmp_path):
    (tmp_path / "history.csv").write_text("epoch,loss\n1,0.5\nx\x00y,zz\n")
    with pytest.raises(run_files.DamagedFileError, match="history.csv is damaged"):
        run_files.read_history(str(tmp_path / "history.csv"))


@pytest.mark.parametrize("damage", [b"", b"PK\x03\x04 not really", None])
def test_a_damaged_image_cache_is_decoded_again(tmp_path, damage, caplog):
    paths = []
    for k in range(3):
        Image.fromarray(np.full((20, 20, 3), 40 * k, "uint8")).save(tmp_path / f"{k}.png")
        paths.append((str(tmp_path / f"{k}.png"), k % 2))
    cache = tmp_path / "cache"
    first = input_pipeline.cached_images(paths, 8, str(cache), log=lambda *_: None)
    (cache_file,) = list(cache.glob("images-*.npz"))
    if damage is None:  # a valid file of the wrong shape
        np.savez(cache_file, images=np.zeros((3, 4, 4, 3), "uint8"), kept=np.arange(3), skipped=np.array([], str))
    else:
        cache_file.write_bytes(damage)
    again = input_pipeline.cached_images(paths, 8, str(cache), log=lambda *_: None)
    np.testing.assert_array_equal(again[0], first[0])
    assert "is damaged" in caplog.text and caplog.records[-1].levelname == "WARNING"
    third = input_pipeline.cached_images(paths, 8, str(cache), log=lambda *_: None)  # rewritten whole
    np.testing.assert_array_equal(third[0], first[0])


@pytest.mark.parametrize("state", ['{"epoch": ', '{"epoch": "3"}', "[]"])
def test_a_damaged_resume_state_starts_the_run_over_with_a_warning(tmp_path, state, caplog):
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "training_metadata.json").write_text(state)
    (tmp_path / "history.csv").write_text("epoch,loss,accuracy\n1,0.5,0.5\n")  # an earlier attempt's
    assert lifecycle.completed_epochs(str(tmp_path)) == 0
    assert not checkpoint.exists() and "damaged" in caplog.text
    assert not (tmp_path / "history.csv").exists()  # the run over: no epoch of the attempt it drops


@pytest.mark.parametrize("history", ["", "epoch,loss,accuracy\n2,0.5,0.5\n"])
def test_a_history_without_the_epochs_the_state_trained_starts_the_run_over(tmp_path, history, caplog):
    # An emptied history.csv resumed silently, and the finished run reported 1 epoch for 2.
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "training_metadata.json").write_text('{"epoch": 2, "batch": 0}')
    (tmp_path / "history.csv").write_text(history)
    assert lifecycle.completed_epochs(str(tmp_path)) == 0
    assert "lacks epoch 1" in caplog.text and not checkpoint.exists()
    checkpoint.mkdir()
    (checkpoint / "training_metadata.json").write_text('{"epoch": 2, "batch": 0}')
    (tmp_path / "history.csv").write_text("epoch,loss,accuracy\n1,0.6,0.5\n2,0.5,0.5\n")
    assert lifecycle.completed_epochs(str(tmp_path)) == 2  # whole: resumed


def test_a_truncated_predictions_file_is_one_damaged_file_error(tmp_path):
    np.savez(tmp_path / "predictions.npz", train=np.arange(1000.0), label_train=np.zeros(1000))
    raw = (tmp_path / "predictions.npz").read_bytes()
    (tmp_path / "predictions.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(run_files.DamagedFileError, match="predictions.npz is damaged"):
        run_files.read_predictions(str(tmp_path / "predictions.npz"), ["train"])
    np.savez(tmp_path / "ok.npz", train=np.arange(3.0))
    np.testing.assert_array_equal(run_files.read_predictions(str(tmp_path / "ok.npz"), ["train"])["train"], [0, 1, 2])


def _fit(run_dir, init_seed, epochs, deadline=None):
    """A tiny model trained by ``fit_resumable`` on fixed batches; its weights afterwards."""
    import keras
    from conftest import tiny_student

    from kd_keras import input_pipeline

    keras.utils.set_random_seed(init_seed)
    model = tiny_student((8, 8, 3))
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).uniform(0, 1, (32, 8, 8, 3)).astype("float32")
    y = (np.arange(32) % 2).astype("float32")
    data = input_pipeline.ArrayBatches(x, y, 8, shuffle=True, seed=1)
    valid = input_pipeline.ArrayBatches(x, y, 8)
    lifecycle.fit_resumable(model, data, valid, epochs, str(run_dir), model.save, verbose=0, deadline=deadline)
    return [np.array(v) for v in model.weights]


@pytest.mark.filterwarnings("ignore:Skipping variable loading")  # Keras, on the other network's weights
def test_a_resume_state_that_opens_but_cannot_be_loaded_starts_the_run_over(tmp_path, caplog):
    # A full disk can cut the state short after it was opened: h5py still opens the file, but
    # loading it fails (here: the weights of another network), and every rerun died restoring it.
    import time

    import h5py
    import keras

    with pytest.raises(lifecycle.DeadlineReached):
        _fit(tmp_path / "run", 0, 3, deadline=time.time())  # stops after epoch 1, its state kept
    checkpoint = tmp_path / "run" / "checkpoint"
    assert lifecycle.completed_epochs(str(tmp_path / "run")) == 1
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    for name in ("latest.weights.h5", "latest.weights.h5.bkp"):
        other.save_weights(str(checkpoint / "other.weights.h5"))
        os.replace(checkpoint / "other.weights.h5", checkpoint / name)
        with h5py.File(checkpoint / name, "r"):
            pass  # it opens
    caplog.clear()
    resumed = _fit(tmp_path / "run", 5, 3)  # another initialisation, which the restart must keep
    assert "cannot be loaded" in caplog.text
    assert [r["epoch"] for r in run_files.read_history(tmp_path / "run" / "history.csv")] == [1, 2, 3]
    fresh = _fit(tmp_path / "fresh", 5, 3)  # the same run, never interrupted
    for a, b in zip(resumed, fresh):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_a_disk_without_room_for_the_resume_state_is_enospc_before_hdf5_writes(tmp_path, monkeypatch):
    # HDF5 crashed the process (a segmentation fault) when the disk filled while it saved the state.
    import errno
    import shutil
    import time

    with pytest.raises(lifecycle.DeadlineReached):
        _fit(tmp_path / "run", 0, 3, deadline=time.time())
    latest = tmp_path / "run" / "checkpoint" / "latest.weights.h5"
    saved = latest.read_bytes()
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(lifecycle.shutil, "disk_usage", lambda folder: usage._replace(free=2**20))
    with pytest.raises(OSError) as info:
        _fit(tmp_path / "run", 0, 3)
    assert info.value.errno == errno.ENOSPC and "MiB needed" in str(info.value)
    assert latest.read_bytes() == saved and lifecycle.completed_epochs(str(tmp_path / "run")) == 1  # epoch 1 kept
    monkeypatch.undo()
    _fit(tmp_path / "run", 0, 3)  # room again: the same call resumes and finishes
    assert [r["epoch"] for r in run_files.read_history(tmp_path / "run" / "history.csv")] == [1, 2, 3]
    assert not (tmp_path / "run" / "checkpoint").exists()


def test_a_failed_write_leaves_the_old_file_and_no_partial_one(tmp_path):
    (tmp_path / "metrics.json").write_text("{}")

    def fails_half_way(tmp):
        open(tmp, "w").write('{"eval": ')
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        run_files.replace_atomically(str(tmp_path / "metrics.json"), fails_half_way)
    assert os.listdir(tmp_path) == ["metrics.json"] and (tmp_path / "metrics.json").read_text() == "{}"


def test_a_run_folder_made_with_other_settings_is_refused_naming_them(tmp_path):
    from kd_keras.errors import UserError
    from kd_keras.replay import lifecycle

    run = str(tmp_path / "run")
    settings = {"name": "teacher", "preset": {"name": "cpu", "student_lr": 1e-4}, "seed": 0}
    assert lifecycle.open_run(run, settings) is False  # started: config.json written with backend and code
    stored = json.load(open(tmp_path / "run" / "config.json"))
    assert stored["backend"] and stored["code"]["kd_keras"] and {k: stored[k] for k in settings} == settings
    assert lifecycle.open_run(run, settings) is False  # the same settings: resumed
    with pytest.raises(UserError, match=r"other settings \(preset.student_lr, seed\)"):
        lifecycle.open_run(run, {**settings, "preset": {"name": "cpu", "student_lr": 1e-3}, "seed": 1})
    # A setting added in a later version matches a folder made before it at its default, not otherwise.
    later = {**settings, "preset": {**settings["preset"], "student_bn_momentum": 0.99}}
    assert lifecycle.open_run(run, later, {"preset": {"student_bn_momentum": 0.99}}) is False
    with pytest.raises(UserError, match=r"\(preset.student_bn_momentum\)"):
        lifecycle.open_run(run, later, {"preset": {"student_bn_momentum": 0.9}})
    lifecycle.finish_run(run, {"test": np.array([0.2, 0.9])}, {"eval": {}})
    assert lifecycle.open_run(run, settings) is True  # finished: reused
    with pytest.raises(UserError, match="NaN or infinite"):
        lifecycle.finish_run(str(tmp_path / "other"), {"test": np.array([0.2, np.nan])}, {})
    assert not (tmp_path / "other" / "metrics.json").exists()
