"""Only our own lines on stderr: TensorFlow's native start-up chatter and foreign warnings go.

TensorFlow's C++ code writes its start-up lines (``All log messages before
absl::InitializeLog()``, the oneDNN notice, ``Could not find cuda drivers``, a failed
``cuInit``) straight to file descriptor 2 while it is imported and while it lists its
devices; ``TF_CPP_MIN_LOG_LEVEL`` does not reach all of them. :func:`install` hooks the
import of ``tensorflow`` so that both happen with fd 2 pointed at ``/dev/null``, restored
at once; an import that fails still raises its exception with its message.
:func:`tensorflow_defaults` sets that up with TensorFlow's CPU defaults; a program calls it
(``kd-keras`` does, in its ``main``): importing this module changes nothing.
"""

import contextlib
import importlib.abc
import importlib.util
import os
import sys
import warnings

# Foreign Python warnings that say nothing to our users.
_FOREIGN_WARNINGS = (
    r".*`shuffle=True` was passed, but will be ignored.*",
    r".*tf\.lite\.Interpreter is deprecated.*",
    r".*Skipping nested container.*",
    r".*Your input ran out of data.*",
    r".*In the future `np\.object` will be defined.*",
)


@contextlib.contextmanager
def native_stderr_silenced():
    """Points file descriptor 2 at /dev/null inside the block (Python's own stderr included)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` like the normal finders, then executes it with fd 2 silenced."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: the normal finders do the finding
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            with native_stderr_silenced():
                execute(module)
                module.config.list_physical_devices()  # the device probe prints too
            silence_foreign_warnings()

        spec.loader.exec_module = exec_module
        return spec


def silence_foreign_warnings():
    for message in _FOREIGN_WARNINGS:
        warnings.filterwarnings("ignore", message=message)


def tensorflow_defaults():
    """What a program sets before TensorFlow loads, unless its user set it: quiet and fast on CPUs.

    - ``TF_ENABLE_ONEDNN_OPTS=1``: TensorFlow leaves oneDNN off on non-Intel CPUs; on the
      2-core AMD machines measured (``benchmarks/training_speed.py``) it made ResNet-18 training
      4.6-6x faster;
    - ``TF_CPP_MIN_LOG_LEVEL=2``: TensorFlow's C++ start-up chatter;
    - :func:`install`: the lines that variable does not reach.

    The ``kd-keras`` command calls it first thing in its ``main``; a script of yours may call it
    before it imports Keras. Importing kd_keras calls nothing.
    """
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    install()


def install():
    """Makes the process's first ``import tensorflow`` quiet; a no-op once TensorFlow is loaded."""
    silence_foreign_warnings()
    if "tensorflow" in sys.modules or any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietTensorFlowImport())
