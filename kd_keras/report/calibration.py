"""Calibration across the generations of both chains, with intervals over seeds (beyond the papers).

Paper B's "uncertainty degree" measures how far a network's predictions sit from its own answers;
it says nothing about whether those answers' confidence is earned. Here every network of a group,
and every generation of both chains, is scored on its seed's test images by three measures
(:mod:`kd_keras.metrics`): the expected calibration error (top-label, 15 equal-width bins; a
sigmoid's confidence is ``max(p, 1 − p)``), the negative log-likelihood and the Brier score. Each
is computed once per seed, from the run's ``predictions.npz`` (so archived runs are scored too), and
reported as the mean with its 95 % t interval over the seeds (:func:`kd_keras.report.statistics.compare_scalars`:
the seed is the unit of replication).

Examples:
    >>> from kd_keras import report
    >>> from kd_keras.report import calibration
    >>> seeds = report.kd_groups("results/runs")["cats_vs_dogs-cpu"]
    >>> measures = calibration.by_generation(seeds)
    >>> sorted(measures["soft"][6])
    ['brier', 'ece', 'nll']
"""

import os

from kd_keras import metrics
from kd_keras.replay import layout
from kd_keras.report import statistics as st
from kd_keras.report.claims.evidence import predictions
from kd_keras.report.tables import NOT_RUN, Table

MEASURES = {"ece": metrics.expected_calibration_error, "nll": metrics.crossentropy, "brier": metrics.brier_score}
LABELS = {"ece": "ECE (15 bins)", "nll": "NLL", "brier": "Brier"}


def _per_seed(seeds, run):
    """``{measure: [value per seed]}`` of ``run`` on each seed's test images (seeds without it left out)."""
    values = {name: [] for name in MEASURES}
    for seed_dir in seeds:
        found = predictions(os.path.join(seed_dir, run), "test")
        if found is None:
            continue
        p, y = found
        for name, measure in MEASURES.items():
            values[name].append(measure(p, y))
    return values


def _comparisons(seeds, run):
    return {name: st.compare_scalars(values) for name, values in _per_seed(seeds, run).items() if values}


def by_generation(seeds):
    """``{chain: {generation: {measure: Comparison}}}`` for both chains, generation 0 being the student."""
    found = {}
    for kind in layout.CHAINS:
        generations = sorted({0, *(k for runs in seeds.values() for k in layout.chain_generations(runs, kind))})
        found[kind] = {k: c for k in generations if (c := _comparisons(seeds, layout.chain_run(kind, k)))}
    return found


def _cell(comparison):
    if comparison is None:
        return NOT_RUN
    return comparison.text(scale=1.0, unit="", digits=4, mcnemar=False, signed=False)


def calibration_table(seeds, caption, measures):
    """The teacher, the classic student and both chains, generation by generation: ECE, NLL and Brier on test.

    Args:
        measures: :func:`by_generation` of ``seeds`` (computed once for this table and the figure).
    """
    table = Table("calibration", "Calibration on test across the generations (mean, 95 % interval over seeds)",
                  ["network", "generation", *LABELS.values()],
                  caption + " Not in the paper: expected calibration error (top-label: the share of right answers "
                  "against the mean confidence in 15 equal-width bins of the confidence, a sigmoid's being "
                  "max(p, 1 − p)), negative log-likelihood and Brier score, each once per seed on its test "
                  "images; Student's t interval over the seeds.")
    for network in (layout.TEACHER, layout.student_run("classic")):
        compared = _comparisons(seeds, network)
        if compared:
            table.add(network, "", *(_cell(compared.get(name)) for name in MEASURES))
    for kind, generations in measures.items():
        for k, compared in generations.items():
            table.add(f"{kind} chain", k, *(_cell(compared.get(name)) for name in MEASURES))
    return table
