import math
import os

import numpy as np
import pytest

from kd_keras import claims


def _run(root, name, p, y):
    os.makedirs(root / name, exist_ok=True)
    np.savez(root / name / "predictions.npz", test=np.asarray(p, "float32"), label_test=np.asarray(y, "float32"))


def test_paired_difference_counts_discordant_pairs_over_seeds(tmp_path):
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 1, 0])
    a = np.array([.9, .9, .9, .9, .1, .1, .1, .1, .9, .9])  # 9 right
    b = np.array([.9, .1, .1, .9, .1, .1, .9, .1, .1, .1])  # 6 right
    seeds = {}
    for seed in ("seed0", "seed1"):
        _run(tmp_path / seed, "A", a, y)
        _run(tmp_path / seed, "B", b, y)
        seeds[str(tmp_path / seed)] = {}
    diff, (low, high), p = claims.paired_difference(seeds, "A", "B")
    assert diff == pytest.approx(0.3)
    # Independent reference: the paired indicator d_i = right_A - right_B, its mean and standard error.
    d = np.tile(((a > .5) == (y > .5)).astype(float) - ((b > .5) == (y > .5)).astype(float), 2)
    se = np.sqrt(np.mean(d**2) - np.mean(d) ** 2) / np.sqrt(len(d))
    assert (low, high) == pytest.approx((d.mean() - 1.96 * se, d.mean() + 1.96 * se))
    only_a, only_b = int(np.sum(d == 1)), int(np.sum(d == -1))
    n = only_a + only_b
    tail = sum(math.comb(n, k) for k in range(min(only_a, only_b) + 1)) / 2**n
    assert p == pytest.approx(min(1.0, 2 * tail))


def test_slope_interval_over_seeds_and_from_residuals():
    rising = [[0.0, 1.0, 2.1, 2.9, 4.0, 5.2, 6.0], [0.1, 1.1, 1.9, 3.1, 4.0, 4.8, 6.1]]
    slope, (low, high) = claims.slope_interval(rising)
    per_seed = [np.polyfit(np.arange(7), s, 1)[0] for s in rising]
    assert slope == pytest.approx(np.mean(per_seed))
    half = 12.706 * np.std(per_seed, ddof=1) / np.sqrt(2)
    assert (low, high) == pytest.approx((slope - half, slope + half))
    one, (low1, high1) = claims.slope_interval([rising[0]])
    assert low1 < one < high1 and low1 > 0


def test_verdicts_follow_the_intervals(tmp_path):
    y = np.tile([1, 0], 200)
    good = np.where(y == 1, 0.9, 0.1)
    worse = good.copy()
    worse[:60] = 1 - worse[:60]  # 60 of 400 wrong
    seed_dir = tmp_path / "seed0"
    for name, p in (("student-soft", good), ("student-classic", good), ("student-hard", worse)):
        _run(seed_dir, name, p, y)
    metrics = {name: {"best": {"best_epoch": e, "epochs": 10}} for name, e in
               (("student-classic", 8), ("student-hard", 4), ("student-soft", 9))}
    rows = {row[0]: row[3] for row in claims.distillation_claims({str(seed_dir): metrics})}
    assert rows["test accuracy: soft ≥ classic > hard"] == claims.HOLDS
    assert rows["the hard student converges about twice as fast (epoch of best valid accuracy)"] == claims.HOLDS


def test_flat_means_the_slope_interval_lies_inside_the_margin():
    margin = claims.FLAT_CHANGE / 6
    assert claims.flat_verdict((-margin / 2, margin / 2), 6) == claims.HOLDS
    assert claims.flat_verdict((-0.0158, -0.0078), 6) == claims.FAILS  # a clear fall is not flat
    assert claims.flat_verdict((2 * margin, 3 * margin), 6) == claims.FAILS
    assert claims.flat_verdict((-margin / 2, 2 * margin), 6) == claims.UNSURE  # too wide to tell
