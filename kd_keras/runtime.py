"""Process-wide training settings: determinism, distribution strategy, mixed precision."""

import logging

import keras
import tensorflow as tf

from kd_keras.errors import UserError


def configure(deterministic=False, strategy="default", mixed_precision="off"):
    """Applies the settings and returns the ``tf.distribute`` strategy (None for the default).

    Args:
        deterministic: TensorFlow op determinism; with the per-run seeds, two runs with the
            same seed give identical results on CPU.
        strategy: ``"default"``, ``"mirrored"`` (all local GPUs, or CPU devices) or
            ``"multiworker"`` (machines named in ``TF_CONFIG``).
        mixed_precision: ``"off"``, ``"float16"`` or ``"bfloat16"``; the networks' outputs
            and every loss stay float32.
    """
    _hide_retracing_warnings()
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    if mixed_precision not in ("off", "float16", "bfloat16"):
        raise UserError(f"unknown mixed precision {mixed_precision!r}; use off, float16 or bfloat16")
    keras.mixed_precision.set_global_policy("float32" if mixed_precision == "off" else f"mixed_{mixed_precision}")
    if strategy == "mirrored":  # every GPU; without GPUs, every logical CPU device
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy([d.name for d in gpus or tf.config.list_logical_devices("CPU")])
    if strategy == "multiworker":
        return _reduce_nests(tf.distribute.MultiWorkerMirroredStrategy())
    if strategy not in ("default", None):
        raise UserError(f"unknown strategy {strategy!r}; use default, mirrored or multiworker")
    return None


def _reduce_nests(strategy):
    """Works around two bugs of Keras 3's ``fit`` under ``MultiWorkerMirroredStrategy``.

    ``fit`` reduces the first (nested) input batch to build the model, but this
    strategy's ``reduce`` takes a single value ("Attempt to convert a value
    (PerReplica...)", keras-team/keras#20585); and it averages the scalar logs with
    ``axis=0``, which a scalar does not have. Here ``reduce`` maps over nests, as
    ``MirroredStrategy``'s does, and averages scalars over the replicas alone.
    """
    reduce_one = strategy.reduce

    def rank(value):
        return strategy.experimental_local_results(value)[0].shape.rank

    def reduce(reduce_op, value, axis=None):
        return tf.nest.map_structure(
            lambda v: reduce_one(reduce_op, v, axis if axis is None or rank(v) else None), value)

    strategy.reduce = reduce
    return strategy


def cpu_only(threads=None):
    """Hides every GPU and sets the CPU thread count; call before TensorFlow runs any op.

    The paper's latencies are CPU numbers (a 2-core i7-7500U): ``kd-keras bench`` calls this
    so a machine with a GPU still measures what the tables say.
    """
    if threads is not None and threads < 1:
        raise UserError(f"--threads must be >= 1, got {threads}")
    try:
        if tf.config.list_physical_devices("GPU"):
            tf.config.set_visible_devices([], "GPU")
        if threads and tf.config.threading.get_intra_op_parallelism_threads() != threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError as exc:  # TensorFlow already ran an op in this process
        raise UserError(f"cannot hide GPUs or set threads once TensorFlow has run: {exc}") from None


class _RetracingFilter(logging.Filter):
    def filter(self, record):
        return "triggered tf.function retracing" not in record.getMessage()


def _hide_retracing_warnings():
    """Every new student and generation traces its own predict function, by design; TensorFlow
    counts those as retracing and warns after five. Other TensorFlow warnings still show."""
    logger = tf.get_logger()
    if not any(isinstance(f, _RetracingFilter) for f in logger.filters):
        logger.addFilter(_RetracingFilter())
