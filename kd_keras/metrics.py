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

Calibration, beyond the paper: the expected calibration error (top-label, 15 bins), the negative
log-likelihood (the cross-entropy) and the Brier score.
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


CALIBRATION_BINS = 15


def confidence(p):
    """The probability each image gives its predicted class: ``max(p, 1 − p)`` for a sigmoid, the top one for K."""
    p = np.asarray(p, "float64")
    return np.maximum(np.ravel(p), 1.0 - np.ravel(p)) if is_binary(p) else np.max(p, axis=-1)


def expected_calibration_error(p, y, bins=CALIBRATION_BINS):
    """Expected calibration error (Guo et al. 2017), top-label, in ``bins`` equal-width bins.

    ``ECE = Σ_b (n_b / n) |acc_b − conf_b|``: in each bin of the confidence (:func:`confidence`),
    the share of right answers against the mean confidence. Bin b holds confidences in
    ``(b / bins, (b + 1) / bins]`` (the first also 0). For two classes the confidence of a sigmoid's
    p is ``max(p, 1 − p)``, which lies in [0.5, 1]: the K = 2 case of the top-label ECE, so only the
    upper half of the bins fill. (The ECE of the positive class's probability, binned over [0, 1], is
    another measure.)

    Examples:
        >>> p, y = np.array([0.9, 0.8, 0.3, 0.6]), np.array([1, 1, 0, 0])  # confidences 0.9, 0.8, 0.7, 0.6
        >>> round(expected_calibration_error(p, y), 4)  # each alone in its bin: (0.1 + 0.2 + 0.3 + 0.6) / 4
        0.3
    """
    conf, right = confidence(p), correct(p, y).astype("float64")
    which = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            total += in_bin.mean() * abs(right[in_bin].mean() - conf[in_bin].mean())
    return float(total)


def brier_score(p, y):
    """The Brier score: ``1/n Σ (p_i − y_i)²`` for a sigmoid; ``1/n Σ_i Σ_k (p_ik − y_ik)²`` for K.

    For K classes ``y`` is one-hot (from class indices). The K-class form of a sigmoid's p, the row
    (1 − p, p), is twice the binary one: the binary form is the usual one for two classes.
    """
    if is_binary(p):
        return float(np.mean((np.ravel(p).astype("float64") - np.ravel(y).astype("float64")) ** 2))
    p = np.asarray(p, "float64")
    y = np.asarray(y)
    rows = y.astype("float64") if y.ndim == 2 else np.eye(p.shape[-1])[y.astype("int64")]
    return float(np.mean(np.sum((p - rows) ** 2, axis=-1)))


def summary(p, y):
    """Predictions ``p`` on labels ``y``: loss (the negative log-likelihood), accuracy, uncertainty,
    the 20-bin histogram, and calibration (ECE in 15 bins, NLL, Brier score)."""
    nll = crossentropy(p, y)
    return {"loss": nll, "accuracy": accuracy(p, y), "uncertainty": uncertainty(p), "histogram": histogram(p),
            "ece": expected_calibration_error(p, y), "nll": nll, "brier": brier_score(p, y),
            "n": int(len(np.asarray(p)))}


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
