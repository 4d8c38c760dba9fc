"""Paper B's measures of a model on a set, for two classes or K, and an exact McNemar test.

Predictions ``p`` are NumPy arrays: for two classes one probability per image (shape ``(n,)``
or ``(n, 1)``, the paper's sigmoid), for K > 2 classes one row of K probabilities per image
(``(n, K)``, a softmax). Labels ``y`` are 0/1 for two classes and class indices (or one-hot
rows, or a teacher's probability rows) for K.

The K-class forms reduce to the paper's formulas at K = 2 (tested):

- accuracy: argmax agreement (formulas 11-12: both sides of 0.5);
- hard labels: ``onehot(argmax p)`` (formula 13);
- uncertainty: ``1/(2n) Σ ‖p_i − onehot(argmax p_i)‖²`` (formula 15: a sigmoid p is the
  two-class row (1 − p, p), whose squared distance to its own answer is 2 (p − y)²);
- histogram: of the top class's probability (for two classes, of p itself, as the paper).
"""

import math

import numpy as np

THRESHOLD = 0.5


def is_binary(p):
    """True for one probability per image (a sigmoid output), False for rows of K > 1 probabilities."""
    p = np.asarray(p)
    return p.ndim == 1 or p.shape[-1] == 1


def predicted_class(p, threshold=THRESHOLD):
    """The class each image is given: ``p > threshold`` for two classes, the argmax for K."""
    p = np.asarray(p)
    return (np.ravel(p) > threshold).astype("int64") if is_binary(p) else np.argmax(p, axis=-1)


def true_class(y, threshold=THRESHOLD):
    """Class indices from 0/1 labels, class indices, or rows (one-hot or probabilities)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[-1] > 1:
        return np.argmax(y, axis=-1)
    y = np.ravel(y)
    return (y > threshold).astype("int64") if y.dtype.kind == "f" and np.all(y <= 1) else y.astype("int64")


def correct(p, y, threshold=THRESHOLD):
    """Right or wrong per image (formulas 11-12 for two classes: both > th or both <= th)."""
    return predicted_class(p, threshold) == true_class(y, threshold)


def accuracy(p, y, threshold=THRESHOLD):
    """The share of images whose predicted class is their label (formulas 11-12 for two classes)."""
    return float(np.mean(correct(p, y, threshold)))


def binary_crossentropy(p, y, eps=1e-7):
    """Mean BCE ``-(y log p + (1 - y) log(1 - p))``, clipped as Keras clips it."""
    p, y = np.clip(np.ravel(p).astype("float64"), eps, 1 - eps), np.ravel(y).astype("float64")
    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))


def crossentropy(p, y, eps=1e-7):
    """Binary cross-entropy for two classes, ``-1/n Σ_i Σ_k y_ik log p_ik`` for K (y as one-hot or rows)."""
    if is_binary(p):
        return binary_crossentropy(p, y, eps)
    p = np.clip(np.asarray(p, "float64"), eps, 1.0)
    y = np.asarray(y)
    rows = y.astype("float64") if y.ndim == 2 else np.eye(p.shape[-1])[y.astype("int64")]
    return float(np.mean(-np.sum(rows * np.log(p), axis=-1)))


def hard_labels(p, threshold=THRESHOLD):
    """Formula 13: ``y = 1 if p > 0.5 else 0``; for K classes the one-hot row of the argmax."""
    if is_binary(p):
        return (np.ravel(p) > threshold).astype("float32")
    return np.eye(np.shape(p)[-1], dtype="float32")[np.argmax(p, axis=-1)]


def uncertainty(p, threshold=THRESHOLD):
    """Formula 15, the degree of uncertainty: ``(1/n) Σ (p_i - y_i)²``, y_i = p_i thresholded.

    For K classes, ``1/(2n) Σ ‖p_i − onehot(argmax p_i)‖²``, which is formula 15 at K = 2.
    """
    if is_binary(p):
        p = np.ravel(p).astype("float64")
        return float(np.mean((p - hard_labels(p, threshold)) ** 2))
    p = np.asarray(p, "float64")
    return float(np.mean(np.sum((p - hard_labels(p)) ** 2, axis=-1)) / 2)


def histogram(p, bins=20):
    """Relative frequencies in ``bins`` equal bins over [0, 1] (the last one closed) of p, or for K
    classes of the top class's probability."""
    values = np.ravel(p) if is_binary(p) else np.max(p, axis=-1)
    counts, _ = np.histogram(values, bins=bins, range=(0.0, 1.0))
    return (counts / max(len(values), 1)).tolist()


def summary(p, y):
    """Loss, accuracy, uncertainty and the 20-bin histogram of predictions ``p`` on labels ``y``."""
    return {"loss": crossentropy(p, y), "accuracy": accuracy(p, y),
            "uncertainty": uncertainty(p), "histogram": histogram(p), "n": int(len(np.asarray(p)))}


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
