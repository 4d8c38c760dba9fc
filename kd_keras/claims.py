"""The papers' qualitative claims, each tested on our runs with an interval and a verdict.

Paper B (distillation) and paper A (Table 4's ranking). A verdict is ``holds``,
``does not hold`` or ``cannot tell at this scale``:

- accuracy comparisons pair the two networks on the same test images (pooled over seeds):
  the difference with a 95 % normal interval and an exact McNemar p-value;
- trends over generations fit a least-squares slope per seed; its 95 % interval comes from
  the spread over seeds (t), or from the fit's residuals when there is one seed.
"""

import math
import os

import numpy as np

from kd_keras import metrics
from kd_keras.tables import Table

HOLDS, FAILS, UNSURE = "holds", "does not hold", "cannot tell at this scale"

# "Stays flat": the uncertainty moves by less than this over the whole chain. The paper's hard
# chain moved by -0.0015 over 6 generations, its soft chain by +0.0187.
FLAT_CHANGE = 0.01


def flat_verdict(slope_ci, generations, change=FLAT_CHANGE):
    """An equivalence test: flat when the slope's interval lies inside ±change/generations.

    ``holds`` when the whole interval is inside the margin, ``does not hold`` when it lies
    wholly outside it on one side (a clear rise or fall), else ``cannot tell``.
    """
    margin = change / generations
    low, high = slope_ci
    if -margin < low and high < margin:
        return HOLDS
    return FAILS if low > margin or high < -margin else UNSURE


# Two-sided 97.5 % quantiles of Student's t for 1..10 degrees of freedom (then the normal's).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228)


def t975(dof):
    return _T975[dof - 1] if 1 <= dof <= len(_T975) else 1.96


def _test_correct(seed_dir, run):
    path = os.path.join(seed_dir, run, "predictions.npz")
    if not os.path.exists(path):
        return None
    blob = np.load(path)
    return (blob["test"] > 0.5) == (blob["label_test"] > 0.5)


def paired_difference(seeds, run_a, run_b):
    """Accuracy of ``run_a`` minus ``run_b`` on the same test images, pooled over seeds.

    Returns:
        ``(difference, (low, high), p)``: the 95 % interval of paired proportions and the exact
        McNemar p-value, or None when either run is missing.
    """
    pairs = [(_test_correct(d, run_a), _test_correct(d, run_b)) for d in seeds]
    pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
    if not pairs:
        return None
    a = np.concatenate([p[0] for p in pairs])
    b = np.concatenate([p[1] for p in pairs])
    n = len(a)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    diff = (only_a - only_b) / n
    se = math.sqrt(max((only_a + only_b) / n**2 - (only_a - only_b) ** 2 / n**3, 0.0))
    return diff, (diff - 1.96 * se, diff + 1.96 * se), metrics.mcnemar_exact(a, b)


def slope_interval(series):
    """Mean least-squares slope of y against generation over seeds, with its 95 % interval."""
    slopes, residual_ci = [], None
    for ys in series:
        x = np.arange(len(ys), dtype="float64")
        slope, intercept = np.polyfit(x, ys, 1)
        slopes.append(slope)
        if len(series) == 1 and len(ys) > 2:
            residuals = np.asarray(ys) - (slope * x + intercept)
            se = math.sqrt(np.sum(residuals**2) / (len(ys) - 2) / np.sum((x - x.mean()) ** 2))
            residual_ci = t975(len(ys) - 2) * se
    mean = float(np.mean(slopes))
    if len(slopes) > 1:
        half = t975(len(slopes) - 1) * float(np.std(slopes, ddof=1)) / math.sqrt(len(slopes))
    else:
        half = residual_ci if residual_ci is not None else float("inf")
    return mean, (mean - half, mean + half)


def _pct(x):
    return f"{100 * x:+.1f}"


def _interval(diff, ci, p=None, scale=100, unit=" pts"):
    text = f"{diff * scale:+.2f}{unit} [{ci[0] * scale:+.2f}, {ci[1] * scale:+.2f}]"
    return text + (f", McNemar p = {p:.3g}" if p is not None else "")


def _chain_series(seed_metrics, kind, field):
    runs = [f"student-{kind}"] + [f"{kind}-chain-{k}" for k in range(1, 7)]
    out = []
    for found in seed_metrics.values():
        if all(r in found for r in runs):
            out.append([found[r]["eval"]["test"][field] for r in runs])
    return out


def distillation_claims(seeds):
    """Rows ``(claim, paper's evidence, ours, verdict)`` for paper B from ``{seed_dir: {run: metrics}}``."""
    rows = []
    soft_classic = paired_difference(seeds, "student-soft", "student-classic")
    classic_hard = paired_difference(seeds, "student-classic", "student-hard")
    if soft_classic and classic_hard:
        d1, ci1, p1 = soft_classic
        d2, ci2, p2 = classic_hard
        if ci1[1] < 0 or ci2[1] < 0:
            verdict = FAILS
        elif d1 >= 0 and ci2[0] > 0:
            verdict = HOLDS
        else:
            verdict = UNSURE
        rows.append(("test accuracy: soft ≥ classic > hard", "96.32 / 96.16 / 95.44 %",
                     f"soft − classic {_interval(d1, ci1, p1)}; classic − hard {_interval(d2, ci2, p2)}", verdict))
    best = {net: [m[f"student-{net}"]["best"].get("best_epoch") for m in seeds.values() if f"student-{net}" in m]
            for net in ("classic", "hard")}
    epochs = [m["student-classic"]["best"].get("epochs") for m in seeds.values() if "student-classic" in m]
    if best["classic"] and best["hard"]:
        faster = [c > h for c, h in zip(best["classic"], best["hard"])]
        ratio = np.mean(best["classic"]) / max(np.mean(best["hard"]), 1e-9)
        # A best epoch at the last epoch means still improving: convergence speed is then unknown.
        unfinished = any(e == epochs[0] for e in best["classic"] + best["hard"])
        verdict = (UNSURE if unfinished else HOLDS if all(faster) and ratio >= 1.5
                   else FAILS if not any(faster) else UNSURE)
        rows.append(("the hard student converges about twice as fast (epoch of best valid accuracy)",
                     "hard 47, classic 86 of 100 (1.8x)",
                     f"hard {best['hard']}, classic {best['classic']} of {epochs[0]} (ratio {ratio:.2f})"
                     + ("; a best epoch is the last one: still improving" if unfinished else ""), verdict))
    for kind, claim, paper_text in (
            ("hard", "the hard chain's test uncertainty stays flat over 6 generations", "0.0071 → 0.0056"),
            ("soft", "the soft chain's test uncertainty grows over 6 generations", "0.0040 → 0.0227")):
        series = _chain_series(seeds, kind, "uncertainty")
        if not series:
            continue
        slope, ci = slope_interval(series)
        generations = len(series[0]) - 1
        verdict = flat_verdict(ci, generations) if kind == "hard" else (
            HOLDS if ci[0] > 0 else FAILS if ci[1] < 0 else UNSURE)
        first, last = np.mean([s[0] for s in series]), np.mean([s[-1] for s in series])
        margin = f"; flat: within ±{FLAT_CHANGE} over {generations} generations" if kind == "hard" else ""
        rows.append((claim, paper_text, f"{first:.4f} → {last:.4f}; slope {slope:+.5f}/generation "
                     f"[{ci[0]:+.5f}, {ci[1]:+.5f}] (n={len(series)}){margin}", verdict))
    for kind, paper_text in (("hard", "95.44 → 93.52 % (−1.92)"), ("soft", "96.32 → 94.59 % (−1.73)")):
        change = paired_difference(seeds, f"{kind}-chain-6", f"student-{kind}")
        if not change:
            continue
        d, ci, p = change
        verdict = HOLDS if ci[0] > -0.03 else FAILS if ci[1] < -0.03 else UNSURE
        rows.append((f"six generations of the {kind} chain lose < 3 points of test accuracy", paper_text,
                     f"generation 6 − student {_interval(d, ci, p)}", verdict))
    return rows


def loss_claims(datasets, thesis):
    """Rows for paper A: per dataset, is the thesis's best loss (Table 4) also ours?

    Args:
        datasets: ``{dataset: {loss: {seed: run_dir}}}`` (see :func:`kd_keras.report.loss_groups`).
        thesis: ``{loss: {dataset key: accuracy}}`` (Table 4).
    """
    from kd_keras.report import _paired_mcnemar
    from kd_keras.runs import read_json

    rows = []
    for name, by_loss in sorted(datasets.items()):
        key = name.lower().replace("-", "").replace("_", "")
        theirs = {loss: thesis[loss][key] for loss in thesis if key in thesis[loss] and loss in by_loss}
        if len(theirs) < 2:
            continue
        ours = {loss: float(np.mean([read_json(os.path.join(d, "metrics.json"))["valid_accuracy"]
                                     for d in by_loss[loss].values()])) for loss in theirs}
        thesis_best = max(theirs, key=theirs.get)
        our_best = max(ours, key=ours.get)
        beaten = [loss for loss in ours if loss != thesis_best and ours[loss] > ours[thesis_best]
                  and _paired_mcnemar(by_loss[loss], by_loss[thesis_best]) < 0.05]
        verdict = FAILS if beaten else HOLDS if our_best == thesis_best else UNSURE
        ranking = lambda acc: " > ".join(f"{loss} {acc[loss]:.3f}" for loss in sorted(acc, key=acc.get, reverse=True))  # noqa: E731
        rows.append((f"{name}: {thesis_best} is the best loss (Table 4)", ranking(theirs),
                     ranking(ours) + (f"; significantly above {thesis_best}: {', '.join(beaten)}" if beaten else ""),
                     verdict))
    return rows


def claims_table(kd_seeds_by_group, loss_datasets_by_preset, thesis):
    """One table of every claim we can test, with its evidence and verdict."""
    table = Table("claims", "The papers' claims, tested on our runs",
                  ["claim", "paper", "ours (95 % interval)", "verdict"],
                  "Accuracy differences: paired on the same test images, pooled over seeds, normal 95 % interval "
                  "and exact McNemar test. Slopes: least squares per seed, t interval over seeds (one seed: "
                  "from the fit's residuals). Paper A: valid accuracy, mean over seeds; 'does not hold' when "
                  "another loss beats the thesis's best with McNemar p < 0.05.")
    for group, seeds in kd_seeds_by_group.items():
        for claim, theirs, ours, verdict in distillation_claims(seeds):
            table.add(f"B ({group}): {claim}", theirs, ours, verdict)
    for preset, datasets in loss_datasets_by_preset.items():
        for claim, theirs, ours, verdict in loss_claims(datasets, thesis):
            table.add(f"A ({preset}): {claim}", theirs, ours, verdict)
    return table
