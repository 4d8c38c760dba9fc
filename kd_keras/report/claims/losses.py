"""Paper A's claims: its Table 4 ranking and its reading of the loss curves (figures 6-7)."""

import os

import numpy as np

from kd_keras.report import statistics as st
from kd_keras.report.claims.evidence import Claim, make_claim, shared_images
from kd_keras.report.paper_values import dataset_key
from kd_keras.replay.run_files import read_history
from kd_keras.report.statistics import Part

TABLE_4 = "not a sentence: the ranking of the thesis's Table 4 (accuracy after training)"
CURVES = ("The thesis reads: softmax overfits on Weather (test loss above train at the end); cosine trains well "
          "though test loss rises after epoch 8; on Fruits softmax and AM-softmax train better than cosine; "
          "on Covid19 softmax is best.")
RISE_AFTER = 8  # "test loss rises after epoch 8"


def _valid_correct(run_dir):
    blob = np.load(os.path.join(run_dir, "predictions.npz"))
    return blob["predicted"] == blob["label"]


def loss_difference(runs_a, runs_b):
    """Valid accuracy of loss A minus loss B, paired by seed, each image counted once.

    Args:
        runs_a, runs_b: ``{seed: run_dir}`` of two losses on one dataset.
    """
    common = sorted(set(runs_a) & set(runs_b))
    if not common:
        return None
    dirs = [runs_a[s] for s in common] + [runs_b[s] for s in common]
    return st.compare_correct([_valid_correct(runs_a[s]) for s in common],
                              [_valid_correct(runs_b[s]) for s in common], shared_images(dirs, "valid"))


def table_4_claims(datasets, thesis):
    """Per dataset, is the thesis's best loss (Table 4) also ours?

    Args:
        datasets: ``{dataset: {loss: {seed: run_dir}}}`` (see :func:`kd_keras.report.loss_groups`).
        thesis: ``{loss: {dataset key: accuracy}}`` (Table 4).
    """
    rows = []
    for name, by_loss in sorted(datasets.items()):
        theirs = {loss: thesis[loss][dataset_key(name)] for loss in thesis
                  if dataset_key(name) in thesis[loss] and loss in by_loss}
        if len(theirs) < 2:
            continue
        best = max(theirs, key=theirs.get)
        others = sorted(loss for loss in theirs if loss != best)
        parts = [Part(loss_difference(by_loss[best], by_loss[loss]), "above", 0.0) for loss in others]
        ranking = " > ".join(f"{loss} {theirs[loss]:.2f}" for loss in sorted(theirs, key=theirs.get, reverse=True))
        rows.append(make_claim(
            f"{name}: {best} is the best loss", TABLE_4,
            f"valid accuracy, {best} minus each other loss, paired by seed on the shared valid images "
            f"({len(parts)} parts)", ranking, parts, [f"{best} − {loss}" for loss in others], "above", "0"))
    return rows


def _histories(by_seed):
    return {seed: read_history(os.path.join(d, "history.csv")) for seed, d in sorted(by_seed.items())
            if os.path.exists(os.path.join(d, "history.csv"))}


def _per_seed(by_seed, value):
    values = [value(h) for h in _histories(by_seed).values() if h]
    return st.compare_scalars(values) if values else None


def curve_claims(datasets):
    """The thesis's reading of its loss curves, each on our per-epoch history of the same loss and data."""
    rows = []
    weather = datasets.get("weather", {})
    if "softmax" in weather:
        c = _per_seed(weather["softmax"], lambda h: h[-1]["val_loss"] - h[-1]["loss"])
        rows.append(c and make_claim(
            "weather: softmax overfits (valid loss above train loss at the end)", CURVES,
            "softmax on Weather: valid loss minus train loss at the last epoch", "Fig. 6 (b)",
            [Part(c, "above", 0.0)], ["valid − train loss"], "above", "0",
            text=lambda c: c.text(scale=1, unit="", digits=3)))
    if "cosine" in weather:
        histories = _histories(weather["cosine"])
        epochs = min((len(h) for h in histories.values()), default=0)
        if epochs > RISE_AFTER:
            c = _per_seed(weather["cosine"], lambda h: h[-1]["val_loss"] - h[RISE_AFTER - 1]["val_loss"])
            rows.append(make_claim(
                "weather: cosine's valid loss rises after epoch 8", CURVES,
                f"cosine on Weather: valid loss at the last epoch ({epochs}) minus at epoch {RISE_AFTER}",
                "Fig. 6 (a)", [Part(c, "above", 0.0)], [f"epoch {epochs} − epoch {RISE_AFTER}"], "above", "0",
                text=lambda c: c.text(scale=1, unit="", digits=4)))
        elif histories:
            rows.append(Claim("weather: cosine's valid loss rises after epoch 8", CURVES,
                              f"needs more than {RISE_AFTER} epochs", "Fig. 6 (a)", f"the runs train {epochs} epochs",
                              "cannot be judged at this scale", st.UNSURE,
                              f"{len(histories)} seed{'s' * (len(histories) != 1)}"))
    fruits = datasets.get("fruits", {})
    if "cosine" in fruits and {"softmax", "am-softmax"} <= set(fruits):
        def final_train_accuracy(by_seed):
            return {seed: h[-1]["accuracy"] for seed, h in _histories(by_seed).items() if h}
        cosine = final_train_accuracy(fruits["cosine"])
        parts, labels = [], []
        for loss in ("softmax", "am-softmax"):
            ours = final_train_accuracy(fruits[loss])
            common = sorted(set(ours) & set(cosine))
            if not common:
                return [row for row in rows if row is not None]
            parts.append(Part(st.compare_scalars([ours[s] - cosine[s] for s in common]), "above", 0.0))
            labels.append(f"{loss} − cosine")
        rows.append(make_claim(
            "fruits: softmax and AM-softmax train better than cosine", CURVES,
            "train accuracy at the last epoch (the losses' values are on different scales), softmax minus cosine "
            "and AM-softmax minus cosine, paired by seed (2 parts)", "Fig. 7", parts, labels, "above", "0"))
    return [row for row in rows if row is not None]


def loss_claims(datasets, thesis):
    """Paper A: :class:`Claim` rows of Table 4 and of the loss curves."""
    return table_4_claims(datasets, thesis) + curve_claims(datasets)
