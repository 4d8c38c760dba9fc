import keras
import numpy as np
import pytest

from kd_keras.schedules import legacy_decay

pytestmark = pytest.mark.tensorflow  # see setup.cfg's markers


@pytest.mark.parametrize("step", [0, 1, 100, 10_000])
def test_adam_applies_lr0_over_one_plus_decay_times_step(step):
    """One Adam update at iteration ``step`` equals a NumPy Adam step with lr_t = lr0/(1 + d t)."""
    lr0, decay = 1e-3, 0.01
    optimizer = keras.optimizers.Adam(legacy_decay(lr0, decay), beta_1=0.9, beta_2=0.999, epsilon=1e-7)
    var = keras.Variable(np.array([1.0, -2.0], "float32"))
    grad = np.array([0.5, -0.25], "float32")
    optimizer.build([var])
    optimizer.iterations.assign(step)
    optimizer.apply_gradients([(keras.ops.convert_to_tensor(grad), var)])

    lr_t = lr0 / (1 + decay * step)
    t = step + 1  # Adam's bias correction counts the update being made
    m = (1 - 0.9) * grad / (1 - 0.9**t)
    v = (1 - 0.999) * grad**2 / (1 - 0.999**t)
    expected = np.array([1.0, -2.0]) - lr_t * m / (np.sqrt(v) + 1e-7)
    np.testing.assert_allclose(var.numpy(), expected, rtol=1e-6)


def test_negative_decay_is_rejected():
    with pytest.raises(ValueError):
        legacy_decay(1e-3, -1)
