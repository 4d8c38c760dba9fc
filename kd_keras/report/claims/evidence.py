"""What a claim row is, and the per-seed evidence the claims read from the run folders.

A claim row quotes the paper's sentence (from ``PAPERS.md``), says how it is read, measures a
difference once per seed, and reads a verdict off the intervals with
:func:`kd_keras.statistics.verdict` (every part supports it: holds; Holm rejects one part: does
not hold; otherwise: cannot tell).
"""

import dataclasses
import os

import numpy as np

from kd_keras import metrics
from kd_keras.report import statistics as st
from kd_keras.replay import layout
from kd_keras.replay.run_files import read_split

OURS = "not a sentence of the paper: an ordering observed in its tables (ours)"


@dataclasses.dataclass
class Claim:
    """One row of the claims table.

    Args:
        claim: what is claimed, in a few words.
        quote: the paper's sentence, as ``PAPERS.md`` gives it (or :data:`OURS`).
        reading: how the sentence is read: which sets, generations, relative or absolute.
        paper: the paper's own numbers for it.
        ours: our evidence: the weakest part's mean and 95 % interval.
        rule: how the verdict is read off the parts' intervals.
        verdict: ``holds``, ``does not hold`` or ``cannot tell at this scale``.
        replicates: the number of seeds (or timed images) behind it.
    """

    claim: str
    quote: str
    reading: str
    paper: str
    ours: str
    rule: str
    verdict: str
    replicates: str


def parts_rule(n_parts, side, threshold_text):
    """The rule sentence of a claim of ``n_parts`` parts, each ``side`` of ``threshold_text``."""
    wrong = {"above": "below", "below": "above", "within": "outside"}[side]
    if n_parts == 1:
        return (f"holds if the interval lies {side} {threshold_text}; "
                f"does not hold if it lies wholly {wrong} it; else cannot tell")
    return (f"holds if all {n_parts} parts' intervals lie {side} {threshold_text}; does not hold if Holm's "
            f"step-down over the {n_parts} parts finds one {wrong} it (family-wise 2.5 %); else cannot tell")


def deciding(parts, labels, verdict):
    """The label and part the ``ours`` cell shows: the most contradicting part of a claim that does
    not hold, else the part whose support is weakest (largest p-value)."""
    if verdict == st.FAILS:
        i = min(range(len(parts)), key=lambda k: parts[k].p_contradict())
    else:
        i = max(range(len(parts)), key=lambda k: parts[k].p_support())
    return labels[i], parts[i]


def make_claim(claim, quote, reading, paper, parts, labels, side, threshold_text, text=None, extra=""):
    """A :class:`Claim` from its ``parts`` (:class:`kd_keras.statistics.Part`), or None when a part is missing."""
    if not parts or any(p is None or p.comparison is None for p in parts):
        return None
    verdict = st.verdict(parts)
    label, part = deciding(parts, labels, verdict)
    text = text or (lambda c: c.text())
    which = "most contradicting" if verdict == st.FAILS else "weakest"
    where = f"{label}: " if len(parts) == 1 else f"{which} of {len(parts)} parts, {label}: "
    n = min(p.comparison.n for p in parts)
    unit = parts[0].comparison.unit
    return Claim(claim, quote, reading, paper, where + text(part.comparison) + extra,
                 parts_rule(len(parts), side, threshold_text), verdict, f"{n} {unit}{'s' * (n != 1)}")


# --- per-seed evidence --------------------------------------------------------------------------


chain_run = layout.chain_run  # the run folder of a chain's generation (0: the student itself)


def _split_files(run_dir, split):
    found = read_split(run_dir)
    return None if found is None else found["splits"].get(split)


def shared_images(run_dirs, split):
    """True when every run scored the same images of ``split``, in the same order."""
    files = [_split_files(d, split) for d in run_dirs]
    return len(files) > 1 and files[0] is not None and all(f == files[0] for f in files)


def predictions(run_dir, split="test"):
    """``(p, labels)`` of a run's ``predictions.npz`` on ``split``, or None."""
    path = os.path.join(run_dir, "predictions.npz")
    if not os.path.exists(path):
        return None
    blob = np.load(path)
    return (blob[split], blob[f"label_{split}"]) if split in blob else None


def _test_correct(run_dir):
    found = predictions(run_dir)
    return None if found is None else metrics.correct(*found)


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


def per_seed(seeds, value):
    """``value(seed_dir, {run: metrics})`` for each seed where it can be computed (no missing run)."""
    values = []
    for seed_dir in sorted(seeds):
        try:
            v = value(seed_dir, seeds[seed_dir])
        except (KeyError, TypeError, IndexError, ZeroDivisionError):
            continue
        if v is not None:
            values.append(v)
    return values


def scalar_comparison(seeds, value):
    """:func:`kd_keras.statistics.compare_scalars` of :func:`per_seed`; None when no seed has it."""
    values = per_seed(seeds, value)
    return st.compare_scalars(values) if values else None


def uncertainty(run, split):
    """``{run: metrics} -> `` the run's formula-15 uncertainty on ``split``."""
    return lambda found: found[run]["eval"][split]["uncertainty"]


def accuracy(run, split):
    """``{run: metrics} -> `` the run's accuracy on ``split`` (the best-validation model)."""
    return lambda found: found[run]["eval"][split]["accuracy"]


def histogram(run, split):
    """``{run: metrics} -> `` the run's 20-bin histogram of predictions on ``split``."""
    return lambda found: np.asarray(found[run]["eval"][split]["histogram"], "float64")
