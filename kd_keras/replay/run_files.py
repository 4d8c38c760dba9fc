"""A run folder's files: written atomically, read back whole or refused as damaged. No Keras.

A run folder (:mod:`kd_keras.replay.layout` says where) holds ``config.json`` (its settings,
and the code and backend that made it), ``split.json`` (its images), ``history.csv`` (one row
per epoch), ``predictions.npz``, ``metrics.json`` (written last: a run with it is finished) and,
while it trains, ``checkpoint/`` and ``model.keras`` (:mod:`kd_keras.replay.lifecycle`). The
report reads these through this module alone.
"""

import csv
import json
import os

import numpy as np

from kd_keras.errors import UserError
from kd_keras.files import replace_atomically, write_json, write_text  # noqa: F401  (a run's files are written so)


HISTORY_FIELDS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")








class DamagedFileError(UserError):
    """A run's file that cannot be read back (cut short by a crash or a full disk, or edited)."""


def read_json(path):
    """A JSON file; :class:`DamagedFileError` (one line) when it is cut short or not JSON."""
    try:
        with open(path) as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DamagedFileError(f"{path} is damaged ({str(exc).splitlines()[0][:80]}); remove it, or its run "
                               "folder, and run again") from None


def read_split(run_dir):
    """A run's split as JSON: its ``split.json``, or the archive's ``split.json.gz``; None if it has neither."""
    path = os.path.join(run_dir, "split.json")
    if os.path.exists(path):
        return read_json(path)
    if not os.path.exists(path + ".gz"):
        return None
    import gzip

    try:
        with gzip.open(path + ".gz", "rt") as f:
            return json.load(f)
    except (OSError, EOFError, ValueError) as exc:
        raise DamagedFileError(f"{path}.gz is damaged ({type(exc).__name__}); archive the run again") from None


def save_predictions(path, **arrays):
    replace_atomically(path, lambda tmp: np.savez(tmp, **arrays), suffix=".tmp.npz")


def read_predictions(path, keys):
    """The arrays ``keys`` of a run's ``predictions.npz``; :class:`DamagedFileError` when it is cut short."""
    try:
        with np.load(path, allow_pickle=False) as blob:
            return {key: blob[key] for key in keys}
    except Exception as exc:  # noqa: BLE001 - truncated zips raise zipfile's, zlib's or NumPy's own errors
        raise DamagedFileError(f"{path} is damaged or incomplete ({type(exc).__name__}); remove its run folder "
                               "and run again") from None


def read_history(path):
    """History rows as dicts of floats, one per epoch (a row rewritten on resume counts once)."""
    if not os.path.exists(path):
        return []
    rows = {}
    try:
        with open(path) as f:
            for row in csv.DictReader(f):
                epoch = int(float(row["epoch"]))
                rows[epoch] = {**{k: float(v) for k, v in row.items() if k is not None and v not in ("", None)},
                               "epoch": epoch}
    except (KeyError, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise DamagedFileError(f"{path} is damaged ({type(exc).__name__}: {str(exc)[:60]}); remove it, or its run "
                               "folder, and run again") from None
    return [rows[e] for e in sorted(rows)]


def is_complete(run_dir):
    """A run is finished when its ``metrics.json`` exists and is whole (valid JSON, a dict)."""
    path = os.path.join(run_dir, "metrics.json")
    if not os.path.exists(path):
        return False
    try:
        return isinstance(read_json(path), dict)
    except (OSError, DamagedFileError):
        return False  # truncated: the run is done again


def best_of_history(rows):
    """The paper's "best during training": min loss / max accuracy per set, and the best epoch.

    ``train_accuracy`` is always against the true labels (the paper's "с ручной разметкой");
    a distilled student's accuracy against its training targets is ``train_target_accuracy``.
    """
    if not rows:
        return {}
    best = {
        "train_loss": min(r["loss"] for r in rows),
        "train_accuracy": max(r["accuracy"] for r in rows),
        "epochs": len(rows),
    }
    if "label_accuracy" in rows[0]:  # a distilled student: "accuracy" is against its targets
        best["train_target_accuracy"] = best["train_accuracy"]
        best["train_accuracy"] = max(r["label_accuracy"] for r in rows)
    if "val_accuracy" in rows[0]:
        # The first epoch with the best valid accuracy: the one RunMonitor saved as model.keras.
        best_row = max(sorted(rows, key=lambda r: r["epoch"]), key=lambda r: r["val_accuracy"])
        best.update(valid_loss=min(r["val_loss"] for r in rows),
                    valid_accuracy=best_row["val_accuracy"], best_epoch=int(best_row["epoch"]))
    return best
