import itertools
import math

import numpy as np
import pytest

from kd_keras import metrics

RNG = np.random.default_rng(1)


def test_accuracy_threshold_rule_of_formulas_11_12():
    p = np.array([0.5, 0.51, 0.2, 0.9])
    y = np.array([0.0, 1.0, 0.4, 0.3])  # soft labels count by the same threshold
    assert metrics.accuracy(p, y) == 0.75


def test_uncertainty_is_mean_squared_distance_to_own_answer():
    p = RNG.uniform(size=200)
    own = np.where(p > 0.5, 1.0, 0.0)
    expected = sum((pi - yi) ** 2 for pi, yi in zip(p, own)) / len(p)
    assert math.isclose(metrics.uncertainty(p), expected, rel_tol=1e-12)
    assert metrics.uncertainty(np.array([0.0, 1.0, 1.0])) == 0.0


def test_histogram_has_20_bins_with_one_closed_at_the_top():
    p = np.array([0.0, 0.049, 0.05, 0.5, 0.97, 1.0])
    h = metrics.histogram(p)
    assert len(h) == 20 and math.isclose(sum(h), 1.0)
    assert h[0] == 2 / 6 and h[1] == 1 / 6 and h[10] == 1 / 6 and h[19] == 2 / 6


def test_binary_crossentropy_matches_reference():
    p, y = RNG.uniform(0.01, 0.99, 50), RNG.uniform(size=50)
    expected = np.mean([-(b * math.log(a) + (1 - b) * math.log(1 - a)) for a, b in zip(p, y)])
    assert math.isclose(metrics.binary_crossentropy(p, y), expected, rel_tol=1e-12)


def _mcnemar_by_enumeration(b, c):
    """Two-sided exact p: total probability of discordant splits no likelier than the observed one."""
    n = b + c
    if n == 0:
        return 1.0
    probs = [math.comb(n, k) / 2**n for k in range(n + 1)]
    observed = probs[b]
    return min(1.0, sum(q for q in probs if q <= observed + 1e-15))


def test_mcnemar_matches_enumerated_binomial_reference():
    for b, c in itertools.product(range(0, 12, 3), range(0, 12, 2)):
        a = np.array([True] * b + [False] * c + [True] * 5)
        bb = np.array([False] * b + [True] * c + [True] * 5)
        assert math.isclose(metrics.mcnemar_exact(a, bb), _mcnemar_by_enumeration(b, c), rel_tol=1e-9), (b, c)


def test_mcnemar_works_past_a_thousand_discordant_pairs():
    # Three seeds of 1,000 test images pooled gave 1,100+ discordant pairs; 2.0**n overflowed.
    for b, c in ((600, 600), (560, 640), (1000, 1100)):
        a = np.array([True] * b + [False] * c)
        assert math.isclose(metrics.mcnemar_exact(a, ~a), _mcnemar_by_enumeration(b, c), rel_tol=1e-9), (b, c)


def test_mean_std_cells_use_the_sample_standard_deviation():
    import statistics

    from kd_keras.report.tables import NOT_RUN, mean_std

    values = [0.91, 0.95, 0.88]
    assert mean_std(values, 3) == f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f} (n=3)"
    assert mean_std([0.5, None]) == "0.5000" and mean_std([None]) == NOT_RUN


def _ece_by_hand(conf, right, bins=15):
    """The top-label ECE written out: sort the images into bins (lo, hi] of the confidence and sum the gaps."""
    total, n = 0.0, len(conf)
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [i for i in range(n) if (lo < conf[i] <= hi) or (b == 0 and conf[i] == 0)]
        if members:
            acc = sum(right[i] for i in members) / len(members)
            mean_conf = sum(conf[i] for i in members) / len(members)
            total += len(members) / n * abs(acc - mean_conf)
    return total


def test_expected_calibration_error_against_a_loop_over_bins():
    p = RNG.uniform(size=500)
    y = (RNG.uniform(size=500) < p ** 1.5).astype(float)  # an overconfident model
    conf = [max(v, 1 - v) for v in p]
    right = [(v > 0.5) == (t > 0.5) for v, t in zip(p, y)]
    assert metrics.expected_calibration_error(p, y) == pytest.approx(_ece_by_hand(conf, right), abs=1e-12)
    rows = RNG.dirichlet(np.ones(4), size=300)
    labels = RNG.integers(0, 4, 300)
    conf = rows.max(axis=1)
    right = rows.argmax(axis=1) == labels
    assert metrics.expected_calibration_error(rows, labels) == pytest.approx(_ece_by_hand(conf, right), abs=1e-12)
    perfect = np.array([1.0, 0.0, 1.0, 0.0])
    assert metrics.expected_calibration_error(perfect, perfect) == 0.0


def test_nll_and_brier_match_keras():
    import keras

    p = RNG.uniform(0.01, 0.99, size=200).astype("float32")
    y = (RNG.uniform(size=200) < 0.5).astype("float32")
    summary = metrics.summary(p, y)
    keras_nll = float(keras.losses.BinaryCrossentropy()(y[:, None], p[:, None]))
    keras_brier = float(keras.metrics.MeanSquaredError()(y, p))
    assert summary["nll"] == pytest.approx(keras_nll, rel=1e-5) and summary["nll"] == summary["loss"]
    assert summary["brier"] == pytest.approx(keras_brier, rel=1e-5)
    rows = RNG.dirichlet(np.ones(3), size=100).astype("float32")
    labels = RNG.integers(0, 3, 100)
    onehot = np.eye(3, dtype="float32")[labels]
    assert metrics.brier_score(rows, labels) == pytest.approx(float(np.mean(np.sum((rows - onehot) ** 2, axis=1))))
    assert metrics.crossentropy(rows, labels) == pytest.approx(
        float(keras.losses.CategoricalCrossentropy()(onehot, rows)), rel=1e-5)
