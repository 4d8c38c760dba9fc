"""Per-image CPU latency of teacher and student (paper B, section 4.1).

The paper timed the 3,750 test images one by one on a 2-core i7-7500U, including loading
and preprocessing: ResNet-18 0.07168 s, ResNet-50 0.35452 s per image (4.95x). Here
each network is timed at batch size 1 after a warm-up, model-only and with
load-and-preprocess, in the same process, so the ratio compares like with like.
"""

import logging
import time

import keras
import numpy as np

from kd_keras import input_pipeline, models, runtime

_log = logging.getLogger(__name__)

WARMUP = 3


def _timed(fn, inputs):
    for x in inputs[:WARMUP]:
        fn(x)
    seconds = []
    for x in inputs:
        start = time.perf_counter()
        fn(x)
        seconds.append(time.perf_counter() - start)
    return np.asarray(seconds)


def compiled_inference(model):
    """``x -> model(x, training=False)`` as a NumPy array, compiled by the backend, at batch size 1."""
    if runtime.backend() == "tensorflow":
        import tensorflow as tf

        infer = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        return lambda x: infer(tf.constant(x)).numpy()
    if runtime.backend() == "jax":
        import jax

        state = ([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables])
        infer = jax.jit(lambda t, n, x: model.stateless_call(t, n, x, training=False)[0])
        return lambda x: np.asarray(infer(*state, x))
    return lambda x: keras.ops.convert_to_numpy(model(x, training=False))


def model_latency(model, images):
    """Seconds per image of ``model`` on single images (uint8, already resized), one per image."""
    infer = compiled_inference(model)
    return _timed(infer, [image[None].astype("float32") / 255.0 for image in images])


def end_to_end_latency(model, paths, size):
    """Seconds per image including reading, decoding, nearest resize and /255, one per image."""
    infer = compiled_inference(model)
    if runtime.backend() == "tensorflow":  # TensorFlow's decoder, as in training
        def decode(path):
            return input_pipeline._decode_with_tensorflow(path, size).numpy()
    else:
        def decode(path):
            return input_pipeline.decode_file(path, size)

    return _timed(lambda path: infer(decode(path)[None].astype("float32") / 255.0), list(paths))


def exported_latency(run, images):
    """Seconds per image of an exported model, ``run(batch)`` in its runtime (:func:`kd_keras.deploy.export.load_runtime`)."""
    return _timed(run, [image[None].astype("float32") / 255.0 for image in images])


def cpu_model():
    """The processor's name from /proc/cpuinfo (Linux), or the platform's."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def benchmark(paths, size=224, teacher_backbone="resnet50", log=None, student=None, exported=None):
    """Times the paper's pair, ResNet-50 teacher and ResNet-18 student, on the same images.

    Latency does not depend on the weights, so both networks are timed with random ones.
    When the run's teacher has another backbone (EfficientNet-Lite0 in the ``cpu``
    preset) it is timed too, as ``teacher_<backbone>_ms``.

    Args:
        paths: image files (the test split); each is timed once per network and mode.
        size: input side (224 in the paper).
        teacher_backbone: the backbone of the run's teacher.
        student: a trained student (a Keras model of input ``size``) to time instead of a fresh ResNet-18.
        exported: ``(file name, run)``: an exported student and the function that runs it in its runtime
            (:func:`kd_keras.deploy.export.load_runtime`), timed as ``exported_ms`` on the same images.

    Returns:
        A dict with ``teacher_ms``, ``student_ms``, ``speedup`` (model only), the same with
        ``_end_to_end`` (load and preprocess included, as the paper), the setting (device,
        CPU model and thread count) and ``per_image_ms[mode][network]``: every image's
        milliseconds, in the order of ``paths``, for intervals over images.
    """
    log = log or _log.info
    images, _, _ = input_pipeline.decode_images(list(paths), size, "timing images", log)
    shape = (size, size, 3)
    networks = {"teacher": models.teacher(None, True, shape), "student": student or models.resnet18(shape)}
    extra = models.canonical_name(teacher_backbone)
    if extra != "resnet50":
        networks[f"teacher_{extra}"] = models.teacher(None, True, shape, backbone_name=extra)
    result = {"images": len(images), "size": size, "batch_size": 1, "weights": "random (latency does not depend on them)"}
    per_image = {"model": {}, "end_to_end": {}}
    for name, model in networks.items():
        log(f"timing {name} on {len(images)} images")
        per_image["model"][name] = 1000 * model_latency(model, images)
        per_image["end_to_end"][name] = 1000 * end_to_end_latency(model, paths[: len(images)], size)
        result[f"{name}_ms"] = float(np.mean(per_image["model"][name]))
        result[f"{name}_ms_end_to_end"] = float(np.mean(per_image["end_to_end"][name]))
    result["speedup"] = result["teacher_ms"] / result["student_ms"]
    result["speedup_end_to_end"] = result["teacher_ms_end_to_end"] / result["student_ms_end_to_end"]
    if exported:
        name, run = exported
        log(f"timing {name} on {len(images)} images")
        result["exported"] = name
        per_image["model"]["exported"] = 1000 * exported_latency(run, images)
        result["exported_ms"] = float(np.mean(per_image["model"]["exported"]))
        result["exported_speedup"] = result["teacher_ms"] / result["exported_ms"]
    result["device"] = runtime.device_kind()
    result["backend"] = runtime.backend()
    result["cpu_model"] = cpu_model()
    result["cpu_threads"] = runtime.cpu_threads()
    result["per_image_ms"] = {mode: {k: [round(float(v), 4) for v in ms] for k, ms in by.items()}
                              for mode, by in per_image.items()}
    return result
