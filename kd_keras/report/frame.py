"""Every finished run as one tidy ``pandas.DataFrame``: the source of the report's tables.

Example (a notebook):
    >>> from kd_keras.report import load_runs
    >>> runs = load_runs("runs")
    >>> runs.query("split == 'test' and kind == 'student'").groupby("run").accuracy.agg(["mean", "std"])
"""

import os

import pandas as pd

from kd_keras.replay import layout
from kd_keras.replay.run_files import read_json

COLUMNS = ["experiment", "seed", "run", "kind", "mode", "generation", "split", "accuracy", "loss",
           "uncertainty", "backbone", "weights", "image_size", "preset", "run_dir"]

# split name in the frame -> (where in metrics.json, which keys hold loss and accuracy)
_KD_SPLITS = {
    "train": ("eval", "train"), "valid": ("eval", "valid"), "test": ("eval", "test"),
    "train_best": ("best", "train"), "valid_best": ("best", "valid"),
    "train_targets_best": ("best", "train_target"),
    "test_augmented": ("entry", "test_augmented"), "test_augmented_mean": ("mean", "test_augmented"),
    "test_teacher_labels": ("entry", "test_teacher_labels"),
    "test_teacher_labels_augmented": ("entry", "test_teacher_labels_augmented"),
}


def _kd_rows(run_dir, metrics, config, experiment, seed):
    preset = config.get("preset", {})
    base = {"experiment": experiment, "seed": seed, "run": os.path.basename(run_dir),
            "kind": metrics.get("kind") or config.get("kind", "timing"), "mode": config.get("mode"),
            "generation": config.get("generation"), "backbone": config.get("backbone"),
            "weights": config.get("weights"), "preset": preset.get("name"), "run_dir": run_dir,
            "image_size": (preset.get("teacher_image_size") or preset.get("image_size"))
            if config.get("kind") == "teacher" else preset.get("image_size")}
    rows = []
    for split, (where, key) in _KD_SPLITS.items():
        if where == "eval":
            entry = metrics.get("eval", {}).get(key)
            values = entry and (entry["accuracy"], entry["loss"], entry["uncertainty"])
        elif where == "best":
            best = metrics.get("best", {})
            values = (f"{key}_accuracy" in best) and (best[f"{key}_accuracy"], best.get(f"{key}_loss"), None)
        elif where == "entry":
            entry = metrics.get(key)
            values = entry and (entry["accuracy"], entry["loss"], None)
        else:
            entry = metrics.get(key) or {}
            values = "accuracy_mean" in entry and (entry["accuracy_mean"], entry["loss_mean"], None)
        if values:
            rows.append({**base, "split": split, "accuracy": values[0], "loss": values[1], "uncertainty": values[2]})
    return rows


def _loss_rows(seed_dir, metrics, config, preset):
    return [{"experiment": f"losses-{preset}/{config.get('dataset')}", "seed": config.get("seed"),
             "run": config.get("loss"), "kind": "loss", "mode": None, "generation": None, "split": "valid",
             "accuracy": metrics["valid_accuracy"], "loss": metrics["valid_loss"], "uncertainty": None,
             "backbone": config.get("backbone"), "weights": config.get("weights"),
             "image_size": config.get("image_size"), "preset": preset, "run_dir": seed_dir}]


def load_runs(runs_dir="runs"):
    """One row per finished run and split, for every experiment under ``runs_dir``.

    Distillation runs give the splits ``train``, ``valid``, ``test`` (the best-validation
    model, un-augmented), ``train_best`` / ``valid_best`` (best during training; train
    accuracy against the true labels), ``train_targets_best`` (against the distillation
    targets), ``test_augmented`` (best of K draws), ``test_augmented_mean`` (their mean)
    and ``test_teacher_labels[_augmented]``. Loss-study runs give ``valid``.

    Returns:
        A ``pandas.DataFrame`` with the columns :data:`COLUMNS`, sorted by experiment,
        seed, run and split order; empty (with those columns) when nothing is finished.
    """
    rows = []
    for run in layout.finished_runs(runs_dir):
        config_path = os.path.join(run.path, "config.json")
        config = read_json(config_path) if os.path.exists(config_path) else {}
        metrics = read_json(os.path.join(run.path, "metrics.json"))
        if run.paper == "A":
            rows += _loss_rows(run.path, metrics, config, run.preset)
        elif run.name != layout.TIMING:
            rows += _kd_rows(run.path, metrics, config, run.experiment, run.seed)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["generation"] = frame["generation"].astype("Int64")  # missing for teachers and loss runs
    order = {split: i for i, split in enumerate(list(_KD_SPLITS) + ["valid"])}
    frame["_order"] = frame["split"].map(order)
    frame = frame.sort_values(["experiment", "seed", "run", "_order"], kind="stable").drop(columns="_order")
    return frame.reset_index(drop=True)
