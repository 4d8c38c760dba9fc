"""Process-wide training settings: determinism, distribution, mixed precision, compile cache.

The backend is Keras's (``KERAS_BACKEND``: ``tensorflow`` by default, ``jax`` on the GPU
machine). What needs TensorFlow (``tf.distribute``, op determinism, thread counts) is
imported here only on that backend; on another, a setting it cannot honour is one
:class:`~kd_keras.errors.UserError` line.
"""

import logging
import os

from kd_keras.errors import UserError

# The choices, importable without Keras (the command line offers them before anything loads).
STRATEGIES = ("default", "mirrored", "multiworker")
PRECISIONS = ("off", "float16", "bfloat16")


def backend():
    """Keras's backend: ``"tensorflow"``, ``"jax"`` or ``"torch"``."""
    import keras

    return keras.backend.backend()


def require_tensorflow(what):
    """A one-line error when ``what`` needs the TensorFlow backend and another one runs."""
    if backend() != "tensorflow":
        raise UserError(f"{what} needs TensorFlow; this process runs Keras on {backend()} "
                        f"(set KERAS_BACKEND=tensorflow where TensorFlow is installed)")


def configure(deterministic=False, strategy="default", mixed_precision="off", compile_cache=None):
    """Applies the settings and returns a ``tf.distribute`` strategy, or None.

    Args:
        deterministic: op determinism (TensorFlow's, or XLA's deterministic GPU ops on JAX);
            with the per-run seeds, two runs with the same seed give identical results on CPU.
        strategy: ``"default"``; ``"mirrored"``: every local GPU (or the CPU devices), by
            ``tf.distribute.MirroredStrategy`` on TensorFlow and ``keras.distribution.DataParallel``
            on JAX; ``"multiworker"``: machines named in ``TF_CONFIG`` (TensorFlow only).
        mixed_precision: ``"off"``, ``"float16"`` or ``"bfloat16"``; the networks' outputs
            and every loss stay float32.
        compile_cache: on JAX, a folder that keeps compiled XLA programs, so that each new
            student of the same shape (and each resumed slice) skips the compilation.
    """
    if mixed_precision not in PRECISIONS:
        raise UserError(f"unknown mixed precision {mixed_precision!r}; use {', '.join(PRECISIONS)}")
    if strategy not in STRATEGIES and strategy is not None:
        raise UserError(f"unknown strategy {strategy!r}; use {', '.join(STRATEGIES)}")
    import keras

    keras.mixed_precision.set_global_policy("float32" if mixed_precision == "off" else f"mixed_{mixed_precision}")
    if backend() == "jax":
        return _configure_jax(deterministic, strategy, compile_cache)
    if backend() != "tensorflow":
        if strategy not in ("default", None) or deterministic:
            require_tensorflow(f"--strategy {strategy} and --deterministic")
        return None
    import tensorflow as tf

    _hide_retracing_warnings()
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    if strategy == "mirrored":  # every GPU; without GPUs, every logical CPU device
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy([d.name for d in gpus or tf.config.list_logical_devices("CPU")])
    if strategy == "multiworker":
        return _reduce_nests(tf.distribute.MultiWorkerMirroredStrategy())
    return None


def _configure_jax(deterministic, strategy, compile_cache):
    import jax
    import keras

    if strategy == "multiworker":
        require_tensorflow("--strategy multiworker (tf.distribute)")
    if deterministic:  # read when XLA compiles, so it also holds if JAX has started
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_gpu_deterministic_ops" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} --xla_gpu_deterministic_ops=true".strip()
    if compile_cache:
        jax.config.update("jax_compilation_cache_dir", os.path.abspath(compile_cache))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    if strategy == "mirrored":
        keras.distribution.set_distribution(keras.distribution.DataParallel())
    return None


def _reduce_nests(strategy):
    """Works around two bugs of Keras 3's ``fit`` under ``MultiWorkerMirroredStrategy``.

    ``fit`` reduces the first (nested) input batch to build the model, but this
    strategy's ``reduce`` takes a single value ("Attempt to convert a value
    (PerReplica...)", keras-team/keras#20585); and it averages the scalar logs with
    ``axis=0``, which a scalar does not have. Here ``reduce`` maps over nests, as
    ``MirroredStrategy``'s does, and averages scalars over the replicas alone. Its
    collectives take no uint8 (the images kd_keras feeds): those are widened to int32.
    """
    import tensorflow as tf

    reduce_one = strategy.reduce
    narrow = (tf.uint8, tf.int8, tf.uint16, tf.int16, tf.bool)

    def one(reduce_op, v, axis):
        local = strategy.experimental_local_results(v)[0]
        if local.dtype in narrow:
            v = strategy.run(lambda t: tf.cast(t, tf.int32), args=(v,))
        return reduce_one(reduce_op, v, axis if axis is None or local.shape.rank else None)

    def reduce(reduce_op, value, axis=None):
        return tf.nest.map_structure(lambda v: one(reduce_op, v, axis), value)

    strategy.reduce = reduce
    return strategy


def cpu_only(threads=None):
    """Hides every GPU and sets the CPU thread count; call before the backend runs any op.

    The paper's latencies are CPU numbers (a 2-core i7-7500U): ``kd-keras bench`` calls this
    so a machine with a GPU still measures what the tables say.
    """
    if threads is not None and threads < 1:
        raise UserError(f"--threads must be >= 1, got {threads}")
    if backend() == "jax":
        import jax

        if threads:
            require_tensorflow("--threads")
        try:
            jax.config.update("jax_platforms", "cpu")
        except RuntimeError as exc:  # JAX has already started its backends
            raise UserError(f"cannot hide GPUs once JAX has run: {exc}") from None
        return
    if backend() != "tensorflow":
        return
    import tensorflow as tf

    try:
        if tf.config.list_physical_devices("GPU"):
            tf.config.set_visible_devices([], "GPU")
        if threads and tf.config.threading.get_intra_op_parallelism_threads() != threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError as exc:  # TensorFlow already ran an op in this process
        raise UserError(f"cannot hide GPUs or set threads once TensorFlow has run: {exc}") from None


def device_kind():
    """``"GPU"`` when the backend computes on one, else ``"CPU"``."""
    if backend() == "jax":
        import jax

        return "GPU" if jax.default_backend() == "gpu" else "CPU"
    if backend() == "tensorflow":
        import tensorflow as tf

        return "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    import torch

    return "GPU" if torch.cuda.is_available() else "CPU"


def cpu_threads():
    """The threads the backend computes with on the CPU (all cores unless set)."""
    if backend() == "tensorflow":
        import tensorflow as tf

        return tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    return os.cpu_count()


class _RetracingFilter(logging.Filter):
    def filter(self, record):
        return "triggered tf.function retracing" not in record.getMessage()


def _hide_retracing_warnings():
    """Every new student and generation traces its own predict function, by design; TensorFlow
    counts those as retracing and warns after five. Other TensorFlow warnings still show."""
    import tensorflow as tf

    logger = tf.get_logger()
    if not any(isinstance(f, _RetracingFilter) for f in logger.filters):
        logger.addFilter(_RetracingFilter())
