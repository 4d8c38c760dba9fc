"""Each loss against an independent NumPy reference and, where one exists, the Keras built-in."""

import math

import keras
import numpy as np
import pytest

from kd_keras import layers, losses

RNG = np.random.default_rng(0)
N, C = 16, 4


def _onehot(labels, classes=C):
    return np.eye(classes, dtype="float32")[labels]


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _ce(onehot, logits):
    return -(onehot * np.log(_softmax(logits))).sum(-1).mean()


LABELS = RNG.integers(0, C, N)
COSINES = RNG.uniform(-1, 1, (N, C)).astype("float32")
PROBS = _softmax(RNG.normal(size=(N, C))).astype("float32")
SCORES = RNG.normal(size=(N, C)).astype("float32") * 2


def test_am_softmax_matches_reference_for_sparse_and_onehot_labels():
    s, m = 30.0, 0.35
    onehot = _onehot(LABELS)
    expected = _ce(onehot, s * (COSINES - m * onehot))
    loss = losses.AMSoftmax(scale=s, margin=m)
    np.testing.assert_allclose(float(loss(onehot, COSINES)), expected, rtol=1e-5)
    np.testing.assert_allclose(float(loss(LABELS, COSINES)), expected, rtol=1e-5)


def test_cosine_loss_matches_reference_and_keras_cosine_similarity():
    y = SCORES
    expected = np.mean(1 - y[np.arange(N), LABELS] / np.linalg.norm(y, axis=1))
    got = float(losses.CosineLoss()(LABELS, y))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    keras_value = float(keras.losses.CosineSimilarity()(_onehot(LABELS), y))  # = -mean cos
    np.testing.assert_allclose(got, 1 + keras_value, rtol=1e-5)


@pytest.mark.parametrize("delta", [0.3, 1.0])
def test_huber_matches_reference_and_keras(delta):
    y_true, y_pred = _onehot(LABELS), SCORES
    a = np.abs(y_true - y_pred)
    expected = np.where(a <= delta, 0.5 * a**2, delta * (a - 0.5 * delta)).mean(-1).mean()
    got = float(losses.Huber(delta)(y_true, y_pred))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose(got, float(keras.losses.Huber(delta)(y_true, y_pred)), rtol=1e-5)


@pytest.mark.parametrize("signs", [False, True])
def test_binary_hinge_matches_reference_and_keras(signs):
    y01 = RNG.integers(0, 2, (N, 1)).astype("float32")
    y_true = 2 * y01 - 1 if signs else y01
    scores = SCORES[:, :1]
    expected = np.maximum(0, 1 - (2 * y01 - 1) * scores).mean()
    got = float(losses.Hinge()(y_true, scores))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose(got, float(keras.losses.Hinge()(y_true, scores)), rtol=1e-5)


def test_categorical_hinge_matches_reference_and_keras():
    onehot = _onehot(LABELS)
    pos = SCORES[np.arange(N), LABELS]
    neg = np.where(onehot > 0, -np.inf, SCORES).max(-1)
    expected = np.maximum(0, neg - pos + 1).mean()
    got = float(losses.CategoricalHinge()(LABELS, SCORES))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    positive_scores = np.abs(SCORES) + 0.1  # where Keras's max((1 - y) * s) is the same
    np.testing.assert_allclose(
        float(losses.CategoricalHinge()(LABELS, positive_scores)),
        float(keras.losses.CategoricalHinge()(onehot, positive_scores)),
        rtol=1e-5,
    )


def test_thesis_hinge_matches_the_formula_as_written():
    onehot = _onehot(LABELS)
    expected = np.maximum(0, 0.5 - onehot * SCORES).sum(-1).mean()  # Σ_j max(0, ½ − y_j ŷ_j)
    np.testing.assert_allclose(float(losses.ThesisHinge()(LABELS, SCORES)), expected, rtol=1e-5)


def test_cosine_loss_trains_a_linear_head_and_am_softmax_a_cosine_head():
    assert losses.get("cosine").head == "linear"
    assert losses.get("am-softmax").head == "cosine"
    assert losses.get("thesis-hinge").head == "linear"


@pytest.mark.parametrize("loss_cls, power", [(losses.L1Sigma, 1), (losses.L2Sigma, 2)])
def test_probability_distances_match_reference(loss_cls, power):
    expected = (np.abs(_onehot(LABELS) - PROBS) ** power).sum(-1).mean()
    np.testing.assert_allclose(float(loss_cls()(LABELS, PROBS)), expected, rtol=1e-5)


def _psi_reference(theta, m):
    k = min(int(theta * m / math.pi), m - 1)
    return (-1) ** k * math.cos(m * theta) - 2 * k


@pytest.mark.parametrize("margin", [1, 2, 4])
def test_lsoftmax_matches_reference(margin):
    norms = RNG.uniform(0.5, 3, (N, C)).astype("float32")
    y_pred = np.stack([COSINES, norms], axis=-1)
    logits = norms * COSINES
    for i, label in enumerate(LABELS):
        logits[i, label] = norms[i, label] * _psi_reference(math.acos(COSINES[i, label]), margin)
    expected = _ce(_onehot(LABELS), logits)
    np.testing.assert_allclose(float(losses.LSoftmax(margin)(LABELS, y_pred)), expected, rtol=1e-4)


def test_lsoftmax_psi_is_cos_m_theta_then_monotone_decreasing():
    theta = np.linspace(0, math.pi, 200).astype("float32")
    psi = np.asarray(losses.lsoftmax_psi(theta, 3.0))
    head = theta <= math.pi / 3
    np.testing.assert_allclose(psi[head], np.cos(3 * theta[head]), atol=1e-5)
    assert np.all(np.diff(psi) <= 1e-5)


def test_soft_target_bce_is_bce_at_t1_and_scaled_softened_bce_otherwise():
    p = RNG.uniform(0.01, 0.99, (N, 1)).astype("float32")
    q = RNG.uniform(0.01, 0.99, (N, 1)).astype("float32")
    bce = -(p * np.log(q) + (1 - p) * np.log(1 - q)).mean()
    np.testing.assert_allclose(float(losses.SoftTargetBCE()(p, q)), bce, rtol=1e-4)
    np.testing.assert_allclose(float(keras.losses.BinaryCrossentropy()(p, q)), bce, rtol=1e-4)
    t = 3.0
    logit = lambda x: np.log(x) - np.log1p(-x)  # noqa: E731
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    pt, qt = sig(logit(p) / t), sig(logit(q) / t)
    expected = -(pt * np.log(qt) + (1 - pt) * np.log(1 - qt)).mean() * t * t
    np.testing.assert_allclose(float(losses.SoftTargetBCE(t)(p, q)), expected, rtol=1e-4)
    from_logits = losses.SoftTargetBCE(t, from_logits=True)(p, logit(q))
    np.testing.assert_allclose(float(from_logits), expected, rtol=1e-4)


ALL_LOSSES = [
    (losses.AMSoftmax(20.0, 0.2), COSINES),
    (losses.CosineLoss(), SCORES),
    (losses.Huber(0.5), PROBS),
    (losses.CategoricalHinge(), SCORES),
    (losses.L1Sigma(), PROBS),
    (losses.L2Sigma(), PROBS),
    (losses.LSoftmax(3), np.stack([COSINES, np.abs(SCORES) + 0.1], -1)),
]


@pytest.mark.parametrize("loss, y_pred", ALL_LOSSES, ids=lambda v: getattr(v, "name", ""))
def test_serialization_round_trip_keeps_config_and_value(loss, y_pred):
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is type(loss)
    assert restored.get_config() == loss.get_config()
    np.testing.assert_allclose(float(restored(LABELS, y_pred)), float(loss(LABELS, y_pred)), rtol=1e-6)


def _autodiff_gradient(fn, x):
    """d fn / d x by the backend's own autodiff (TensorFlow's tape or jax.grad)."""
    if keras.backend.backend() == "jax":
        import jax

        return np.asarray(jax.grad(fn)(x))
    import tensorflow as tf

    variable = tf.Variable(x)
    with tf.GradientTape() as tape:
        value = fn(variable)
    return tape.gradient(value, variable).numpy()


@pytest.mark.parametrize("loss, y_pred", ALL_LOSSES, ids=lambda v: getattr(v, "name", ""))
def test_gradient_is_finite_and_matches_finite_differences(loss, y_pred):
    grad = _autodiff_gradient(lambda x: loss(LABELS, x), y_pred.astype("float32"))
    assert np.all(np.isfinite(grad)) and np.any(grad != 0)
    eps = 1e-3

    def slope(direction):  # central difference of the loss along ``direction``
        up, down = y_pred + eps * direction, y_pred - eps * direction
        return (float(loss(LABELS, up.astype("float32"))) - float(loss(LABELS, down.astype("float32")))) / (2 * eps)

    # The largest gradient entry, and a random direction through every entry: both far above the
    # float32 noise of the difference (below 1e-4 here), so the tolerance means something.
    index = np.unravel_index(np.argmax(np.abs(grad)), grad.shape)
    unit = np.zeros_like(y_pred)
    unit[index] = 1.0
    assert abs(grad[index]) > 5e-3
    np.testing.assert_allclose(grad[index], slope(unit), rtol=0.02)
    direction = np.random.default_rng(7).normal(size=y_pred.shape)
    np.testing.assert_allclose(np.sum(grad * direction), slope(direction), rtol=0.02)


def test_losses_compute_in_float32_under_mixed_precision_inputs():
    value = losses.AMSoftmax()(LABELS, COSINES.astype("float16"))
    assert value.dtype == "float32"


def test_get_maps_every_cli_name_to_its_loss_and_head():
    expected = {  # written out here, independently of the package's tables
        "softmax": (keras.losses.CategoricalCrossentropy, "softmax"), "cosine": (losses.CosineLoss, "linear"),
        "am-softmax": (losses.AMSoftmax, "cosine"), "hinge": (losses.CategoricalHinge, "linear"),
        "thesis-hinge": (losses.ThesisHinge, "linear"), "huber": (losses.Huber, "softmax"),
        "l1": (losses.L1Sigma, "softmax"), "l2": (losses.L2Sigma, "softmax"), "l-softmax": (losses.LSoftmax, "lsoftmax")}
    assert set(losses.NAMES) == set(expected)
    for name, (cls, head) in expected.items():
        spec = losses.get(name)
        assert type(spec.loss) is cls and spec.head == head, name
    with pytest.raises(ValueError, match="unknown loss"):
        losses.get("nope")


def test_cosine_dense_outputs_cosines():
    x = RNG.normal(size=(N, 8)).astype("float32")
    layer = layers.CosineDense(C)
    out = np.asarray(layer(x))
    w = layer.kernel.numpy()
    expected = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (w / np.linalg.norm(w, axis=0))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
