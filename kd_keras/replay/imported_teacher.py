"""Your trained teachers as the teacher run: one model, or several averaged into an ensemble;
or finished teacher runs combined into one.

Each model (a ``.keras`` file, loaded in safe mode; see :mod:`kd_keras.user_models`) sees every
split at its own input size, scaled to [0, 1], once. With several, the targets are the average of
their probabilities, ``p = Σ_m w_m p_m`` (equal weights unless given; the weights must be >= 0 and
sum to 1), and every model must fit the dataset's classes: K probabilities, or one sigmoid (or a
two-unit softmax) for two classes. The run folder is laid out as a trained teacher's
(``split.json``, ``predictions.npz``, ``metrics.json``; no history and no augmented test), so
students and chains use it unchanged; its ``config.json`` records each file, its SHA-256, input
size and weight.

Teacher runs (``kd-keras teacher`` with different backbones, say) combine the same way
(:func:`combine_teacher_runs`): their saved predictions are averaged, so nothing is predicted
again; they must share one split (the same data and ``--seed``).

Examples:
    >>> run = import_teacher(exp, ["a.keras", "b.keras"], weights=[0.7, 0.3])  # doctest: +SKIP
    >>> run = combine_teacher_runs(exp, ["runs/a/seed0/teacher", "runs/b/seed0/teacher"])  # doctest: +SKIP
"""

import os
import shutil
import time

import numpy as np

from kd_keras import data, user_models
from kd_keras.errors import UserError
from kd_keras.files import sha256_of
from kd_keras.replay import layout, lifecycle, run_files
from kd_keras.replay.evaluation import predict_splits, score_and_finish
from kd_keras.replay.experiment import SPLITS, class_count, class_labels, load_images, prepare_split, start_run


def import_teacher(exp, model_files, weights=None):
    """The teacher run of ``exp`` made from ``model_files`` (one path, or several for an ensemble).

    One process at a time: another one on the same run folder is refused (:class:`~kd_keras.replay.lifecycle.RunLock`).

    Raises:
        UserError: a file that is not a readable Keras model, one whose outputs do not fit the dataset's
            classes or are not probabilities, or weights that do not match the files or sum to 1.
    """
    files = [model_files] if isinstance(model_files, (str, os.PathLike)) else list(model_files)
    with lifecycle.RunLock(exp.run_dir(layout.TEACHER)):
        return _import(exp, [os.fspath(f) for f in files], _checked_weights(weights, len(files)))


def _checked_weights(weights, count):
    if weights is None or len(weights) == 0:
        return [1.0 / count] * count
    weights = [float(w) for w in weights]
    if len(weights) != count:
        raise UserError(f"--teacher-weight: {len(weights)} weights for {count} teacher models; give one per "
                        "--teacher-model, or none for equal weights")
    if any(not (w >= 0) or w == float("inf") for w in weights) or abs(sum(weights) - 1.0) > 1e-6:
        raise UserError(f"--teacher-weight: the weights {weights} must be >= 0 and sum to 1")
    return weights


def _settings(files, sizes, weights):
    """A single file keeps the settings of runs made before ensembles existed."""
    if len(files) == 1:
        return {"kind": "teacher", "model_file": os.path.abspath(files[0]), "sha256": sha256_of(files[0]),
                "image_size": sizes[0]}
    return {"kind": "teacher", "ensemble": [
        {"model_file": os.path.abspath(f), "sha256": sha256_of(f), "image_size": size, "weight": w}
        for f, size, w in zip(files, sizes, weights)]}


def _probabilities(predictions, units, num_classes, what):
    """The model's predictions as probabilities of the paper's form: one p per image for two classes."""
    everything = np.concatenate([np.ravel(p) for p in predictions.values()])
    sums = predictions["train"].sum(axis=-1) if units > 1 else None
    if (not np.all(np.isfinite(everything)) or everything.min() < 0 or everything.max() > 1
            or (sums is not None and not np.allclose(sums, 1, atol=1e-3))):
        raise UserError(f"{what}: its outputs are not probabilities, or not finite (end the model in a sigmoid or "
                        "a softmax)")
    if num_classes == 2 and units == 2:  # a two-unit softmax: the paper's p is the second class's
        return {s: p[:, 1] for s, p in predictions.items()}
    return predictions


def _import(exp, files, weights):
    teacher_dir = exp.run_dir(layout.TEACHER)
    # Everything that can be checked without the data is, before the run folder exists.
    num_classes = class_count(exp, teacher_dir)
    loaded = []
    for path in files:
        what = f"--teacher-model {path}"
        model = user_models.load_model_file(path, "--teacher-model")
        loaded.append((model, user_models.input_size(model, what), user_models.check_classes(model, num_classes, what),
                       what))
    run_dir, _, finished = start_run(exp, layout.TEACHER, _settings(files, [size for _, size, _, _ in loaded], weights))
    if finished:
        exp.log(f"{run_dir}: done, reused")
        return run_dir
    started = time.time()
    dataset = prepare_split(exp, run_dir)
    averaged, labels = None, None
    for (model, size, units, what), weight in zip(loaded, weights):
        images = load_images(exp, dataset, size)
        labels = class_labels(images, num_classes)
        try:
            p = _probabilities(predict_splits(model, {s: images[s][0] for s in SPLITS}), units, num_classes, what)
        except UserError:
            shutil.rmtree(run_dir)  # made just now, holds nothing else: the fixed file starts afresh
            raise
        averaged = {s: weight * p[s] + (0 if averaged is None else averaged[s]) for s in SPLITS}
    extra = {"kind": "teacher", "imported": True}
    if len(files) > 1:
        extra["ensemble_of"] = len(files)
    return score_and_finish(exp, run_dir, averaged, labels, [], extra, started)


def combine_teacher_runs(exp, run_dirs, weights=None):
    """The teacher run of ``exp`` made by averaging finished teacher runs' saved probabilities.

    Args:
        exp: the experiment whose ``teacher`` run folder receives the ensemble (it must not be
            one of ``run_dirs``).
        run_dirs: finished teacher run folders trained on one split (same data, same seed).
        weights: one weight per run, >= 0, summing to 1; None for equal weights.

    Raises:
        UserError: a folder that is not a finished teacher run, splits or classes that differ,
            or weights that do not fit.
    """
    sources = [os.path.abspath(d) for d in run_dirs]
    weights = _checked_weights(weights, len(sources))
    target = os.path.abspath(exp.run_dir(layout.TEACHER))
    if target in sources:
        raise UserError(f"--teacher {target}: the ensemble is written into this preset's teacher folder, which is one "
                        "of its teachers; give --runs-dir another folder")
    splits = [_finished_teacher_split(d) for d in sources]
    for d, dataset in zip(sources[1:], splits[1:]):
        if dataset.class_names != splits[0].class_names or dataset.splits != splits[0].splits:
            raise UserError(f"--teacher {d}: its split or classes differ from {sources[0]}'s; the teachers of an "
                            "ensemble must be trained on the same data with the same --seed")
    with lifecycle.RunLock(target):
        settings = {"kind": "teacher", "ensemble": [{"run": d, "weight": w} for d, w in zip(sources, weights)]}
        run_dir, _, finished = start_run(exp, layout.TEACHER, settings, parent_dir=sources[0])
        if finished:
            exp.log(f"{run_dir}: done, reused")
            return run_dir
        started = time.time()
        prepare_split(exp, run_dir, parent_dir=sources[0])
        keys = [*SPLITS, *(f"label_{s}" for s in SPLITS)]
        saved = [run_files.read_predictions(os.path.join(d, "predictions.npz"), keys) for d in sources]
        averaged = {s: sum(w * p[s].astype("float64") for p, w in zip(saved, weights)).astype("float32") for s in SPLITS}
        labels = {s: saved[0][f"label_{s}"] for s in SPLITS}
        return score_and_finish(exp, run_dir, averaged, labels, [],
                                {"kind": "teacher", "imported": True, "ensemble_of": len(sources)}, started)


def _finished_teacher_split(run_dir):
    if not os.path.isfile(os.path.join(run_dir, "metrics.json")) or not os.path.isfile(os.path.join(run_dir, "split.json")):
        raise UserError(f"--teacher {run_dir}: not a finished teacher run (no metrics.json or split.json)")
    return data.Dataset.load(os.path.join(run_dir, "split.json"))
