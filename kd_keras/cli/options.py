"""The options the training commands share, their choices read from the registries, and the
:class:`~kd_keras.replay.experiment.Experiment` they make.

Choices come from where each list is kept (the presets, the losses' heads, the Distiller's
modes, the runtime's strategies and precisions), so the help cannot drift from the code. Every
value that needs no TensorFlow is checked before anything loads it: a wrong value is answered
at once.
"""

import os
import sys
import time

import click

from kd_keras.errors import UserError
from kd_keras.loss_heads import LOSS_HEADS
from kd_keras.replay import layout, presets
from kd_keras.runtime import PRECISIONS, STRATEGIES

PRESET_NAMES = tuple(presets.PRESETS)
LOSS_NAMES = tuple(LOSS_HEADS)
DATA_HELP = "image folder, Kaggle layout, a pack, 'synthetic[:CLASSES[:N]]' or 'tfds:cats_vs_dogs'"


def _seeds(ctx, param, value):
    return [int(v) for v in value] if value else [0]


def _apply(f, options):
    for option in reversed(options):
        f = option(f)
    return f


def preset_option(f):
    """``--preset`` and the repeatable ``--set FIELD=VALUE`` that changes any of its fields."""
    return _apply(f, [
        click.option("--preset", type=click.Choice(PRESET_NAMES), default="cpu", show_default=True),
        click.option("--set", "settings", multiple=True, metavar="FIELD=VALUE",
                     help="change one field of the preset, e.g. --set student_epochs=3 (repeatable; "
                          "the fields: kd_keras.replay.presets.Preset)"),
    ])


def seeds_option(f):
    return click.option("--seed", "seeds", multiple=True, type=int, callback=_seeds,
                        help="repeat with each seed: --seed 0 --seed 1, or --seeds 0 1 2")(f)


def common(f):
    """Options shared by the training commands."""
    return preset_option(_apply(seeds_option(f), [
        click.option("--data-dir", default="synthetic", show_default=True, help=DATA_HELP),
        click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False)),
        click.option("--weights", default="imagenet", show_default=True,
                     help="teacher/backbone weights: imagenet | none | PATH"),
        click.option("--teacher-backbone", default=None,
                     help="resnet50 | efficientnet-lite0 | any keras.applications name (default: the preset's)"),
        click.option("--batch-size", type=int, default=None, help="the same as --set batch_size=N"),
        click.option("--fine-tune-teacher", is_flag=True,
                     help="train the whole ResNet-50 instead of the head on frozen features "
                          "(--set teacher_fine_tune=true)"),
        click.option("--deterministic", is_flag=True, help="seeded TensorFlow op determinism"),
        click.option("--strategy", type=click.Choice(STRATEGIES), default="default", show_default=True,
                     help="mirrored: every local GPU (tf.distribute on TensorFlow, keras.distribution.DataParallel "
                          "on JAX); multiworker: TF_CONFIG's machines (TensorFlow)"),
        click.option("--mixed-precision", type=click.Choice(PRECISIONS), default=None,
                     help="compute in float16/bfloat16; losses stay float32 (default: the preset's)"),
        click.option("--quiet", is_flag=True, help="no progress bars"),
        click.option("--stop-after", type=float, default=None, metavar="MINUTES",
                     help="stop at the first epoch's end after this many minutes; the same command resumes"),
        click.option("--tensorboard", is_flag=True, help="also write TensorBoard logs into each run folder (TensorFlow)"),
    ]))


def distillation(f):
    """Options of the commands that train students: whose teacher, which student."""
    return _apply(f, [
        click.option("--teacher-model", "teacher_model", multiple=True, metavar="PATH.keras",
                     help="your trained teacher (K probabilities, or one sigmoid for 2 classes) instead of "
                          "training one; it sees [0, 1] images at its own input size. Repeat it for an ensemble: "
                          "the targets are the average of their probabilities"),
        click.option("--teacher-weight", "teacher_weights", multiple=True, type=float, metavar="W",
                     help="the ensemble's weights, one per --teacher-model, summing to 1 (default: equal)"),
        click.option("--student", "student_spec", default="resnet18", show_default=True,
                     help="resnet18 | any keras.applications name | PATH.keras"),
        click.option("--student-size", type=int, default=None, metavar="PX",
                     help="the students' input size (default: the preset's)"),
    ])


def budgeted(f):
    """``--budget-minutes``: the students' epochs sized to a time slot (:mod:`kd_keras.replay.budget`)."""
    return click.option(
        "--budget-minutes", type=float, default=None, metavar="MINUTES",
        help="size the students' epochs by a short measured warm-up so that every student and generation of a "
             "seed finishes within MINUTES (per seed; the chosen epochs go into each run's config.json)")(f)


def check_budget(minutes):
    if minutes is not None and not (0 < minutes < float("inf")):
        raise UserError(f"--budget-minutes must be a number of minutes > 0, got {minutes}")


def chosen_preset(name, settings=(), batch_size=None, fine_tune_teacher=False):
    """The preset ``name`` with ``--set`` assignments and the shortcut flags applied."""
    if batch_size is not None:
        if batch_size < 1:
            raise UserError(f"--batch-size must be >= 1, got {batch_size}")
        settings = (*settings, f"batch_size={batch_size}")
    if fine_tune_teacher:
        settings = (*settings, "teacher_fine_tune=true")
    return presets.override(presets.get(name), settings)


def check_data_dir(data_dir):
    """A plain folder that does not exist is an error before anything is loaded."""
    if data_dir == "synthetic" or data_dir.startswith(("synthetic:", "tfds:")):
        return
    if not os.path.isdir(data_dir):
        raise UserError(f"data folder not found: {data_dir}")


def verbosity(quiet):
    """Keras's progress bar on a terminal, a line per epoch in a log file, nothing with --quiet."""
    return 0 if quiet else (1 if sys.stdout.isatty() else 2)


def experiments(preset, settings, data_dir, runs_dir, seeds, weights, teacher_backbone, batch_size,
                fine_tune_teacher, deterministic, strategy, mixed_precision, quiet, stop_after, tensorboard,
                teacher_model=(), teacher_weights=(), teacher_runs=0, student_spec="resnet18", student_size=None):
    """One :class:`~kd_keras.replay.experiment.Experiment` per seed, from the options of :func:`common`
    (and :func:`distillation`); the process's runtime (precision, strategy, determinism) set for them."""
    from kd_keras.weights import resolve_weights

    chosen = chosen_preset(preset, settings, batch_size, fine_tune_teacher)
    check_data_dir(data_dir)
    if stop_after is not None and not (0 < stop_after < float("inf")):  # nan and inf fail too
        raise UserError(f"--stop-after must be a number of minutes > 0, got {stop_after}")
    deadline = None if stop_after is None else time.time() + 60 * stop_after
    resolve_weights(weights)
    if student_size is not None and student_size < 32:
        raise UserError(f"--student-size must be >= 32, got {student_size}")
    for path in teacher_model:
        if not os.path.isfile(path):
            raise UserError(f"--teacher-model: no such file: {path}")
    teachers = len(teacher_model) or teacher_runs
    if teacher_weights and len(teacher_weights) != teachers:
        raise UserError(f"--teacher-weight: {len(teacher_weights)} weights for {teachers} teachers; "
                        "give one per --teacher-model (or --teacher)")

    from kd_keras import backbones, runtime, user_models  # Keras, and the backend, load from here on
    from kd_keras.replay.experiment import Experiment

    if teacher_backbone is not None:
        teacher_backbone = backbones.check_name(teacher_backbone)
    student_spec = user_models.check_student(student_spec)
    if tensorboard:
        runtime.require_tensorflow("--tensorboard (Keras writes its logs with tf.summary)")
        import importlib.util

        if importlib.util.find_spec("tensorboard") is None:
            raise UserError("--tensorboard needs the tensorboard package: pip install 'kd_keras[tensorboard]'")
    distribute = runtime.configure(deterministic=deterministic, strategy=strategy,
                                   mixed_precision=mixed_precision or chosen.mixed_precision,
                                   compile_cache=os.path.join(layout.cache_folder(runs_dir), "xla"))
    return [Experiment(preset=chosen, data_dir=data_dir, runs_dir=runs_dir, seed=seed, weights=weights,
                       strategy=distribute, verbose=verbosity(quiet), teacher_backbone=teacher_backbone,
                       deadline=deadline, student=student_spec,
                       teacher_model=(teacher_model[0] if len(teacher_model) == 1 else list(teacher_model)) or None,
                       teacher_weights=tuple(teacher_weights) or None,
                       student_size=student_size, tensorboard=tensorboard) for seed in seeds]
