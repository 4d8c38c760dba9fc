"""A run's life: one process at a time, resume after a crash, the best model, a NaN guard, a deadline.

The files it leaves are :mod:`kd_keras.replay.run_files`'s; ``checkpoint/`` (what a resume
needs) and ``model.keras`` (the best-validation model) are written here, while the run trains.
"""

import logging
import math
import os
import shutil
import zlib

import keras
import numpy as np

from kd_keras.errors import NonFiniteLossError, UserError
from kd_keras.replay.run_files import (HISTORY_FIELDS, DamagedFileError, is_complete, read_history, read_json,
                                       replace_atomically, save_predictions, write_json, write_text)

_log = logging.getLogger(__name__)


class DeadlineReached(UserError):
    """``--stop-after`` ran out at an epoch's end; the run resumes from there when run again."""

    exit_code = 3
    prefix = "stopped"


class Deadline(keras.callbacks.Callback):
    """Stops training after the epoch that ends past ``deadline`` (a ``time.time()`` value).

    It asks Keras to stop (so the epoch's progress line is still printed) and keeps the
    :class:`DeadlineReached` in ``reached``; :func:`fit_resumable` raises it once ``fit``
    has returned, the epoch saved for the next attempt.
    """

    def __init__(self, deadline):
        super().__init__()
        self.deadline, self.reached = deadline, None

    def on_epoch_end(self, epoch, logs=None):
        try:
            check_deadline(self.deadline, f"after epoch {epoch + 1}")
        except DeadlineReached as reached:
            self.reached = reached
            self.model.stop_training = True


def check_deadline(deadline, where="before the next run"):
    import time

    if deadline is not None and time.time() > deadline:
        raise DeadlineReached(f"{where}: the --stop-after time is up; run the same command again to resume")

class RunLock:
    """One process at a time in a run folder: an exclusive ``flock`` on ``RUN/.lock``.

    A second process (or a second lock in the same process) on the same run is refused with
    ``RUN is in use by PID N``; the lock goes with the process, however it ends. On systems
    without ``fcntl`` (Windows) nothing is locked.

    Examples:
        >>> with RunLock("runs/example/seed0/teacher"):  # doctest: +SKIP
        ...     train()
    """

    def __init__(self, run_dir):
        self.run_dir, self.path, self.fd = run_dir, os.path.join(run_dir, ".lock"), None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:
            return self
        os.makedirs(self.run_dir, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _lock_holder(fd)
            os.close(fd)
            raise UserError(f"{self.run_dir} is in use by PID {holder}; wait for it to finish or use another "
                            "--runs-dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            import fcntl

            if os.path.isdir(self.run_dir) and os.listdir(self.run_dir) == [".lock"]:  # nothing made: leave nothing
                os.remove(self.path)
                try:
                    os.rmdir(self.run_dir)
                except OSError:
                    pass
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


RECORDED = ("backend", "code")  # in config.json, recorded, never compared


def open_run(run_dir, settings, defaults=None, deadline=None):
    """Opens ``run_dir`` for a run of ``settings``, for both papers: reused, resumed or started.

    A finished run (one with a whole ``metrics.json``) is reused. Any other is started or
    resumed: past ``deadline`` (a ``time.time()`` value) that is :class:`DeadlineReached`, and
    its ``config.json`` gets the settings with the backend and the code that train it
    (:func:`kd_keras.replay.provenance.code_version`). A folder made with other settings is
    refused, naming them, whether finished or not. The backend and the code are recorded, not
    compared: a teacher made with TensorFlow on one machine is the parent of students trained
    with JAX on another, and a run may resume on either.

    Args:
        run_dir: the run's folder (:mod:`~kd_keras.replay.layout`); the caller holds its
            :class:`RunLock`.
        settings: what makes the run (JSON values), compared with a ``config.json`` already there.
        defaults: the values of settings added in a later version (a nested dict like
            ``settings``): a folder made before a setting existed matches it at its default.

    Returns:
        True when the run is finished (nothing to do), False when it is to be trained.

    Raises:
        UserError: the folder was made with other settings.
    """
    finished = is_complete(run_dir)
    if not finished:
        check_deadline(deadline)
    path = os.path.join(run_dir, "config.json")
    if os.path.exists(path):
        stored = {key: value for key, value in read_json(path).items() if key not in RECORDED}
        changed = _changed(stored, settings, defaults or {})
        if changed:
            raise UserError(f"{run_dir} was made with other settings ({', '.join(changed)}); remove it or use another "
                            "--runs-dir")
        settings = stored
    if finished:
        return True
    from kd_keras.replay import provenance

    os.makedirs(run_dir, exist_ok=True)
    write_json(path, {**settings, "backend": keras.backend.backend(), "code": provenance.code_version()})
    return False


def _changed(stored, current, defaults, prefix=""):
    """The keys whose values differ, dotted (``preset.student_lr``); a key ``stored`` lacks at its default is none."""
    changed = []
    for key in sorted(set(stored) | set(current)):
        default = defaults.get(key) if isinstance(defaults, dict) else None
        if key not in stored and key in (defaults if isinstance(defaults, dict) else {}) and current[key] == default:
            continue  # a setting added later, at its default
        a, b = stored.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += _changed(a, b, default if isinstance(default, dict) else {}, f"{prefix}{key}.")
        elif key not in stored or key not in current or a != b:
            changed.append(f"{prefix}{key}")
    return changed


def finish_run(run_dir, predictions, metrics):
    """Writes ``predictions.npz``, then ``metrics.json`` last: only then is the run finished.

    Raises:
        UserError: a float prediction is NaN or infinite; the run is not marked finished.
    """
    broken = [k for k, v in predictions.items() if np.asarray(v).dtype.kind == "f" and not np.all(np.isfinite(v))]
    if broken:
        raise UserError(f"{run_dir}: the model's predictions on {', '.join(broken)} are NaN or infinite; the run is "
                        "not marked finished (remove the folder to train it afresh)")
    save_predictions(os.path.join(run_dir, "predictions.npz"), **predictions)
    write_json(os.path.join(run_dir, "metrics.json"), metrics)


def _lock_holder(fd, tries=20):
    """The PID the lock's holder wrote into it; it writes just after it locks, so an empty file is
    read again for up to a second."""
    import time

    for _ in range(tries):
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if holder:
            return holder
        time.sleep(0.05)
    return "?"


class RunMonitor(keras.callbacks.Callback):
    """Writes ``history.csv`` each epoch, keeps the best-validation model, stops on NaN.

    Put it before ``keras.callbacks.BackupAndRestore`` so an epoch is recorded before the
    resume state says it is done. On restart it reads the history back, so the best
    value survives a crash.

    Args:
        run_dir: the run folder.
        save_best: ``save_best(path)`` writes the model to keep (the student, for a Distiller).
        monitor: the value that picks the best epoch (the paper's "best validation quality").
    """

    def __init__(self, run_dir, save_best, monitor="val_accuracy"):
        super().__init__()
        self.run_dir, self.save_best, self.monitor = run_dir, save_best, monitor
        self.history_path = os.path.join(run_dir, "history.csv")
        self.best_path = os.path.join(run_dir, "model.keras")

    def on_train_begin(self, logs=None):
        self.rows = read_history(self.history_path)
        values = [r[self.monitor] for r in self.rows if self.monitor in r]
        self.best = max(values) if values and os.path.exists(self.best_path) else -math.inf
        self.epoch = 0

    def forget(self):
        """Forgets the earlier attempts' epochs and best model (:func:`start_over` removed their files)."""
        self.rows, self.best = [], -math.inf

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise NonFiniteLossError(
                f"loss became {float(loss)} in epoch {self.epoch + 1}; training stopped, the last "
                f"good checkpoint is kept in {self.run_dir}")

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        row = {"epoch": epoch + 1, **{k: logs[k] for k in logs}}
        self.rows = [r for r in self.rows if r["epoch"] != epoch + 1] + [row]
        fields = list(HISTORY_FIELDS) + sorted({k for r in self.rows for k in r} - set(HISTORY_FIELDS))
        lines = [",".join(fields)] + [",".join(repr(r[f]) if f in r else "" for f in fields) for r in self.rows]
        if self.monitor in logs and logs[self.monitor] > self.best:
            self.best = logs[self.monitor]
            replace_atomically(self.best_path, self.save_best, suffix=".tmp.keras")
        write_text(self.history_path, "\n".join(lines) + "\n")


class ResumeState(keras.callbacks.BackupAndRestore):
    """Keras's ``BackupAndRestore``, made safe against full disks and states cut short.

    - **Restore:** Keras falls back to the previous state only on an ``OSError``. A state cut
      short by a full disk can still open and then fail to load (variables missing or
      mis-shaped), and every rerun would die restoring it. Here any failure puts back the
      weights and optimizer state the run started with, removes the state and the earlier
      attempts' history and best model (through ``monitor``), and says so on stderr: the run
      then trains from its first epoch.
    - **Save:** HDF5 crashes the process (a segmentation fault) when the disk fills while it
      writes. So before each save the free space is checked against the state's size, and a
      disk without room is an ``ENOSPC`` ``OSError`` (one line from the CLI) with the
      previous epoch's state still whole. After the run's last epoch nothing is saved: the run
      is evaluated and finished at once (a crash then retrains that epoch).

    Args:
        backup_dir: the run's ``checkpoint`` folder.
        monitor: the run's :class:`RunMonitor`, which forgets its earlier epochs.
    """

    def __init__(self, backup_dir, monitor):
        super().__init__(backup_dir, double_checkpoint=True, delete_checkpoint=False)
        self.monitor = monitor

    def on_train_begin(self, logs=None):
        if not os.path.exists(self._weights_path) and not os.path.exists(self._prev_weights_path):
            return super().on_train_begin(logs)  # a fresh run: nothing to restore
        model, optimizer = self.model, self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(model.trainable_variables)
        variables = list(model.variables) + (list(optimizer.variables) if optimizer is not None else [])
        initial = [keras.ops.convert_to_numpy(v) for v in variables]
        try:
            super().on_train_begin(logs)
        except Exception as exc:  # noqa: BLE001 - h5py's, Keras's and NumPy's errors for a state cut short
            for variable, value in zip(variables, initial):
                variable.assign(value)
            model._initial_epoch = None
            reason = str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
            start_over(self.monitor.run_dir, f"the resume state in {self.backup_dir} cannot be loaded ({reason})")
            self.monitor.forget()

    def _save_model(self):
        if self._current_epoch >= self.params.get("epochs", math.inf):
            return  # the run's last epoch: it finishes now, and its state would be removed unread
        variables = list(self.model.variables)
        if self.model.optimizer is not None:
            variables += list(self.model.optimizer.variables)
        # Values, plus HDF5's few KiB of metadata per variable. The old .bkp's room is reused.
        needed = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize + 4096 for v in variables) + 2**20
        if os.path.exists(self._prev_weights_path):
            needed -= os.path.getsize(self._prev_weights_path)
        os.makedirs(self.backup_dir, exist_ok=True)
        check_free_space(self.backup_dir, needed)
        super()._save_model()


def check_free_space(folder, needed):
    """Raises ``OSError(ENOSPC)`` naming ``folder`` when its disk has less than ``needed`` bytes free."""
    import errno

    free = shutil.disk_usage(folder).free
    if free < needed:
        raise OSError(errno.ENOSPC, f"No space left on device: {needed / 2**20:.0f} MiB needed, "
                                    f"{free / 2**20:.0f} MiB free", folder)


def fit_resumable(model, train, valid, epochs, run_dir, save_best, verbose=1, deadline=None, tensorboard=False):
    """``model.fit`` that resumes from the last completed epoch after any crash.

    Args:
        train: the training data (e.g. :class:`kd_keras.input_pipeline.ArrayBatches`), or a
            function ``train(epochs_done)`` that builds it; a resumed run calls it with the
            number of epochs already trained, so that its shuffle and augmentation can take
            :func:`resumed_seed`. (A seeded pipeline built the same way in a new process
            starts its streams over: the epoch after a resume would replay epoch 1's exact
            batches.) Callers that seed layers of the model itself read
            :func:`completed_epochs` before they build it.
        deadline: a ``time.time()`` value; training stops with :class:`DeadlineReached` after
            the first epoch that ends past it, its state saved for the next attempt.
        tensorboard: also write TensorBoard logs to ``run_dir/tensorboard`` (TensorFlow only:
            Keras's TensorBoard callback writes with ``tf.summary``).

    Returns the history rows of all epochs, including those of earlier attempts.
    """
    os.makedirs(run_dir, exist_ok=True)
    checkpoint = os.path.join(run_dir, "checkpoint")
    done = completed_epochs(run_dir)
    if done:
        _log.info(f"resuming {run_dir} after epoch {done} of {epochs}")
    if callable(train):
        train = train(done)
    # double_checkpoint keeps the previous state, used when a kill cut the latest one short;
    # the state is removed here once the run is complete, not by Keras when fit stops early.
    monitor = RunMonitor(run_dir, save_best)
    callbacks = [monitor, ResumeState(checkpoint, monitor)]
    stop = Deadline(deadline) if deadline is not None else None
    if stop is not None:
        callbacks.append(stop)
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard")))
    # BackupAndRestore leaves a restored run's epoch on the model (``_initial_epoch``), and
    # Keras reads it in every later fit: a model reused for the next run (the compiled
    # Distiller cache) would start that run at the restored epoch and train fewer epochs.
    model._initial_epoch = None
    # The input pipelines shuffle themselves; Keras's own shuffle would only warn.
    model.fit(train, validation_data=valid, epochs=epochs, callbacks=callbacks, verbose=verbose, shuffle=False)
    rows = read_history(os.path.join(run_dir, "history.csv"))
    if stop is not None and stop.reached is not None and len(rows) < epochs:
        raise stop.reached
    shutil.rmtree(checkpoint, ignore_errors=True)
    return rows


def completed_epochs(run_dir):
    """Epochs an interrupted run has completed (0 for a new one), from its resume state.

    A state that cannot be read, or a ``history.csv`` that lacks epochs the state says were
    trained, starts the run over (:func:`start_over`) instead of resuming into a run whose
    files disagree.
    """
    checkpoint = os.path.join(run_dir, "checkpoint")
    latest = os.path.join(checkpoint, "latest.weights.h5")
    if os.path.exists(latest) and not _readable_h5(latest) and not _readable_h5(latest + ".bkp"):
        start_over(run_dir, f"the resume state in {checkpoint} is unreadable")  # a kill in the very first save
        return 0
    state = os.path.join(checkpoint, "training_metadata.json")
    if not os.path.exists(state):
        return 0
    try:
        epoch = read_json(state)["epoch"]
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            raise KeyError("epoch")
    except (DamagedFileError, KeyError, TypeError):
        start_over(run_dir, f"the resume state in {checkpoint} is damaged")
        return 0
    history = os.path.join(run_dir, "history.csv")
    missing = sorted(set(range(1, epoch + 1)) - {row["epoch"] for row in read_history(history)})
    if missing:
        start_over(run_dir, f"{history} lacks epoch {missing[0]}, which the resume state has trained")
        return 0
    return epoch


def start_over(run_dir, why):
    """Removes an interrupted run's resume state, history and best model, and says ``why`` on stderr."""
    shutil.rmtree(os.path.join(run_dir, "checkpoint"), ignore_errors=True)
    for name in ("history.csv", "model.keras"):
        if os.path.exists(os.path.join(run_dir, name)):
            os.remove(os.path.join(run_dir, name))
    _log.warning(f"{why}; this run starts over from its first epoch")


def resumed_seed(seed, epochs_done):
    """The data seed of a run resumed after ``epochs_done`` epochs; ``seed`` itself for a fresh start.

    An uninterrupted run is unchanged; a resumed one draws shuffles and augmentations it
    has not trained on, the same ones each time it is resumed at the same epoch.
    """
    if not epochs_done:
        return seed
    return zlib.crc32(f"{seed}/resumed-after/{epochs_done}".encode()) & 0x7FFFFFFF


def _readable_h5(path):
    import h5py

    try:
        with h5py.File(path, "r"):
            return True
    except OSError:
        return False

