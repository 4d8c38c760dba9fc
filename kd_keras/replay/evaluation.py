"""A finished run's evaluation: predictions on every split, the augmented test draws, ``metrics.json``."""

import os
import time

import numpy as np

from kd_keras import input_pipeline, metrics
from kd_keras.replay import lifecycle, run_files
from kd_keras.replay.experiment import SPLITS

def one_per_image(p):
    """One probability per image for a sigmoid output, rows of K probabilities otherwise."""
    p = np.asarray(p)
    return p.reshape(-1) if p.shape[-1] == 1 else p


def predict_splits(model, images_by_split):
    """Predictions per split from one ``predict`` call (one trace instead of one per split)."""
    names = list(images_by_split)
    p = one_per_image(input_pipeline.predict_images(model, np.concatenate([images_by_split[s] for s in names])))
    ends = np.cumsum([len(images_by_split[s]) for s in names])
    return dict(zip(names, np.split(p, ends[:-1])))


def augmented_draws(predict_augmented, repeats):
    """``repeats`` predictions of the test set, each with a new draw of the training augmentation."""
    return [predict_augmented() for _ in range(repeats)]


def score_draws(draws, labels):
    """The paper's "test with augmentation" over K draws, with what it hides.

    The paper reports the best loss and the best accuracy of several draws, each on its
    own: an optimistic statistic. Every draw is kept, with the best (``loss`` = min,
    ``accuracy`` = max, as the paper) and the mean and standard deviation of the draws.
    """
    scores = [{"accuracy": metrics.accuracy(p, labels), "loss": metrics.crossentropy(p, labels)}
              for p in draws]
    acc, loss = np.array([d["accuracy"] for d in scores]), np.array([d["loss"] for d in scores])
    return {"accuracy": float(acc.max()), "loss": float(loss.min()), "repeats": len(draws), "draws": scores,
            "accuracy_mean": float(acc.mean()), "accuracy_std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
            "loss_mean": float(loss.mean()), "loss_std": float(loss.std(ddof=1)) if len(loss) > 1 else 0.0}


def score_and_finish(exp, run_dir, predictions, labels, history, extra, started, teacher_labels=None, augmented=None):
    """Scores the run and finishes it (:func:`~kd_keras.replay.lifecycle.finish_run`: non-finite predictions refused)."""
    result = {"best": run_files.best_of_history(history), **extra}
    result["eval"] = {s: metrics.summary(predictions[s], labels[s]) for s in SPLITS}
    if augmented is not None:
        draws = augmented()
        result["test_augmented"] = score_draws(draws, labels["test"])
        if teacher_labels is not None:
            result["test_teacher_labels"] = {
                "accuracy": metrics.accuracy(predictions["test"], teacher_labels),
                "loss": metrics.crossentropy(predictions["test"], teacher_labels)}
            result["test_teacher_labels_augmented"] = score_draws(draws, teacher_labels)
    result["seconds"] = round(time.time() - started, 1)  # the whole run: training, predictions and draws
    lifecycle.finish_run(run_dir, {**predictions, **{f"label_{s}": labels[s] for s in SPLITS}}, result)
    exp.log(f"{os.path.relpath(run_dir, exp.runs_dir)}: test accuracy {result['eval']['test']['accuracy']:.4f}")
    return run_dir
