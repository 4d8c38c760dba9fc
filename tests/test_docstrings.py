"""The library's docstring examples run as written (doctest), in a fresh folder."""

import doctest
import importlib
import logging
import pkgutil

import pytest

import kd_keras

LIBRARY = sorted(m.name for m in pkgutil.iter_modules(kd_keras.__path__) if not m.ispkg)


def test_the_library_is_every_top_level_module():
    assert {"distill", "losses", "layers", "models", "backbones", "input_pipeline", "data", "metrics"} <= set(LIBRARY)


@pytest.fixture
def fresh_python_logging():
    """Logging as in a fresh Python: the kd-keras command (run by other tests) makes progress print."""
    logger = logging.getLogger("kd_keras")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


@pytest.mark.parametrize("name", ["__init__", *LIBRARY])
def test_docstring_examples_run(name, tmp_path, monkeypatch, fresh_python_logging):
    monkeypatch.chdir(tmp_path)  # the examples write into runs/ and the working folder
    module = kd_keras if name == "__init__" else importlib.import_module(f"kd_keras.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in kd_keras.{name} failed (above)"
