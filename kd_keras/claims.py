"""The papers' claims, each tested on our runs with the design of :mod:`kd_keras.statistics`.

Every claim is a difference measured once per seed, a 95 % t interval over the seeds and a rule
that reads a verdict off the interval: ``holds`` when the interval supports the claim, ``does not
hold`` when it contradicts it, otherwise ``cannot tell at this scale``. The rule is printed beside
each verdict. Margins come from the papers' own words where they give one (Paper B: "by less than
3 %", "within 0.003").
"""

import os

import numpy as np

from kd_keras import metrics, statistics as st
from kd_keras.runs import read_json
from kd_keras.statistics import FAILS, HOLDS, UNSURE  # noqa: F401  (the verdicts, re-exported)
from kd_keras.tables import Table

CHAIN_LOSS = 0.03  # "accuracy falls during recursion, but by less than 3 %"
HARD_FLAT = 0.003  # "in the hard chain uncertainty stays within 0.003 of the hard student's on every set"
GENERATIONS = 6
SETS = ("train", "valid", "test")


def _ordering_rule(threshold=0.0, scale=100, unit=" pts"):
    t = f"{threshold * scale:+g}{unit}" if threshold else "0"
    return f"holds if the interval is above {t}; does not hold if below {t}"


def chain_run(kind, generation):
    """The run folder name of ``kind``'s chain at ``generation`` (0: the student itself)."""
    return f"student-{kind}" if generation == 0 else f"{kind}-chain-{generation}"


def _split_files(run_dir, split):
    path = os.path.join(run_dir, "split.json")
    return read_json(path)["splits"].get(split) if os.path.exists(path) else None


def shared_images(run_dirs, split):
    """True when every run scored the same images of ``split``, in the same order."""
    files = [_split_files(d, split) for d in run_dirs]
    return len(files) > 1 and files[0] is not None and all(f == files[0] for f in files)


def _test_correct(run_dir):
    path = os.path.join(run_dir, "predictions.npz")
    if not os.path.exists(path):
        return None
    blob = np.load(path)
    return metrics.correct(blob["test"], blob["label_test"])


def accuracy_difference(seeds, run_a, run_b):
    """Test accuracy of ``run_a`` minus ``run_b``, paired within each seed that has both.

    Args:
        seeds: ``{seed_dir: {run: metrics}}``.

    Returns:
        A :class:`kd_keras.statistics.Comparison`, or None when no seed has both runs.
    """
    pairs = {}
    for seed_dir in sorted(seeds):
        a, b = _test_correct(os.path.join(seed_dir, run_a)), _test_correct(os.path.join(seed_dir, run_b))
        if a is not None and b is not None:
            pairs[seed_dir] = (a, b)
    if not pairs:
        return None
    shared = shared_images([os.path.join(d, run_a) for d in pairs], "test")
    return st.compare_correct([p[0] for p in pairs.values()], [p[1] for p in pairs.values()], shared)


def scalar_difference(seeds, value_a, value_b):
    """``value_a(m) − value_b(m)`` per seed, from each seed's ``{run: metrics}``; None where missing."""
    diffs = []
    for found in (seeds[k] for k in sorted(seeds)):
        try:
            diffs.append(value_a(found) - value_b(found))
        except (KeyError, TypeError):
            continue
    return st.compare_scalars(diffs) if diffs else None


def _unc(run, split):
    return lambda found: found[run]["eval"][split]["uncertainty"]


def _ordering_row(claim, paper, comparison, label, threshold=0.0):
    if comparison is None:
        return None
    return (claim, paper, f"{label} {comparison.text()}", _ordering_rule(threshold), st.ordering_verdict(comparison, threshold))


def _converges_row(seeds):
    """The hard student's best valid epoch comes earlier than the classic's (as a fraction of training)."""
    diffs, censored = [], {"classic": False, "hard": False}
    for found in (seeds[k] for k in sorted(seeds)):
        if "student-classic" not in found or "student-hard" not in found:
            continue
        best = {net: found[f"student-{net}"].get("best", {}) for net in ("classic", "hard")}
        if any("best_epoch" not in b for b in best.values()):
            continue
        for net in best:
            censored[net] |= best[net]["best_epoch"] == best[net]["epochs"]
        diffs.append((best["classic"]["best_epoch"] - best["hard"]["best_epoch"]) / best["classic"]["epochs"])
    if not diffs:
        return None
    c = st.compare_scalars(diffs)
    verdict = st.ordering_verdict(c)
    # A best epoch at the last epoch is only a lower bound of when that student would peak:
    # it makes a late classic look earlier (so "does not hold" is not safe) and a late hard
    # student look earlier (so "holds" is not safe).
    if (verdict == FAILS and censored["classic"]) or (verdict == HOLDS and censored["hard"]):
        verdict = UNSURE
    note = "; a best epoch at the last epoch: " + ", ".join(n for n in censored if censored[n]) if any(
        censored.values()) else ""
    return ("the hard student reaches its best valid accuracy earlier than the classic",
            "hard epoch 47, classic 86 of 100 (1.8x as fast)",
            f"(classic − hard best epoch) / epochs {c.text(unit=' % of training')}{note}",
            _ordering_rule(unit=" %") + "; cannot tell when a censored best epoch (the last one) could "
            "reverse the verdict", verdict)


def _reach(c):
    """How far from zero a comparison's interval (or its mean, with one seed) reaches."""
    return abs(c.mean) if c.low is None else max(abs(c.low), abs(c.high))


def _every_generation_row(claim, paper, seeds, compare, verdict_of, rule, label, kinds=range(GENERATIONS + 1),
                          text=lambda c: c.text()):
    parts = []
    for k in kinds:
        c = compare(k)
        if c is None:
            return None
        parts.append((k, c))
    worst = min(parts, key=lambda kc: kc[1].mean if kc[1].low is None else kc[1].low)
    verdict = st.all_verdict(verdict_of(c) for _, c in parts)
    return (claim, paper, f"{label}; weakest generation {worst[0]}: {text(worst[1])}", rule, verdict)


def distillation_claims(seeds):
    """Rows ``(claim, paper, ours, rule, verdict)`` for Paper B from ``{seed_dir: {run: metrics}}``."""
    rows = [
        _ordering_row("the soft student is at least as accurate as the classic on test", "96.32 vs 96.16 %",
                      accuracy_difference(seeds, "student-soft", "student-classic"), "soft − classic"),
        _ordering_row("the classic student is more accurate than the hard on test", "96.16 vs 95.44 %",
                      accuracy_difference(seeds, "student-classic", "student-hard"), "classic − hard"),
        _converges_row(seeds),
    ]
    for kind, paper in (("hard", "95.44 → 93.52 % (−1.92)"), ("soft", "96.32 → 94.59 % (−1.73)")):
        rows.append(_ordering_row(
            f"six generations of the {kind} chain lose < 3 points of test accuracy", paper,
            accuracy_difference(seeds, chain_run(kind, GENERATIONS), chain_run(kind, 0)),
            "generation 6 − student", -CHAIN_LOSS))
    rows.append(_every_generation_row(
        "the soft chain's test accuracy is above the hard chain's at every generation",
        "above at all 7, by 0.3 to 1.1 points", seeds,
        lambda k: accuracy_difference(seeds, chain_run("soft", k), chain_run("hard", k)),
        st.ordering_verdict, "holds if every generation's interval is above 0; does not hold if any is below 0",
        "soft − hard per generation"))
    hard_parts = {}
    for split in SETS:
        for k in range(1, GENERATIONS + 1):
            hard_parts[(split, k)] = scalar_difference(seeds, _unc(chain_run("hard", k), split),
                                                       _unc(chain_run("hard", 0), split))
    if all(hard_parts.values()):
        worst = max(hard_parts, key=lambda key: _reach(hard_parts[key]))
        verdict = st.all_verdict(st.within_verdict(c, HARD_FLAT) for c in hard_parts.values())
        rows.append((f"the hard chain's uncertainty stays within {HARD_FLAT} of the hard student's on every set",
                     "test 0.0071 → 0.0056; largest move 0.0029 (train, generation 4)",
                     f"generation − student; furthest: {worst[0]} generation {worst[1]} "
                     f"{hard_parts[worst].text(scale=1, unit='', digits=4)}",
                     f"holds if every generation's interval on train, valid and test lies inside ±{HARD_FLAT}; "
                     f"does not hold if any lies wholly outside", verdict))
    series = []
    for found in (seeds[s] for s in sorted(seeds)):
        try:
            series.append([_unc(chain_run("soft", k), "test")(found) for k in range(GENERATIONS + 1)])
        except (KeyError, TypeError):
            continue
    if series:
        c = st.compare_scalars(st.slope(series))
        first, last = np.mean([s[0] for s in series]), np.mean([s[-1] for s in series])
        rows.append(("the soft chain's test uncertainty grows over the generations", "0.0040 → 0.0227",
                     f"{first:.4f} → {last:.4f}; least-squares slope per seed {c.text(scale=1, unit='/generation', digits=5)}",
                     "holds if the slope's interval is above 0; does not hold if below 0", st.ordering_verdict(c)))
    rows.append(_every_generation_row(
        "from generation 2 on, the soft chain is more uncertain than the hard chain on test",
        "0.0094 vs 0.0052 … 0.0227 vs 0.0056 (below at 0 and 1)", seeds,
        lambda k: scalar_difference(seeds, _unc(chain_run("soft", k), "test"), _unc(chain_run("hard", k), "test")),
        st.ordering_verdict, "holds if every generation's interval is above 0; does not hold if any is below 0",
        "soft − hard uncertainty", kinds=range(2, GENERATIONS + 1),
        text=lambda c: c.text(scale=1, unit="", digits=4)))
    return [row for row in rows if row is not None]


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


def _dataset_key(name):
    return name.lower().replace("-", "").replace("_", "")


def loss_claims(datasets, thesis):
    """Rows for Paper A: per dataset, is the thesis's best loss (Table 4) also ours?

    Args:
        datasets: ``{dataset: {loss: {seed: run_dir}}}`` (see :func:`kd_keras.report.loss_groups`).
        thesis: ``{loss: {dataset key: accuracy}}`` (Table 4).
    """
    rows = []
    for name, by_loss in sorted(datasets.items()):
        theirs = {loss: thesis[loss][_dataset_key(name)] for loss in thesis
                  if _dataset_key(name) in thesis[loss] and loss in by_loss}
        if len(theirs) < 2:
            continue
        best = max(theirs, key=theirs.get)
        parts = {loss: loss_difference(by_loss[best], by_loss[loss]) for loss in theirs if loss != best}
        verdict = st.all_verdict(st.ordering_verdict(c) for c in parts.values())
        ranking = " > ".join(f"{loss} {theirs[loss]:.2f}" for loss in sorted(theirs, key=theirs.get, reverse=True))
        ours = "; ".join(f"{best} − {loss} {c.text()}" for loss, c in sorted(parts.items()))
        rows.append((f"{name}: {best} is the best loss (Table 4)", ranking, ours,
                     "holds if every interval is above 0; does not hold if any is below 0", verdict))
    return rows


RULES = ("The seed is the unit of replication: each claim's difference is measured once per seed (on that "
         "seed's own test images in Paper B; on the shared valid split in Paper A) and its 95 % interval is "
         "Student's t over the seeds; where every seed scores the same images, the images' variance is added "
         "once (each image counted once). McNemar p-values are per seed, supporting evidence only. "
         "One seed gives no interval and no verdict.")


def claims_table(kd_seeds_by_group, loss_datasets_by_preset, thesis):
    """One table of every claim we can test, with its evidence, rule and verdict."""
    table = Table("claims", "The papers' claims, tested on our runs",
                  ["claim", "paper", "ours (mean, 95 % interval over seeds)", "rule", "verdict"], RULES)
    for group, seeds in kd_seeds_by_group.items():
        for claim, *rest in distillation_claims(seeds):
            table.add(f"B ({group}): {claim}", *rest)
    for preset, datasets in loss_datasets_by_preset.items():
        for claim, *rest in loss_claims(datasets, thesis):
            table.add(f"A ({preset}): {claim}", *rest)
    return table
