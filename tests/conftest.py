import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_HOME", os.path.join(os.path.dirname(__file__), "..", "runs", ".keras_home"))

from kd_keras import quiet  # noqa: E402

quiet.tensorflow_defaults()  # as the kd-keras command does: oneDNN on, TensorFlow's start-up quiet

import pathlib  # noqa: E402

import pytest  # noqa: E402

SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data():
    """The real datasets beside the checkout; tests using them skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA


def tiny_student(shape=(32, 32, 3), name="tiny_student"):
    """A few-layer CNN with batch norm and a sigmoid: fast to trace, for tests of training mechanics."""
    import keras

    inputs = keras.Input(shape)
    x = keras.layers.Conv2D(8, 3, strides=2, use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def pooled_model_file(path, units=1, size=32):
    """A one-layer model on the image's mean colour (a sigmoid, or a softmax over ``units``), saved to ``path``:
    a teacher or student file for tests whose subject is the runs around it, not the network."""
    import keras

    inputs = keras.Input((size, size, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    outputs = keras.layers.Dense(units, activation="sigmoid" if units == 1 else "softmax")(pooled)
    keras.Model(inputs, outputs).save(path)
    return str(path)


def run_cli(capsys, *argv):
    """``kd-keras ARGV`` in this process, as a user runs it: ``(exit code, stdout, stderr)``."""
    from kd_keras import cli

    try:
        cli.main([str(a) for a in argv])
        code = 0
    except SystemExit as exit_info:
        code = exit_info.code
    out, err = capsys.readouterr()
    return code, out, err
