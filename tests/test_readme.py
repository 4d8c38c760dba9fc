"""The README's and the guides' Python examples run as written."""

import os
import re

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.tensorflow  # see setup.cfg's markers

ROOT = os.path.join(os.path.dirname(__file__), os.pardir)
README = os.path.join(ROOT, "README.md")
LIBRARY_GUIDE = os.path.join(ROOT, "docs", "guides", "library.md")


def _python_block(path, first_line):
    blocks = re.findall(r"```python\n(.*?)```", open(path, encoding="utf-8").read(), re.S)
    return next(block for block in blocks if block.startswith(first_line))


def test_every_loss_example_in_the_library_guide_compiles_and_trains(monkeypatch):
    compiled = []
    original = keras.Model.compile

    def recording_compile(self, *args, **kwargs):
        original(self, *args, **kwargs)
        compiled.append(self)

    monkeypatch.setattr(keras.Model, "compile", recording_compile)
    exec(_python_block(LIBRARY_GUIDE, "import keras\nfrom kd_keras import layers, losses, models"), {})
    assert len(compiled) == 8
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 2048)).astype("float32")
    for model in compiled:
        classes = model.output_shape[1]
        y = rng.uniform(size=16).astype("float32") if classes == 1 else rng.integers(0, classes, 16)
        loss = model.fit(x, y, epochs=1, verbose=0).history["loss"][0]
        assert np.isfinite(loss), model.loss


def test_the_readmes_distillation_example_trains_and_saves_a_student(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = _python_block(README, "import keras\nimport kd_keras")
    small = code.replace('"synthetic"', '"synthetic:2:14"')  # the same code on fewer images
    assert small != code
    names = {}
    exec(small, names)
    student = keras.models.load_model(tmp_path / "student.keras")
    assert student.input_shape == (None, 32, 32, 3) and student.output_shape == (None, 1)
    assert names["targets"]["teacher"].shape == names["y"].shape  # one soft target per training image


def test_the_tutorials_script_distils_a_folder(tmp_path, monkeypatch, capsys):
    import importlib.util

    monkeypatch.chdir(tmp_path)
    spec = importlib.util.spec_from_file_location("distil_a_folder", os.path.join(ROOT, "docs", "examples",
                                                                                 "distil_a_folder.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    student = script.main(["synthetic:2:14", "--teacher-epochs", "1", "--student-epochs", "1", "--cache",
                           str(tmp_path / "cache")])
    out = capsys.readouterr().out
    assert "teacher: test accuracy" in out and "student: test accuracy" in out
    assert student.output_shape == (None, 1) and (tmp_path / "student.keras").exists()
