"""Paper B's measures of a model on a set, and an exact McNemar test for paper A.

All functions take NumPy arrays of predictions ``p`` in [0, 1] and labels ``y``.
"""

import math

import numpy as np

THRESHOLD = 0.5


def accuracy(p, y, threshold=THRESHOLD):
    """Formulas 11-12: a sample is right when ``p`` and ``y`` are both > th or both <= th."""
    p, y = np.ravel(p), np.ravel(y)
    return float(np.mean((p > threshold) == (y > threshold)))


def binary_crossentropy(p, y, eps=1e-7):
    """Mean BCE ``-(y log p + (1 - y) log(1 - p))``, clipped as Keras clips it."""
    p, y = np.clip(np.ravel(p).astype("float64"), eps, 1 - eps), np.ravel(y).astype("float64")
    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))


def hard_labels(p, threshold=THRESHOLD):
    """Formula 13: ``y = 1 if p > 0.5 else 0``."""
    return (np.ravel(p) > threshold).astype("float32")


def uncertainty(p, threshold=THRESHOLD):
    """Formula 15, the degree of uncertainty: ``(1/n) Σ (p_i - y_i)²``, y_i = p_i thresholded."""
    p = np.ravel(p).astype("float64")
    return float(np.mean((p - hard_labels(p, threshold)) ** 2))


def histogram(p, bins=20):
    """Relative frequencies of ``p`` in ``bins`` equal bins over [0, 1] (the last one closed)."""
    counts, _ = np.histogram(np.ravel(p), bins=bins, range=(0.0, 1.0))
    return (counts / max(len(np.ravel(p)), 1)).tolist()


def summary(p, y):
    """Loss, accuracy, uncertainty and the 20-bin histogram of predictions ``p`` on labels ``y``."""
    return {"loss": binary_crossentropy(p, y), "accuracy": accuracy(p, y),
            "uncertainty": uncertainty(p), "histogram": histogram(p), "n": int(np.size(p))}


def mcnemar_exact(correct_a, correct_b):
    """Exact two-sided McNemar test on paired right/wrong outcomes of two classifiers.

    With b = cases only A got right and c = cases only B got right, the p-value is
    ``min(1, 2 * P[X <= min(b, c)])``, X ~ Binomial(b + c, 1/2). Identical outcomes give 1.
    """
    a, b_ = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    b = int(np.sum(a & ~b_))
    c = int(np.sum(~a & b_))
    n = b + c
    if n == 0:
        return 1.0
    # Integer division of Python ints: exact for any n (a float 2.0**n overflows past n = 1023).
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n
    return float(min(1.0, 2.0 * tail))
