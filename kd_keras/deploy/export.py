"""Deploy a student: export to TFLite (LiteRT), ONNX or a SavedModel, quantize, and score it.

The exported file sits in the run folder with ``<file>.json`` beside it: format,
quantization, input size, bytes, and the exported model's test accuracy and loss on the
run's own test split next to the Keras model's (the drop a deployer pays).

Runtimes are optional extras (``pip install kd_keras[deploy]``): LiteRT
(``ai-edge-litert``) for ``.tflite``, ``onnxruntime`` (and ``tf2onnx`` to write) for ``.onnx``.

Examples:
    >>> path = export_run("runs/cats_vs_dogs-cpu/seed0/student-soft", "onnx", "int8")
    >>> runner = load_runtime(path)
    >>> p = runner(images_in_unit_range)          # (n, 1) probabilities
"""

import logging
import os
import tempfile

import numpy as np

from kd_keras import layers, metrics  # noqa: F401  (layers: a teacher's ColorAffine loads)
from kd_keras.replay import layout, run_files
from kd_keras.errors import UserError

_log = logging.getLogger(__name__)

FORMATS = ("tflite", "onnx", "saved_model")
QUANTIZATIONS = {"tflite": ("none", "float16", "dynamic", "int8"), "onnx": ("none", "dynamic", "int8"),
                 "saved_model": ("none",)}
EXTENSIONS = {"tflite": ".tflite", "onnx": ".onnx", "saved_model": ""}
_EXTRAS = {"tflite": ("ai_edge_litert", "ai-edge-litert"), "onnx": ("onnxruntime", "onnxruntime tf2onnx")}


def _require(fmt, writing=True):
    """Imports the runtime of ``fmt`` (and, to write ONNX, tf2onnx) or names what to install."""
    if fmt not in _EXTRAS:
        return
    module, packages = _EXTRAS[fmt]
    try:
        __import__(module)
        if fmt == "onnx" and writing:
            __import__("tf2onnx")
    except ImportError:
        raise UserError(f"{fmt} export needs {packages}: pip install 'kd_keras[deploy]'") from None


def check_choice(fmt, quantize):
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    if quantize not in QUANTIZATIONS[fmt]:
        raise UserError(f"{fmt} takes --quantize {' | '.join(QUANTIZATIONS[fmt])}, not {quantize!r}")


def _saved_model(model, folder):
    model.export(folder, format="tf_saved_model", verbose=False)
    return folder


def to_tflite(model, path, quantize="none", calibration=None):
    """Writes ``model`` as a ``.tflite`` file; ``int8`` calibrates on ``calibration`` ([0, 1] images)."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as folder:
        converter = tf.lite.TFLiteConverter.from_saved_model(_saved_model(model, folder))
        if quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantize == "int8":
            converter.representative_dataset = lambda: ([image[None]] for image in calibration)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        from kd_keras.quiet import native_stderr_silenced

        with native_stderr_silenced():  # the converter's native "fully_quantize: 0, ..." lines
            blob = converter.convert()
    with open(path, "wb") as f:
        f.write(blob)
    return path


class _Calibration:
    """onnxruntime's CalibrationDataReader over [0, 1] images, one at a time."""

    def __init__(self, name, images):
        self.name, self.images, self.i = name, images, 0

    def get_next(self):
        if self.i >= len(self.images):
            return None
        self.i += 1
        return {self.name: self.images[self.i - 1][None]}

    def rewind(self):
        self.i = 0


def to_onnx(model, path, quantize="none", calibration=None):
    """Writes ``model`` as ``.onnx``; ``int8`` is static QDQ, per channel, calibrated on ``calibration``."""
    model(np.zeros((1, *model.input_shape[1:]), "float32"))  # the ONNX export needs a called model
    if quantize == "none":
        model.export(path, format="onnx", verbose=False)
        return path
    from onnxruntime import quantization as q

    root = logging.getLogger()  # onnxruntime's "consider pre-processing" advice, twice per call, goes to it
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory() as folder:
            plain = os.path.join(folder, "plain.onnx")
            model.export(plain, format="onnx", verbose=False)
            if quantize == "dynamic":
                q.quantize_dynamic(plain, path, weight_type=q.QuantType.QInt8)
            else:
                import onnxruntime

                name = onnxruntime.InferenceSession(plain, providers=["CPUExecutionProvider"]).get_inputs()[0].name
                q.quantize_static(plain, path, _Calibration(name, calibration), quant_format=q.QuantFormat.QDQ,
                                  per_channel=True, activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8)
    finally:
        root.setLevel(level)  # the caller's logging as it was
    return path


def export_model(model, path, fmt, quantize="none", calibration=None):
    """Writes ``model`` in ``fmt`` (``tflite``, ``onnx``, ``saved_model``) with ``quantize``."""
    check_choice(fmt, quantize)
    _require(fmt)
    if quantize == "int8" and (calibration is None or not len(calibration)):
        raise UserError("int8 quantization needs calibration images")
    if fmt == "tflite":
        return to_tflite(model, path, quantize, calibration)
    if fmt == "onnx":
        return to_onnx(model, path, quantize, calibration)
    return _saved_model(model, path)


def load_runtime(path, threads=None):
    """A function ``[0, 1] images (n, h, w, 3) -> predictions (n, k)`` running ``path`` in its runtime."""
    if path.endswith(".tflite"):
        _require("tflite", writing=False)
        from ai_edge_litert.interpreter import Interpreter

        from kd_keras.quiet import native_stderr_silenced

        with native_stderr_silenced():  # "Created TensorFlow Lite XNNPACK delegate"
            interpreter = Interpreter(model_path=path, num_threads=threads)
            interpreter.allocate_tensors()
        inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

        def run_tflite(images):
            results = []
            for image in images:
                interpreter.set_tensor(inp["index"], image[None].astype(inp["dtype"]))
                interpreter.invoke()
                results.append(interpreter.get_tensor(out["index"])[0])
            return np.stack(results)

        return run_tflite
    if path.endswith(".onnx"):
        _require("onnx", writing=False)
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda images: np.concatenate([session.run(None, {name: image[None].astype("float32")})[0]
                                              for image in images])
    import tensorflow as tf

    serve = tf.saved_model.load(path).serve
    return lambda images: np.concatenate([serve(tf.constant(image[None], tf.float32)).numpy() for image in images])


def _test_images(run_dir, size, cache_dir):
    from kd_keras import data, input_pipeline

    dataset = data.Dataset.load(os.path.join(run_dir, "split.json"))
    out = {}
    for split in ("train", "test"):
        images, labels, _, _ = input_pipeline.cached_images(dataset.splits[split], size, cache_dir, split,
                                                            log=lambda *_: None)
        out[split] = (images.astype("float32") / 255.0, labels)  # 0/1, or class indices for K
    return out


def export_run(run_dir, fmt="tflite", quantize="none", out=None, calibration_images=200, seed=0,
               cache_dir=None, image_size=None, log=None):
    """Exports a run's best model, scores it on the run's test split, writes ``<file>.json``.

    Args:
        run_dir: a finished student (or teacher) run folder with ``model.keras``.
        fmt: ``tflite``, ``onnx`` or ``saved_model``.
        quantize: ``none``, ``float16`` (tflite), ``dynamic`` or ``int8``.
        out: the exported file; ``<run_dir>/model[-<quantize>].<ext>`` by default.
        calibration_images: training images (seeded choice) that calibrate int8.
        image_size: export at another input size with the same weights (a ResNet-18 student is
            fully convolutional), e.g. 224 to time it at the paper's size; scored at that size.

    Returns:
        The exported file's path.
    """
    import keras

    check_choice(fmt, quantize)
    _require(fmt)
    if not run_files.is_complete(run_dir):
        raise UserError(f"{run_dir} is not a finished run (no metrics.json)")
    model = keras.models.load_model(os.path.join(run_dir, "model.keras"))
    if image_size and image_size != model.input_shape[1]:
        from kd_keras import models

        if model.name != "resnet18":
            raise UserError(f"--image-size works for ResNet-18 students; {run_dir} holds {model.name}")
        model = models.resized_resnet18(model, image_size)
    size = model.input_shape[1]
    cache_dir = cache_dir or layout.cache_folder(os.path.dirname(os.path.dirname(os.path.dirname(run_dir))))
    images = _test_images(run_dir, size, cache_dir)
    rng = np.random.default_rng(seed)
    train_x = images["train"][0]
    calibration = train_x[rng.choice(len(train_x), min(calibration_images, len(train_x)), replace=False)]
    suffix = ("" if quantize == "none" else f"-{quantize}") + (f"-{size}px" if image_size else "")
    out = out or os.path.join(run_dir, f"model{suffix}{EXTENSIONS[fmt]}")
    log = log or _log.info
    log(f"exporting {run_dir} as {fmt} ({quantize}) to {out}")
    export_model(model, out, fmt, quantize, calibration)
    test_x, test_y = images["test"]
    log(f"scoring the exported model on {len(test_x)} test images")
    exported = _one_row_per_image(load_runtime(out)(test_x))
    keras_p = _one_row_per_image(model.predict(test_x, batch_size=64, verbose=0))
    result = {"format": fmt, "quantization": quantize, "image_size": size, "file": os.path.basename(out),
              "bytes": _size(out), "calibration_images": len(calibration) if quantize == "int8" else 0,
              "test_accuracy": metrics.accuracy(exported, test_y), "test_loss": metrics.crossentropy(exported, test_y),
              "keras_test_accuracy": metrics.accuracy(keras_p, test_y),
              "keras_test_loss": metrics.crossentropy(keras_p, test_y),
              "agreement_with_keras": float(np.mean(metrics.predicted_class(exported) == metrics.predicted_class(keras_p))),
              "n_test": len(test_y)}
    result["accuracy_drop"] = result["keras_test_accuracy"] - result["test_accuracy"]
    run_files.write_json(out.rstrip("/") + ".json", result)
    return out


def _one_row_per_image(p):
    """A sigmoid's probabilities as a vector, a softmax's as rows of K."""
    p = np.asarray(p)
    return p.reshape(-1) if p.shape[-1] == 1 else p.reshape(len(p), -1)


def _size(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)
    return os.path.getsize(path)
