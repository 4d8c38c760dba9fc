"""The one statistical design behind every claim: the seed is the unit of replication.

A seed repeats the whole experiment: its own initial weights, data order, augmentation and,
in Paper B, its own draw of train, valid and test images. So:

- **A comparison is a paired difference per seed**, ``d_s = score(A, s) − score(B, s)``, each
  on that seed's own evaluation images (or its own scalar: an uncertainty, a best epoch).
- **Its 95 % interval is Student's t over the seeds**: ``mean(d) ± t(0.975, S − 1) · sd(d) / √S``.
  t and not a bootstrap, because a bootstrap over S = 3 seeds has only 10 distinct resamples and
  its percentiles are too coarse to be an interval. Since each seed draws its own images, the
  spread over seeds already holds the images' sampling: the interval is not conditional on a split.
- **When every seed scores the same images** (Paper A's fixed valid split), the spread over seeds
  says nothing about which images were drawn. The ``S × N`` table of per-image differences is then
  a two-way layout (seed, image, their interaction), and the variance of its mean is

  ``var = (MS_seed + MS_image − MS_residual) / (S · N)``

  with ``MS_seed = N · var_s(d_s)``, ``MS_image = S · var_i(d̄_i)`` and ``MS_residual`` the
  interaction's mean square: each of the three components (seed, image, interaction) counted
  once. Its degrees of freedom are Welch-Satterthwaite's,
  ``ν = (Σ c_k MS_k)² / Σ (c_k MS_k)² / df_k`` (``df = S − 1, N − 1, (S − 1)(N − 1)``; ν at least
  ``S − 1``). Such an interval covers new images from the same population, but it is
  **conditional on the shared training split**: every seed trained on the same images.
- **Several parts** ("at every generation", "on every set"): the claim holds when every part's
  interval supports it (an intersection-union test: no correction needed), and does not hold when
  Holm's step-down rejects at least one part's "no contradiction" at a family-wise 2.5 % (the
  one-sided level of a 95 % interval). So a false "does not hold" has at most a 2.5 % chance
  however many parts a claim has.
- **McNemar's exact test within a seed** is supporting evidence, one p-value per seed; seeds are
  never pooled into one test, since they share images.

Examples:
    >>> from kd_keras import statistics
    >>> c = statistics.compare_scalars([0.02, 0.03, 0.01])
    >>> round(c.mean, 3), c.n, c.dof
    (0.02, 3, 2)
    >>> statistics.verdict([statistics.Part(c, "above", 0.0)])
    'holds'
"""

import dataclasses
import math

import numpy as np

from kd_keras import metrics

HOLDS, FAILS, UNSURE = "holds", "does not hold", "cannot tell at this scale"
ALPHA = 0.025  # one-sided, the level of each side of a two-sided 95 % interval


# --- Student's t, for any real degrees of freedom ------------------------------------------------


def _beta_continued_fraction(a, b, x):
    """The continued fraction of the regularised incomplete beta (modified Lentz)."""
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return h


def _regularized_beta(a, b, x):
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_cdf(t, dof):
    """P(T <= t) for Student's t with ``dof`` (> 0, real) degrees of freedom."""
    tail = 0.5 * _regularized_beta(dof / 2.0, 0.5, dof / (dof + t * t))
    return 1.0 - tail if t > 0 else tail


def _t_density(t, dof):
    return math.exp(math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2) - 0.5 * math.log(dof * math.pi)
                    - (dof + 1) / 2 * math.log1p(t * t / dof))


def _normal_quantile(q):
    low, high = -40.0, 40.0
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if 0.5 * math.erfc(-mid / math.sqrt(2)) < q else (low, mid)
    return (low + high) / 2


def t_quantile(q, dof):
    """The ``q`` quantile (0 < q < 1) of Student's t with ``dof`` degrees of freedom.

    Newton's method on :func:`t_cdf` from the Cornish-Fisher start (normal quantile plus its
    first two corrections in 1/dof), safeguarded by bisection.
    """
    if q < 0.5:
        return -t_quantile(1.0 - q, dof)
    z = _normal_quantile(q)
    t = z + (z**3 + z) / (4 * dof) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * dof**2)
    low, high = 0.0, max(2.0 * t, 1.0)
    while t_cdf(high, dof) < q:
        high *= 2.0
    t = min(max(t, low), high)
    for _ in range(100):
        error = t_cdf(t, dof) - q
        if abs(error) < 1e-13:
            break
        low, high = (t, high) if error < 0 else (low, t)
        step = t - error / _t_density(t, dof)
        t = step if low < step < high else (low + high) / 2
    return t


def t975(dof):
    """The 97.5 % quantile of Student's t with ``dof`` degrees of freedom."""
    return t_quantile(0.975, dof)


# --- Comparisons ----------------------------------------------------------------------------------


@dataclasses.dataclass
class Comparison:
    """A difference with its standard error and degrees of freedom; the 95 % t interval from them.

    ``se``/``dof`` are None with fewer than two replicates (one seed gives no interval);
    ``mcnemar`` holds one p-value per seed when the difference is an accuracy on paired images;
    ``unit`` names the unit of replication ("seed", or "image" for a timing ratio).
    """

    per_seed: list
    mean: float
    se: float | None = None
    dof: float | None = None
    mcnemar: list = dataclasses.field(default_factory=list)
    unit: str = "seed"

    @property
    def n(self):
        return len(self.per_seed)

    @property
    def low(self):
        return None if self.se is None else self.mean - t975(self.dof) * self.se

    @property
    def high(self):
        return None if self.se is None else self.mean + t975(self.dof) * self.se

    def p_above(self, threshold):
        """One-sided p-value against "the difference is at most ``threshold``" (small: it is above)."""
        if self.se is None:
            return 1.0
        if self.se == 0:
            return 0.0 if self.mean > threshold else 1.0
        return 1.0 - t_cdf((self.mean - threshold) / self.se, self.dof)

    def p_below(self, threshold):
        """One-sided p-value against "the difference is at least ``threshold``" (small: it is below)."""
        if self.se is None:
            return 1.0
        if self.se == 0:
            return 0.0 if self.mean < threshold else 1.0
        return t_cdf((self.mean - threshold) / self.se, self.dof)

    def text(self, scale=100.0, unit=" pts", digits=2, mcnemar=True, signed=True):
        """``+1.20 pts [−0.40, +2.80] (n=3 seeds)``, then the per-seed McNemar p-values.

        ``signed=False`` for a ratio or a level rather than a difference: ``2.41x [2.30, 2.52]``.
        """
        f = lambda v: f"{v * scale:{'+' if signed else ''}.{digits}f}"  # noqa: E731
        interval = (f" [{f(self.low)}, {f(self.high)}]" if self.low is not None
                    else f" [no interval: one {self.unit}]")
        out = f"{f(self.mean)}{unit}{interval} (n={self.n} {self.unit}{'' if self.n == 1 else 's'})"
        if mcnemar and self.mcnemar:
            out += "; McNemar p per seed " + ", ".join(f"{p:.2g}" for p in self.mcnemar)
        return out


def compare_scalars(values, unit="seed"):
    """The t interval of the mean of ``values``, one per replicate (``S − 1`` degrees of freedom)."""
    values = [float(v) for v in values]
    mean = float(np.mean(values)) if values else math.nan
    if len(values) < 2:
        return Comparison(values, mean, unit=unit)
    return Comparison(values, mean, math.sqrt(np.var(values, ddof=1) / len(values)), len(values) - 1, unit=unit)


def two_way_variance(differences):
    """Variance of the grand mean of an ``S × N`` (seed × image) table, and its degrees of freedom.

    See the module docstring: the seed, image and interaction components each counted once,
    Welch-Satterthwaite degrees of freedom, at least ``S − 1``. Where the estimate is not
    positive (the interaction's mean square exceeds the other two), the larger of the seed and
    image terms alone is used, with its own degrees of freedom.
    """
    d = np.asarray(differences, dtype="float64")
    s, n = d.shape
    by_seed, by_image, grand = d.mean(axis=1), d.mean(axis=0), d.mean()
    ms_seed, ms_image = n * np.var(by_seed, ddof=1), s * np.var(by_image, ddof=1)
    residual = d - by_seed[:, None] - by_image[None, :] + grand
    ms_residual = float(np.sum(residual**2) / ((s - 1) * (n - 1)))
    terms = [(ms_seed, s - 1), (ms_image, n - 1), (-ms_residual, (s - 1) * (n - 1))]
    total = sum(value for value, _ in terms)
    if total <= 0:
        value, dof = max(terms[:2])
        return float(value / (s * n)), float(dof)
    dof = total**2 / sum(value**2 / df for value, df in terms)
    return float(total / (s * n)), float(max(s - 1, dof))


def compare_correct(correct_a, correct_b, shared_images=False):
    """Accuracy of A minus B, per seed on that seed's images, with an interval over seeds.

    Args:
        correct_a, correct_b: one boolean array per seed (right or wrong per image), paired:
            ``correct_a[s][i]`` and ``correct_b[s][i]`` are the same image.
        shared_images: every seed scores the same images in the same order (Paper A's fixed
            valid split): the two-way variance of :func:`two_way_variance` replaces the
            spread over seeds.
    """
    a = [np.asarray(x, bool) for x in correct_a]
    b = [np.asarray(x, bool) for x in correct_b]
    per_seed = [float(np.mean(x) - np.mean(y)) for x, y in zip(a, b)]
    comparison = compare_scalars(per_seed)
    if shared_images and len(a) > 1:
        variance, comparison.dof = two_way_variance([x.astype(float) - y.astype(float) for x, y in zip(a, b)])
        comparison.se = math.sqrt(variance)
    comparison.mcnemar = [metrics.mcnemar_exact(x, y) for x, y in zip(a, b)]
    return comparison


def ratio_of_means(numerator, denominator):
    """``mean(numerator) / mean(denominator)`` over paired replicates, with a delta-method interval.

    Used for a speed-up: each image timed once on both networks. Its unit is the image.
    """
    x, y = np.asarray(numerator, "float64"), np.asarray(denominator, "float64")
    n, ratio = len(x), float(np.mean(x) / np.mean(y))
    if n < 2:
        return Comparison(list(x / y), ratio, unit="image")
    covariance = np.cov(x, y, ddof=1)
    variance = (covariance[0, 0] - 2 * ratio * covariance[0, 1] + ratio**2 * covariance[1, 1]) / (n * np.mean(y) ** 2)
    return Comparison(list(x / y), ratio, math.sqrt(max(variance, 0.0)), n - 1, unit="image")


def slope(series):
    """Least-squares slope of each seed's values against their position (generation)."""
    return [float(np.polyfit(np.arange(len(ys), dtype="float64"), ys, 1)[0]) for ys in series]


# --- Verdicts: evidence both ways, else "cannot tell". ----------------------------------------------


@dataclasses.dataclass
class Part:
    """One part of a claim: ``comparison`` is ``"above"`` or ``"below"`` ``threshold``, or
    ``"within"`` ``±threshold``."""

    comparison: Comparison
    side: str
    threshold: float = 0.0

    def p_support(self):
        c, t = self.comparison, self.threshold
        if self.side == "above":
            return c.p_above(t)
        if self.side == "below":
            return c.p_below(t)
        return max(c.p_above(-t), c.p_below(t))  # two one-sided tests: the interval inside ±t

    def p_contradict(self):
        c, t = self.comparison, self.threshold
        if self.side == "above":
            return c.p_below(t)
        if self.side == "below":
            return c.p_above(t)
        return min(c.p_above(t), c.p_below(-t))  # wholly outside, on either side


def holm(p_values, alpha=ALPHA):
    """Holm's step-down: which of ``p_values`` are rejected at family-wise ``alpha``."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    rejected = [False] * len(p_values)
    for rank, i in enumerate(order):
        if p_values[i] > alpha / (len(p_values) - rank):
            break
        rejected[i] = True
    return rejected


def verdict(parts):
    """``holds`` if every part's interval supports it; ``does not hold`` if Holm rejects any part's
    "no contradiction"; otherwise (or with a part of one replicate) ``cannot tell``."""
    parts = list(parts)
    if not parts or any(p.comparison.se is None for p in parts):
        return UNSURE
    if all(p.p_support() <= ALPHA for p in parts):
        return HOLDS
    return FAILS if any(holm([p.p_contradict() for p in parts])) else UNSURE


def ordering_verdict(c, threshold=0.0):
    """A one-part claim that the difference exceeds ``threshold``: the interval wholly above it holds,
    wholly below it does not hold."""
    return verdict([Part(c, "above", threshold)])


def within_verdict(c, margin):
    """A one-part claim that the difference stays within ±``margin`` (an equivalence test)."""
    return verdict([Part(c, "within", margin)])
