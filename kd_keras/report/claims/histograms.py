"""Paper B's observations on the histograms of predictions (section 4.2 and figure 9).

The histograms have 20 bins of width 0.05 over [0, 1]; the "end bins" are [0, 0.05) and
[0.95, 1], the "inner bins" the 18 between them, split at 0.5 into a lower and an upper half.
"""

import os

import numpy as np

from kd_keras import metrics
from kd_keras.replay import layout
from kd_keras.report import paper_values as paper
from kd_keras.report.claims.distillation import GENERATIONS, SETS
from kd_keras.report.claims.evidence import chain_run, histogram, make_claim, per_seed, predictions, scalar_comparison
from kd_keras.report.statistics import Part, compare_scalars

NETWORKS = layout.NETWORKS
CONFIDENT = 0.80  # "very confident": at least 80 % of predictions in the two end bins

OBSERVATIONS = ("all networks are very confident (mass in the two end bins); the teacher most of all; on the "
                "training set the hard student is the least confident, classic and soft in between")
TEACHER_ERRS = "The teacher errs more on dog images, and the soft student inherits that uncertainty on [0.5, 1]."
FIGURE_9 = ("Figure 9: for the soft chain, with each step more test predictions fall into the inner bins, "
            "mostly on [0.5, 1].")


def end_mass(h):
    """The share of predictions in the two end bins."""
    return float(h[0] + h[-1])


def inner_lower(h):
    """The share in the inner bins below 0.5, [0.05, 0.5)."""
    return float(np.sum(h[1:10]))


def inner_upper(h):
    """The share in the inner bins from 0.5, [0.5, 0.95)."""
    return float(np.sum(h[10:19]))


def _paper_end(net, split):
    return end_mass(np.asarray(paper.HISTOGRAMS[split][net]))


def _end_of(run, split):
    return lambda _, found: end_mass(histogram(run, split)(found))


def confident_claim(seeds):
    parts, labels = [], []
    for split in SETS:
        for net, run in NETWORKS.items():
            c = scalar_comparison(seeds, _end_of(run, split))
            parts.append(None if c is None else Part(c, "above", CONFIDENT))
            labels.append(f"{net} on {split}")
    lowest = min((_paper_end(net, s), net, s) for net in NETWORKS for s in SETS)
    return make_claim(
        "every network is very confident: most predictions in the two end bins", OBSERVATIONS,
        "the share of predictions in [0, 0.05) and [0.95, 1], for the teacher and the three students on train, "
        f"valid and test (12 parts): at least {100 * CONFIDENT:.0f} %",
        f"lowest {100 * lowest[0]:.1f} % ({lowest[1]}, {lowest[2]})", parts, labels, "above",
        f"{100 * CONFIDENT:.0f} %", text=lambda c: c.text(unit=" %", signed=False))


def teacher_most_claim(seeds):
    parts, labels = [], []
    for split in SETS:
        for net in ("classic", "hard", "soft"):
            c = scalar_comparison(seeds, lambda s, f, run=NETWORKS[net], split=split:
                                  _end_of("teacher", split)(s, f) - _end_of(run, split)(s, f))
            parts.append(None if c is None else Part(c, "above", 0.0))
            labels.append(f"teacher − {net} on {split}")
    gaps = [_paper_end("teacher", s) - _paper_end(n, s) for s in SETS for n in ("classic", "hard", "soft")]
    return make_claim(
        "the teacher is the most confident network", OBSERVATIONS,
        "end-bin share, teacher minus each student, on train, valid and test (9 parts)",
        f"teacher above by {100 * min(gaps):.1f} to {100 * max(gaps):.1f} points", parts, labels, "above", "0")


def hard_least_on_train_claim(seeds):
    parts = []
    for net in ("classic", "soft"):
        c = scalar_comparison(seeds, lambda s, f, run=NETWORKS[net]:
                              _end_of(run, "train")(s, f) - _end_of(layout.student_run("hard"), "train")(s, f))
        parts.append(None if c is None else Part(c, "above", 0.0))
    return make_claim(
        "on train, the hard student is the least confident student", OBSERVATIONS,
        "end-bin share on train, classic minus hard and soft minus hard (2 parts)",
        f"hard {100 * _paper_end('hard', 'train'):.1f} %, classic {100 * _paper_end('classic', 'train'):.1f} %, "
        f"soft {100 * _paper_end('soft', 'train'):.1f} %", parts, ["classic − hard", "soft − hard"], "above", "0")


def _error_gap(seed_dir, _):
    found = predictions(os.path.join(seed_dir, "teacher"))
    if found is None:
        return None
    p, y = found
    wrong = ~metrics.correct(p, y)
    dog = np.ravel(y) > 0.5
    return float(np.mean(wrong[dog]) - np.mean(wrong[~dog]))


def teacher_errs_on_dogs_claim(seeds):
    values = per_seed(seeds, _error_gap)
    if not values:
        return None
    return make_claim(
        "the teacher errs more on dogs than on cats", TEACHER_ERRS,
        "the teacher's test error rate on dog images (label 1) minus its error rate on cat images (label 0)",
        "read from the histograms (not tabulated)", [Part(compare_scalars(values), "above", 0.0)],
        ["dogs − cats"], "above", "0")


def soft_inherits_claim(seeds):
    c = scalar_comparison(seeds, lambda _, f: inner_upper(histogram(layout.student_run("soft"), "test")(f))
                          - inner_lower(histogram(layout.student_run("soft"), "test")(f)))
    if c is None:
        return None
    h = np.asarray(paper.HISTOGRAMS["test"]["soft"])
    return make_claim(
        "the soft student's uncertain predictions lie mostly on [0.5, 1]", TEACHER_ERRS,
        "the soft student's test share in the inner bins on [0.5, 0.95) minus that on [0.05, 0.5)",
        f"{100 * inner_upper(h):.2f} vs {100 * inner_lower(h):.2f} %", [Part(c, "above", 0.0)],
        ["upper − lower inner share"], "above", "0", text=lambda c: c.text(unit=" pts"))


def inner_bins_fill_claim(seeds):
    parts = []
    for k in range(1, GENERATIONS + 1):
        c = scalar_comparison(seeds, lambda _, f, k=k: (1 - end_mass(histogram(chain_run("soft", k), "test")(f)))
                              - (1 - end_mass(histogram(chain_run("soft", k - 1), "test")(f))))
        parts.append(None if c is None else Part(c, "above", 0.0))
    return make_claim(
        "with each soft generation more test predictions fall into the inner bins", FIGURE_9,
        "the soft chain's test share in the 18 inner bins, its rise at each step k − 1 → k for k = 1-6 (6 parts)",
        "shown as a figure, not tabulated", parts, [f"step {k - 1} → {k}" for k in range(1, GENERATIONS + 1)],
        "above", "0", text=lambda c: c.text(unit=" pts"))


def inner_bins_upper_claim(seeds):
    def rise(which):
        return lambda _, f: (which(histogram(chain_run("soft", GENERATIONS), "test")(f))
                             - which(histogram(chain_run("soft", 0), "test")(f)))
    c = scalar_comparison(seeds, lambda s, f: rise(inner_upper)(s, f) - rise(inner_lower)(s, f))
    if c is None:
        return None
    return make_claim(
        "the soft chain's new inner predictions lie mostly on [0.5, 1]", FIGURE_9,
        "from the soft student to generation 6, the rise of the test share in the inner bins on [0.5, 0.95) "
        "minus the rise on [0.05, 0.5)", "shown as a figure, not tabulated", [Part(c, "above", 0.0)],
        ["upper rise − lower rise"], "above", "0", text=lambda c: c.text(unit=" pts"))


def histogram_claims(seeds):
    """Section 4.2 and figure 9: :class:`Claim` rows from ``{seed_dir: {run: metrics}}``."""
    rows = [confident_claim(seeds), teacher_most_claim(seeds), hard_least_on_train_claim(seeds),
            teacher_errs_on_dogs_claim(seeds), soft_inherits_claim(seeds), inner_bins_fill_claim(seeds),
            inner_bins_upper_claim(seeds)]
    return [row for row in rows if row is not None]
