"""The one statistical design behind every claim: the seed is the unit of replication.

A seed repeats the whole experiment: its own initial weights, data order, augmentation and,
in Paper B, its own draw of train, valid and test images. So:

- **A comparison is a paired difference per seed**, ``d_s = score(A, s) − score(B, s)``, each
  on that seed's own evaluation images (or its own scalar: an uncertainty, a best epoch).
- **Its 95 % interval is Student's t over the seeds**: ``mean(d) ± t(0.975, S − 1) · sd(d) / √S``.
  t and not a bootstrap, because a bootstrap over S = 3 seeds has only 10 distinct resamples and
  its percentiles are too coarse to be an interval; t is exact when the ``d_s`` are normal and
  conservative in width for so few seeds. One seed gives no interval: its claims cannot be told.
- **When every seed scores the same images** (Paper A's fixed valid splits), the spread over seeds
  says nothing about which images were drawn. The image term is added once, with each image
  counted once: ``var = var_s(d_s) / S + var_i(d̄_i) / N``, ``d̄_i`` the image's right-minus-right
  averaged over the seeds. (Both terms hold the seed-by-image noise, so this is slightly wide.)
- **McNemar's exact test within a seed** is supporting evidence, one p-value per seed; seeds are
  never pooled into one test, since they share images.

Example:
    >>> from kd_keras import statistics
    >>> c = statistics.compare_scalars([0.02, 0.03, 0.01])
    >>> round(c.mean, 3), c.n
    (0.02, 3)
    >>> statistics.ordering_verdict(c)
    'holds'
"""

import dataclasses
import math

import numpy as np

from kd_keras import metrics

HOLDS, FAILS, UNSURE = "holds", "does not hold", "cannot tell at this scale"

# Two-sided 97.5 % quantiles of Student's t for 1..30 degrees of freedom (then the normal's).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def t975(dof):
    """The 97.5 % quantile of Student's t with ``dof`` degrees of freedom."""
    return _T975[dof - 1] if 1 <= dof <= len(_T975) else 1.96


@dataclasses.dataclass
class Comparison:
    """A difference measured once per seed, with its 95 % interval over the seeds.

    ``low``/``high`` are None with fewer than two seeds; ``mcnemar`` holds one p-value per
    seed when the difference is an accuracy on paired images.
    """

    per_seed: list
    mean: float
    low: float | None
    high: float | None
    mcnemar: list = dataclasses.field(default_factory=list)

    @property
    def n(self):
        return len(self.per_seed)

    def text(self, scale=100.0, unit=" pts", digits=2, mcnemar=True):
        """``+1.20 pts [−0.40, +2.80] (n=3 seeds)``, then the per-seed McNemar p-values."""
        f = lambda v: f"{v * scale:+.{digits}f}"  # noqa: E731
        interval = f" [{f(self.low)}, {f(self.high)}]" if self.low is not None else " [no interval: one seed]"
        out = f"{f(self.mean)}{unit}{interval} (n={self.n} seed{'' if self.n == 1 else 's'})"
        if mcnemar and self.mcnemar:
            out += "; McNemar p per seed " + ", ".join(f"{p:.2g}" for p in self.mcnemar)
        return out


def compare_scalars(values, image_variance=0.0):
    """The t interval over seeds of per-seed differences ``values``.

    Args:
        values: one difference per seed.
        image_variance: the variance of the mean due to the images, added when every seed
            scores the same images (see :func:`compare_correct`).
    """
    values = [float(v) for v in values]
    mean = float(np.mean(values)) if values else math.nan
    if len(values) < 2:
        return Comparison(values, mean, None, None)
    half = t975(len(values) - 1) * math.sqrt(np.var(values, ddof=1) / len(values) + image_variance)
    return Comparison(values, mean, mean - half, mean + half)


def compare_correct(correct_a, correct_b, shared_images=False):
    """Accuracy of A minus B, per seed on that seed's images, with an interval over seeds.

    Args:
        correct_a, correct_b: one boolean array per seed (right or wrong per image), paired:
            ``correct_a[s][i]`` and ``correct_b[s][i]`` are the same image.
        shared_images: every seed scores the same images in the same order (Paper A's fixed
            valid split): the images' own variance is added once, each image counted once.
    """
    a = [np.asarray(x, bool) for x in correct_a]
    b = [np.asarray(x, bool) for x in correct_b]
    per_seed = [float(np.mean(x) - np.mean(y)) for x, y in zip(a, b)]
    image_variance = 0.0
    if shared_images and len(a) > 1:
        by_image = np.mean([x.astype(float) - y.astype(float) for x, y in zip(a, b)], axis=0)
        image_variance = float(np.var(by_image, ddof=1) / len(by_image))
    comparison = compare_scalars(per_seed, image_variance)
    comparison.mcnemar = [metrics.mcnemar_exact(x, y) for x, y in zip(a, b)]
    return comparison


def slope(series):
    """Least-squares slope of each seed's values against their position (generation)."""
    return [float(np.polyfit(np.arange(len(ys), dtype="float64"), ys, 1)[0]) for ys in series]


# --- Verdicts: evidence both ways, else "cannot tell". ----------------------------------------------


def ordering_verdict(c, threshold=0.0):
    """A claim that the difference exceeds ``threshold`` (0 for "A beats B", −0.03 for "loses < 3 points").

    ``holds`` when the whole interval is above ``threshold``, ``does not hold`` when it is wholly
    below, otherwise (or with one seed) ``cannot tell``.
    """
    if c.low is None:
        return UNSURE
    return HOLDS if c.low > threshold else FAILS if c.high < threshold else UNSURE


def within_verdict(c, margin):
    """A claim that the difference stays within ±``margin`` (an equivalence test).

    ``holds`` when the whole interval lies inside (−margin, margin), ``does not hold`` when it lies
    wholly outside on one side, otherwise ``cannot tell``.
    """
    if c.low is None:
        return UNSURE
    if -margin < c.low and c.high < margin:
        return HOLDS
    return FAILS if c.low > margin or c.high < -margin else UNSURE


def all_verdict(verdicts):
    """A claim made of parts ("at every generation"): holds if every part holds, fails if any fails."""
    verdicts = list(verdicts)
    if verdicts and all(v == HOLDS for v in verdicts):
        return HOLDS
    return FAILS if FAILS in verdicts else UNSURE
