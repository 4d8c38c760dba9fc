"""The README's loss examples run as written: every model they compile trains one step."""

import pytest
import os
import re

import keras
import numpy as np

pytestmark = pytest.mark.tensorflow  # see setup.cfg's markers

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")


def _python_block(first_line):
    blocks = re.findall(r"```python\n(.*?)```", open(README, encoding="utf-8").read(), re.S)
    return next(block for block in blocks if block.startswith(first_line))


def test_every_loss_example_in_the_readme_compiles_and_trains(monkeypatch):
    compiled = []
    original = keras.Model.compile

    def recording_compile(self, *args, **kwargs):
        original(self, *args, **kwargs)
        compiled.append(self)

    monkeypatch.setattr(keras.Model, "compile", recording_compile)
    exec(_python_block("import keras\nfrom kd_keras import layers, losses, models"), {})
    assert len(compiled) == 8
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 2048)).astype("float32")
    for model in compiled:
        classes = model.output_shape[1]
        y = rng.uniform(size=16).astype("float32") if classes == 1 else rng.integers(0, classes, 16)
        loss = model.fit(x, y, epochs=1, verbose=0).history["loss"][0]
        assert np.isfinite(loss), model.loss
