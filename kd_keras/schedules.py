"""Learning-rate schedules."""

import keras


def legacy_decay(lr0, decay):
    """The old Keras optimizer argument ``decay=d``, which Keras 3 silently ignores.

    Paper B's formula 9: ``lr_t = lr_0 / (1 + d * t)``, t the optimizer iteration.
    Exactly ``InverseTimeDecay(lr_0, decay_steps=1, decay_rate=d)``. t counts batches, so the
    final rate depends on batches per epoch: the paper's teacher (547 batches x 25 epochs) ends at
    ``lr_0 / 137.8``, a 63-batch epoch at ``lr_0 / 16.8``.

    Args:
        lr0: the initial learning rate.
        decay: d >= 0; with 0 the rate stays ``lr0``.

    Examples:
        >>> optimizer = keras.optimizers.Adam(legacy_decay(1e-3, 0.01))   # the teacher's setting
        >>> round(float(legacy_decay(1e-3, 0.01)(100)), 6)   # after 100 batches: 1e-3 / (1 + 0.01 x 100)
        0.0005
    """
    if decay < 0:
        raise ValueError(f"decay must be >= 0, got {decay}")
    return keras.optimizers.schedules.InverseTimeDecay(lr0, decay_steps=1, decay_rate=decay)
