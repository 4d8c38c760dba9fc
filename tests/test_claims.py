"""The claims' statistics and verdicts, on constructed runs where each verdict is known."""

import json
import math
import os

import numpy as np
import pytest

from kd_keras import claims, statistics
from kd_keras.statistics import FAILS, HOLDS, UNSURE

N = 400  # test images per seed
T2 = 4.303  # Student's t, 97.5 %, 2 degrees of freedom (tables)


def _correct(accuracy, seed):
    """A right/wrong vector of N images with exactly ``accuracy`` right, in a seeded order."""
    right = np.zeros(N, bool)
    right[: int(round(accuracy * N))] = True
    return np.random.default_rng(seed).permutation(right)


def _write_run(run_dir, correct=None, metrics=None, files=None):
    os.makedirs(run_dir, exist_ok=True)
    if correct is not None:
        y = np.tile([1.0, 0.0], N // 2)
        p = np.where(correct, y, 1 - y) * 0.8 + 0.1
        np.savez(os.path.join(run_dir, "predictions.npz"), test=p.astype("float32"), label_test=y.astype("float32"))
        with open(os.path.join(run_dir, "split.json"), "w") as f:
            json.dump({"splits": {"test": files}}, f)


def _seeds(tmp_path, accuracies, metrics=None):
    """``{seed_dir: {run: metrics}}`` with test predictions of ``{run: [accuracy per seed]}``.

    Each seed draws its own test files (as the cpu replay does).
    """
    seeds = {}
    n_seeds = len(next(iter(accuracies.values())))
    for s in range(n_seeds):
        seed_dir = str(tmp_path / f"seed{s}")
        for i, (run, accs) in enumerate(accuracies.items()):
            _write_run(os.path.join(seed_dir, run), _correct(accs[s], 100 * s + i), files=[f"s{s}_{k}" for k in range(N)])
        seeds[seed_dir] = {run: (metrics or {}).get(run, [{}] * n_seeds)[s] for run in accuracies}
    return seeds


def _verdict(rows, start):
    found = [row for row in rows if row[0].startswith(start)]
    assert len(found) == 1, [row[0] for row in rows]
    return found[0][4]


# --- statistics: independent references ------------------------------------------------------------


def test_t_interval_over_seeds_matches_the_textbook_formula():
    d = [0.02, 0.05, 0.01]
    c = statistics.compare_scalars(d)
    m = sum(d) / 3
    sd = math.sqrt(sum((x - m) ** 2 for x in d) / 2)
    assert c.mean == pytest.approx(m)
    assert (c.low, c.high) == pytest.approx((m - T2 * sd / math.sqrt(3), m + T2 * sd / math.sqrt(3)))
    assert statistics.compare_scalars([0.3]).low is None  # one seed: no interval


def test_t_quantiles_put_97_5_percent_below_them():
    # Independent reference: Student's t density integrated numerically (Simpson) from 0 to the quantile.
    for dof in (1, 2, 3, 5, 9, 30):
        q = statistics.t975(dof)
        x = np.linspace(0.0, q, 20001)
        density = math.gamma((dof + 1) / 2) / (math.sqrt(dof * math.pi) * math.gamma(dof / 2)) * (
            1 + x**2 / dof) ** (-(dof + 1) / 2)
        h = x[1] - x[0]
        area = h / 3 * (density[0] + density[-1] + 4 * density[1:-1:2].sum() + 2 * density[2:-1:2].sum())
        assert 0.5 + area == pytest.approx(0.975, abs=2e-4), dof


def test_shared_images_add_the_image_variance_once():
    a = [_correct(0.9, 1), _correct(0.9, 2), _correct(0.9, 3)]
    b = [_correct(0.85, 4), _correct(0.86, 5), _correct(0.84, 6)]
    own = statistics.compare_correct(a, b, shared_images=False)
    shared = statistics.compare_correct(a, b, shared_images=True)
    per_seed = [x.mean() - y.mean() for x, y in zip(a, b)]
    by_image = np.mean([x.astype(float) - y.astype(float) for x, y in zip(a, b)], axis=0)
    half = T2 * math.sqrt(np.var(per_seed, ddof=1) / 3 + np.var(by_image, ddof=1) / N)
    assert own.per_seed == pytest.approx(per_seed) and shared.mean == pytest.approx(np.mean(per_seed))
    assert (shared.low, shared.high) == pytest.approx((np.mean(per_seed) - half, np.mean(per_seed) + half))
    assert shared.high - shared.low > own.high - own.low
    # McNemar once per seed, never on the three seeds pooled.
    assert len(shared.mcnemar) == 3


@pytest.mark.parametrize("low, high, threshold, verdict", [
    (0.01, 0.05, 0.0, HOLDS), (-0.05, -0.01, 0.0, FAILS), (-0.01, 0.05, 0.0, UNSURE),
    (-0.02, 0.01, -0.03, HOLDS), (-0.08, -0.04, -0.03, FAILS), (-0.05, 0.0, -0.03, UNSURE)])
def test_ordering_verdict(low, high, threshold, verdict):
    c = statistics.Comparison([0, 0], (low + high) / 2, low, high)
    assert statistics.ordering_verdict(c, threshold) == verdict


@pytest.mark.parametrize("low, high, verdict", [
    (-0.002, 0.002, HOLDS), (0.004, 0.01, FAILS), (-0.01, -0.0031, FAILS), (-0.001, 0.005, UNSURE)])
def test_within_verdict(low, high, verdict):
    assert statistics.within_verdict(statistics.Comparison([0, 0], 0, low, high), 0.003) == verdict


# --- Paper B: each claim in each verdict ---------------------------------------------------------


@pytest.mark.parametrize("soft, verdict", [
    ([0.85, 0.86, 0.84], HOLDS),  # 5-6 points above the classic in every seed
    ([0.75, 0.74, 0.76], FAILS),
    ([0.85, 0.76, 0.81], UNSURE)])  # above, below, about equal
def test_student_ordering_verdicts(tmp_path, soft, verdict):
    seeds = _seeds(tmp_path, {"student-soft": soft, "student-classic": [0.80, 0.80, 0.80],
                              "student-hard": [0.70, 0.71, 0.69]})
    rows = claims.distillation_claims(seeds)
    assert _verdict(rows, "the soft student is at least as accurate") == verdict
    assert _verdict(rows, "the classic student is more accurate than the hard") == HOLDS


def test_one_seed_gives_no_verdict(tmp_path):
    seeds = _seeds(tmp_path, {"student-soft": [0.95], "student-classic": [0.70], "student-hard": [0.6]})
    rows = claims.distillation_claims(seeds)
    assert _verdict(rows, "the soft student is at least as accurate") == UNSURE
    assert "one seed" in [r for r in rows if r[0].startswith("the soft student")][0][2]


def _chain_accuracies(student, last, kind="hard"):
    runs = {claims.chain_run(kind, k): [student[s] + (last[s] - student[s]) * k / 6 for s in range(3)]
            for k in range(7)}
    return runs


@pytest.mark.parametrize("last, verdict", [
    ([0.89, 0.885, 0.895], HOLDS),  # loses 1 point
    ([0.80, 0.81, 0.79], FAILS),  # loses 10
    ([0.86, 0.88, 0.90], UNSURE)])  # loses 4, 2, 0: the interval spans -3
def test_chain_loses_less_than_three_points(tmp_path, last, verdict):
    seeds = _seeds(tmp_path, _chain_accuracies([0.90, 0.90, 0.90], last))
    assert _verdict(claims.distillation_claims(seeds), "six generations of the hard chain") == verdict


@pytest.mark.parametrize("gap, verdict", [
    ([0.04, 0.05, 0.06], HOLDS), ([-0.04, -0.05, -0.06], FAILS), ([0.05, -0.03, 0.01], UNSURE)])
def test_soft_chain_above_hard_at_every_generation(tmp_path, gap, verdict):
    runs = _chain_accuracies([0.80] * 3, [0.78] * 3, "hard")
    runs.update({claims.chain_run("soft", k): [runs[claims.chain_run("hard", k)][s] + gap[s] for s in range(3)]
                 for k in range(7)})
    assert _verdict(claims.distillation_claims(_seeds(tmp_path, runs)), "the soft chain's test accuracy") == verdict


def _best(classic, hard, epochs=10):
    return {"student-classic": [{"best": {"best_epoch": e, "epochs": epochs}} for e in classic],
            "student-hard": [{"best": {"best_epoch": e, "epochs": epochs}} for e in hard]}


@pytest.mark.parametrize("classic, hard, verdict", [
    ([8, 9, 8], [4, 5, 4], HOLDS),
    ([4, 5, 4], [8, 9, 8], FAILS),
    ([6, 6, 7], [9, 5, 9], UNSURE),  # the published cpu replay's epochs
    # A best epoch at the last one is a lower bound. The hard student peaking at its last epoch
    # is the clearest failure (it would peak later still), and a classic peaking at its last
    # epoch only makes the hard one look faster than it is.
    ([5, 6, 5], [9, 10, 9], FAILS),
    ([9, 10, 9], [5, 6, 5], HOLDS),
])
def test_converges_faster_verdicts(tmp_path, classic, hard, verdict):
    accuracies = {"student-classic": [0.8] * 3, "student-hard": [0.8] * 3}
    seeds = _seeds(tmp_path, accuracies, _best(classic, hard))
    assert _verdict(claims.distillation_claims(seeds), "the hard student reaches") == verdict


def _uncertainty_metrics(values):
    """``{run: [metrics per seed]}`` from ``{run: [uncertainty per seed]}``, the same on every set."""
    return {run: [{"eval": {s: {"uncertainty": u} for s in claims.SETS}} for u in per_seed]
            for run, per_seed in values.items()}


@pytest.mark.parametrize("moves, verdict", [
    ([0.0005, -0.0005, 0.0], HOLDS),
    ([0.010, 0.012, 0.011], FAILS),
    ([0.004, -0.003, 0.001], UNSURE)])
def test_hard_chain_stays_within_0_003(tmp_path, moves, verdict):
    values = {claims.chain_run("hard", k): [0.05 + moves[s] * k / 6 for s in range(3)] for k in range(7)}
    seeds = _seeds(tmp_path, {run: [0.8] * 3 for run in values}, _uncertainty_metrics(values))
    assert _verdict(claims.distillation_claims(seeds), "the hard chain's uncertainty") == verdict


@pytest.mark.parametrize("step, verdict", [
    ([0.010, 0.012, 0.011], HOLDS), ([-0.010, -0.012, -0.011], FAILS), ([0.01, -0.01, 0.002], UNSURE)])
def test_soft_chain_uncertainty_grows(tmp_path, step, verdict):
    soft = {claims.chain_run("soft", k): [0.05 + step[s] * k for s in range(3)] for k in range(7)}
    hard = {claims.chain_run("hard", k): [0.05] * 3 for k in range(7)}
    values = {**soft, **hard}
    seeds = _seeds(tmp_path, {run: [0.8] * 3 for run in values}, _uncertainty_metrics(values))
    rows = claims.distillation_claims(seeds)
    assert _verdict(rows, "the soft chain's test uncertainty grows") == verdict
    assert _verdict(rows, "from generation 2 on, the soft chain is more uncertain") == verdict


# --- Paper A -----------------------------------------------------------------------------------------


def _loss_runs(tmp_path, accuracies, shared=True):
    """``{loss: {seed: run_dir}}`` with valid predictions; all seeds score the same images when shared."""
    by_loss = {}
    labels = np.arange(N) % 4
    for loss, per_seed in accuracies.items():
        for s, acc in enumerate(per_seed):
            run_dir = tmp_path / loss / f"seed{s}"
            os.makedirs(run_dir)
            right = _correct(acc, 7 * s + len(loss))
            np.savez(run_dir / "predictions.npz", label=labels, predicted=np.where(right, labels, (labels + 1) % 4))
            files = [f"img{k}" for k in range(N)] if shared else [f"s{s}_{k}" for k in range(N)]
            (run_dir / "split.json").write_text(json.dumps({"splits": {"valid": files}}))
            by_loss.setdefault(loss, {})[f"seed{s}"] = str(run_dir)
    return by_loss


@pytest.mark.parametrize("softmax, verdict", [
    ([0.95, 0.96, 0.95], HOLDS), ([0.80, 0.81, 0.79], FAILS), ([0.90, 0.87, 0.88], UNSURE)])
def test_best_loss_verdicts(tmp_path, softmax, verdict):
    datasets = {"fruits": _loss_runs(tmp_path, {"softmax": softmax, "cosine": [0.88] * 3, "am-softmax": [0.87] * 3})}
    thesis = {"softmax": {"fruits": 0.92}, "cosine": {"fruits": 0.88}, "am-softmax": {"fruits": 0.90}}
    (row,) = claims.loss_claims(datasets, thesis)
    assert row[0] == "fruits: softmax is the best loss (Table 4)" and row[4] == verdict


def test_loss_comparison_counts_shared_images_once(tmp_path):
    by_loss = _loss_runs(tmp_path, {"a": [0.9, 0.9, 0.9], "b": [0.88, 0.88, 0.88]})
    c = claims.loss_difference(by_loss["a"], by_loss["b"])
    assert c.n == 3 and c.low is not None
    assert claims.shared_images(list(by_loss["a"].values()), "valid")
    # With identical per-seed differences the seeds' spread is zero: all the width is the images'.
    assert c.high - c.low > 0.01
