"""The intervals and verdicts of kd_keras.statistics against independent references and simulations."""

import math

import numpy as np
import pytest

from kd_keras.report import statistics
from kd_keras.report.statistics import FAILS, HOLDS, UNSURE, Comparison, Part

pytestmark = pytest.mark.tensorflow  # NumPy only: the JAX suite would repeat it unchanged (setup.cfg's markers)


def _t_density_area(dof, upper):
    """P(0 < T < upper) by Simpson's rule on Student's t density: a reference independent of the module."""
    x = np.linspace(0.0, upper, 20001)
    density = math.exp(math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2)) / math.sqrt(dof * math.pi) * (
        1 + x**2 / dof) ** (-(dof + 1) / 2)
    h = x[1] - x[0]
    return h / 3 * (density[0] + density[-1] + 4 * density[1:-1:2].sum() + 2 * density[2:-1:2].sum())


@pytest.mark.parametrize("dof", [1, 2, 2.7, 3, 5, 9.4, 30, 226])
def test_t_quantile_puts_97_5_percent_below_it(dof):
    assert 0.5 + _t_density_area(dof, statistics.t975(dof)) == pytest.approx(0.975, abs=1e-5)


def test_t_quantiles_match_the_printed_tables():
    printed = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 10: 2.228, 30: 2.042}  # two-sided 95 %
    for dof, value in printed.items():
        assert statistics.t975(dof) == pytest.approx(value, abs=1e-3)
    assert statistics.t_cdf(0.0, 4) == pytest.approx(0.5)


def test_t_interval_over_seeds_matches_the_textbook_formula():
    d = [0.02, 0.05, 0.01]
    c = statistics.compare_scalars(d)
    m = sum(d) / 3
    sd = math.sqrt(sum((x - m) ** 2 for x in d) / 2)
    assert c.mean == pytest.approx(m) and c.dof == 2
    assert (c.low, c.high) == pytest.approx((m - 4.303 * sd / math.sqrt(3), m + 4.303 * sd / math.sqrt(3)), abs=1e-5)
    assert statistics.compare_scalars([0.3]).low is None  # one seed: no interval


def test_two_way_variance_counts_each_component_once():
    rng = np.random.default_rng(3)
    d = rng.normal(size=(4, 25)) + rng.normal(size=(4, 1)) + rng.normal(size=(1, 25))
    s, n = d.shape
    grand = d.sum() / (s * n)
    rows = [sum(d[i]) / n for i in range(s)]
    cols = [sum(d[:, j]) / s for j in range(n)]
    ss_seed = n * sum((r - grand) ** 2 for r in rows)
    ss_image = s * sum((c - grand) ** 2 for c in cols)
    ss_all = sum((d[i, j] - grand) ** 2 for i in range(s) for j in range(n))
    ms = [ss_seed / (s - 1), ss_image / (n - 1), (ss_all - ss_seed - ss_image) / ((s - 1) * (n - 1))]
    variance, dof = statistics.two_way_variance(d)
    assert variance == pytest.approx((ms[0] + ms[1] - ms[2]) / (s * n))
    satterthwaite = (ms[0] + ms[1] - ms[2]) ** 2 / (
        ms[0] ** 2 / (s - 1) + ms[1] ** 2 / (n - 1) + ms[2] ** 2 / ((s - 1) * (n - 1)))
    assert dof == pytest.approx(max(s - 1, satterthwaite))


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _simulate(rng, seeds, images, shared, reps):
    """A logistic seeds × images model with known truth: two classifiers A and B on the same images.

    Each image has a difficulty shared by A and B and a small model-specific part; each seed
    shifts each classifier. The truth is the difference of accuracies over the population of
    images and seeds. Returns the share of reps whose 95 % interval covers it, and the mean width.
    """
    def draw(shape_seed, shape_image):
        b = rng.normal(0, 1.5, shape_image)
        return (rng.normal(0, 0.5, shape_seed) + b + rng.normal(0, 0.5, shape_image),
                rng.normal(0, 0.5, shape_seed) + b + rng.normal(0, 0.5, shape_image))
    a_logit, b_logit = draw(200_000, 200_000)
    truth = np.mean(_sigmoid(2.0 + a_logit) - _sigmoid(1.8 + b_logit))
    covered, widths = 0, []
    for _ in range(reps):
        if shared:
            a_logit, b_logit = draw((seeds, 1), (1, images))
        else:  # every seed draws its own images
            a_logit, b_logit = draw((seeds, 1), (seeds, images))
        a = rng.random((seeds, images)) < _sigmoid(2.0 + a_logit)
        b = rng.random((seeds, images)) < _sigmoid(1.8 + b_logit)
        c = statistics.compare_correct(list(a), list(b), shared_images=shared)
        covered += c.low <= truth <= c.high
        widths.append(c.high - c.low)
    return covered / reps, float(np.mean(widths))


@pytest.mark.parametrize("seeds, images, shared", [(3, 60, True), (3, 226, True), (10, 60, True),
                                                   (10, 226, True), (3, 226, False)])
def test_95_percent_intervals_cover_the_truth_93_to_97_percent_of_the_time(seeds, images, shared, monkeypatch):
    monkeypatch.setattr(statistics.metrics, "mcnemar_exact", lambda a, b: 1.0)  # not what is tested; slow
    coverage, _ = _simulate(np.random.default_rng(seeds * 1000 + images), seeds, images, shared, reps=2000)
    assert 0.93 <= coverage <= 0.97, coverage


def test_holm_step_down_against_its_definition():
    # Sorted: 0.005 <= 0.05/4, 0.01 <= 0.05/3, 0.03 > 0.05/2: stop; 0.04 is not rejected either.
    assert statistics.holm([0.01, 0.04, 0.03, 0.005], alpha=0.05) == [True, False, False, True]
    assert statistics.holm([0.001, 0.002], alpha=0.05) == [True, True]
    assert statistics.holm([0.2, 0.001], alpha=0.05) == [False, True]


def _comparison(low, high, dof=2):
    half = (high - low) / 2
    return Comparison([0.0] * (dof + 1), (low + high) / 2, half / statistics.t975(dof), dof)


@pytest.mark.parametrize("low, high, threshold, verdict", [
    (0.01, 0.05, 0.0, HOLDS), (-0.05, -0.01, 0.0, FAILS), (-0.01, 0.05, 0.0, UNSURE),
    (-0.02, 0.01, -0.03, HOLDS), (-0.08, -0.04, -0.03, FAILS), (-0.05, 0.0, -0.03, UNSURE)])
def test_one_part_verdict_reads_the_interval(low, high, threshold, verdict):
    c = _comparison(low, high)
    assert (c.low, c.high) == pytest.approx((low, high))
    assert statistics.ordering_verdict(c, threshold) == verdict


@pytest.mark.parametrize("low, high, verdict", [
    (-0.002, 0.002, HOLDS), (0.004, 0.01, FAILS), (-0.01, -0.0031, FAILS), (-0.001, 0.005, UNSURE)])
def test_within_verdict(low, high, verdict):
    assert statistics.within_verdict(_comparison(low, high), 0.003) == verdict


def test_many_parts_at_the_margin_rarely_give_a_false_does_not_hold():
    # 18 parts whose truth sits exactly on the threshold: without a correction, "any part below"
    # would say "does not hold" far more often than 2.5 %; Holm keeps it at most that.
    rng = np.random.default_rng(0)
    false_fails, uncorrected = 0, 0
    for _ in range(2000):
        parts = [Part(statistics.compare_scalars(rng.normal(0.0, 1.0, 3)), "above", 0.0) for _ in range(18)]
        false_fails += statistics.verdict(parts) == FAILS
        uncorrected += any(p.comparison.high < 0 for p in parts)
    assert false_fails / 2000 <= 0.025
    assert uncorrected / 2000 > 0.2  # what Holm corrects


def test_all_parts_must_support_for_holds():
    good, unsure = _comparison(0.01, 0.05), _comparison(-0.01, 0.05)
    assert statistics.verdict([Part(good, "above")] * 3) == HOLDS
    assert statistics.verdict([Part(good, "above")] * 3 + [Part(unsure, "above")]) == UNSURE
    assert statistics.verdict([Part(statistics.compare_scalars([0.1]), "above")]) == UNSURE  # one seed


def test_ratio_of_means_covers_a_known_ratio():
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(1000):
        student = rng.lognormal(np.log(20), 0.2, 100)
        teacher = 5.0 * student * rng.lognormal(0, 0.1, 100) / np.exp(0.1**2 / 2)  # mean ratio exactly 5
        c = statistics.ratio_of_means(teacher, student)
        covered += c.low <= 5.0 <= c.high
        assert c.unit == "image" and c.n == 100
    assert 0.93 <= covered / 1000 <= 0.97
