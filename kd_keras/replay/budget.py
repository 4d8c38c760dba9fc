"""``--budget-minutes``: the students' epochs sized so that a seed's students and chains fit a time slot.

For anyone with a fixed slot on a machine (a GPU booked for an hour, a call limited to ten
minutes): once the teacher is ready, a short warm-up on this machine measures what one student
run costs here, with the seed's own student, input size, batch and precision:

- the training rate and the inference rate, in images a second, after compilation, and the
  resume state and best model saved at each epoch's end, on a student trained on random images
  (which also fills the backend's compile cache, as the seed's first run would: on JAX, XLA's
  cache then spares each later run the compilation, not the tracing);
- the fixed cost of a run (building the student, tracing its steps, the run folder's files, the
  predictions' bookkeeping): a real run of one epoch on the seed's images, through the same code
  as every student run, in a scratch folder removed afterwards, less that epoch and its
  evaluation at the measured rates.

With the seed's image counts this gives the minutes of ``E`` epochs for every student run still
to do (the three students and both chains), evaluation and its augmented draws included, and
``E`` is the most epochs that fit what is left of the budget, less a 10 % margin (at most the
paper's 100). The same ``E`` serves every run of the seed: it is kept in the seed's
``budget.json`` and a later command on the same seed (a resumed slice) reuses it instead of
measuring again. Each student run records it, with the measured rates, under ``budget`` in its
``config.json``. As a safety net, training also stops at the first epoch's end past the budget
(as ``--stop-after`` does), resumable by the same command.

Examples:
    >>> sized = budget.size_students(exp, teacher_dir, runs=15, minutes=8, started=time.time())
    >>> sized.preset.student_epochs  # doctest: +SKIP
    14
"""

import dataclasses
import logging
import math
import os
import shutil
import tempfile
import time

import numpy as np

from kd_keras import data, input_pipeline, sources
from kd_keras.distill import offline_targets
from kd_keras.errors import UserError
from kd_keras.replay import experiment, layout, run_files, students
from kd_keras.replay.programs import Programs

_log = logging.getLogger(__name__)

MAX_EPOCHS = 100  # the paper's
MARGIN = 0.10  # of the time left, kept for what the warm-up cannot see
WARMUP_STEPS = 8
SCRATCH = ".budget-warmup"  # the one-epoch run's folder in the seed's folder, removed after it


@dataclasses.dataclass(frozen=True)
class Rates:
    """What one student run costs on this machine (seconds)."""

    fixed_s: float  # per run: building the student, compiling its train, eval and predict steps
    train_s: float  # per training image
    infer_s: float  # per image validated or predicted
    save_s: float  # per epoch: the resume state and the best model


def measure_rates(exp, size, num_classes, programs=None):
    """Seconds per image of ``exp``'s student at ``size`` px, compiled: training, inference, and saving per epoch.

    Measured on the student's compiled program (:class:`~kd_keras.replay.programs.Programs`)
    trained on random images; this compiles it, as the seed's first run would. Returns
    :class:`Rates` with no fixed cost (:func:`measure` adds it).
    """
    programs = programs if programs is not None else Programs()
    batch = exp.preset.batch_size
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch * WARMUP_STEPS, size, size, 3), dtype="uint8")
    labels = rng.integers(0, num_classes, len(images)).astype("float32" if num_classes == 2 else "int32")
    y = {"label": labels, "teacher": offline_targets("classic", labels, num_classes=num_classes)}
    program = programs.student(exp, (size, size, 3), num_classes).start(exp, 0, 0)
    few = input_pipeline.ArrayBatches(images[: 2 * batch], {k: v[: 2 * batch] for k, v in y.items()}, batch)
    program.distiller.fit(few, validation_data=input_pipeline.ArrayBatches(images[:batch], labels[:batch], batch),
                          epochs=1, verbose=0, shuffle=False)  # compiles the training and validation steps
    input_pipeline.predict_images(program.model, images[:batch], batch)  # and the prediction
    started = time.perf_counter()
    program.distiller.fit(input_pipeline.ArrayBatches(images, y, batch), epochs=1, verbose=0, shuffle=False)
    train_s = (time.perf_counter() - started) / len(images)
    started = time.perf_counter()
    input_pipeline.predict_images(program.model, images, batch)
    infer_s = (time.perf_counter() - started) / len(images)
    with tempfile.TemporaryDirectory(dir=exp.runs_dir if os.path.isdir(exp.runs_dir) else None) as scratch:
        started = time.perf_counter()
        program.distiller.save_weights(os.path.join(scratch, "state.weights.h5"))
        program.model.save(os.path.join(scratch, "model.keras"))
        save_s = time.perf_counter() - started
    return Rates(0.0, train_s, infer_s, save_s)


def measure(exp, teacher_dir, size, log=None, programs=None):
    """What a student run of ``exp`` costs here, at ``size`` px: :class:`Rates`.

    The rates come from :func:`measure_rates`; the fixed cost from a real run of one epoch on
    the seed's own images, through the same program and code as every student run, in a scratch
    folder that is removed afterwards, less that epoch and its evaluation.

    Args:
        programs: the replay's :class:`~kd_keras.replay.programs.Programs`, so that the runs reuse
            what the warm-up compiled; None makes its own.
    """
    log = log or _log.info
    programs = programs if programs is not None else Programs()
    p = exp.preset
    split = data.Dataset.load(os.path.join(teacher_dir, "split.json"))
    sources.resolve_source(exp.data_dir, exp.cache_dir)  # a pack made elsewhere is unpacked here first
    experiment.load_images(exp, split, size)  # decoded once into the cache, as the first run would
    log(f"budget: measuring a {WARMUP_STEPS}-step warm-up and a one-epoch run of the student at {size} px, "
        f"batch {p.batch_size} ...")
    rates = measure_rates(exp, size, len(split.class_names), programs)
    scratch = os.path.join(os.path.dirname(teacher_dir), SCRATCH)
    one_epoch = dataclasses.replace(exp, preset=dataclasses.replace(p, student_epochs=1), verbose=0, deadline=None,
                                    budget=None)
    started = time.perf_counter()
    try:
        students.train_student(one_epoch, "classic", teacher_dir, name=SCRATCH, programs=programs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    whole = time.perf_counter() - started
    counts = {s: len(split.splits[s]) for s in experiment.SPLITS}
    return dataclasses.replace(rates, fixed_s=max(whole - 60 * run_minutes(1, counts, rates, p.augmented_evaluations),
                                                  0.0))


def run_minutes(epochs, counts, rates, draws):
    """Minutes of one student run of ``epochs`` epochs on splits of ``counts`` images."""
    per_epoch = counts["train"] * rates.train_s + counts["valid"] * rates.infer_s + rates.save_s
    evaluation = (sum(counts.values()) + draws * counts["test"]) * rates.infer_s
    return (rates.fixed_s + evaluation + epochs * per_epoch) / 60


def epochs_that_fit(seconds, runs_to_do, counts, rates, draws):
    """The most epochs (at most :data:`MAX_EPOCHS`) for which ``runs_to_do`` runs take at most ``seconds``."""
    once = run_minutes(0, counts, rates, draws) * 60
    per_epoch = run_minutes(1, counts, rates, draws) * 60 - once
    return min(MAX_EPOCHS, math.floor((seconds - runs_to_do * once) / (runs_to_do * per_epoch)))


def size_students(exp, teacher_dir, run_names, minutes, started, log=None, programs=None):
    """``exp`` with the students' epochs sized to ``minutes`` (from ``started``, a ``time.time()``).

    Args:
        exp: the seed's :class:`~kd_keras.train.Experiment`.
        teacher_dir: the teacher's finished run (its split gives the image counts).
        run_names: the student runs of the seed (``student-classic``, ..., ``soft-chain-6``).
        minutes: the budget of the whole command for this seed.
        started: when the command started; the teacher's time is spent already.
        programs: the replay's compiled student programs (:func:`measure`).

    Returns:
        A copy of ``exp`` whose preset trains the chosen epochs, with ``budget`` (recorded in each
        student run's ``config.json``) and a ``deadline`` at the budget's end unless one is set.

    Raises:
        UserError: not even one epoch per run fits, or the seed was sized for another budget.
    """
    log = log or _log.info
    if not 0 < minutes < float("inf"):
        raise UserError(f"--budget-minutes must be a number of minutes > 0, got {minutes}")
    path = os.path.join(os.path.dirname(teacher_dir), layout.BUDGET)
    if os.path.exists(path):
        chosen = run_files.read_json(path)
        if chosen.get("minutes") != minutes:
            raise UserError(f"{os.path.dirname(teacher_dir)} was sized for --budget-minutes {chosen.get('minutes')}; "
                            "give that again, or use another --runs-dir")
        log(f"budget: {chosen['epochs']} epochs a student run, as sized before ({path})")
    else:
        todo = [name for name in run_names if not run_files.is_complete(exp.run_dir(name))]
        split = run_files.read_split(teacher_dir)
        counts = {s: len(split["splits"][s]) for s in experiment.SPLITS}
        rates = measure(exp, teacher_dir, exp.student_size or exp.preset.image_size, log, programs)
        left = minutes * 60 - (time.time() - started)
        epochs = epochs_that_fit(left * (1 - MARGIN), max(len(todo), 1), counts, rates, exp.preset.augmented_evaluations)
        one_epoch = len(todo) * run_minutes(1, counts, rates, exp.preset.augmented_evaluations)
        if epochs < 1:
            raise UserError(f"--budget-minutes {minutes}: {len(todo)} student runs of one epoch each need about "
                            f"{one_epoch / (1 - MARGIN) + (time.time() - started) / 60:.1f} minutes here")
        chosen = {"minutes": minutes, "epochs": epochs, "runs": len(todo),
                  "estimate_minutes": round(len(todo) * run_minutes(epochs, counts, rates,
                                                                    exp.preset.augmented_evaluations), 2),
                  "images": counts, "train_images_per_s": round(1 / rates.train_s, 1),
                  "inference_images_per_s": round(1 / rates.infer_s, 1),
                  "fixed_s_per_run": round(rates.fixed_s, 2), "save_s_per_epoch": round(rates.save_s, 2)}
        run_files.write_json(path, chosen)
        log(f"budget: {minutes:g} min; measured {chosen['train_images_per_s']:.0f} training and "
            f"{chosen['inference_images_per_s']:.0f} inference images/s, {rates.fixed_s:.0f} s more a run; "
            f"{len(todo)} student runs x {epochs} epochs, about {chosen['estimate_minutes']:.1f} min")
    deadline = exp.deadline if exp.deadline is not None else started + 60 * minutes
    return dataclasses.replace(exp, preset=dataclasses.replace(exp.preset, student_epochs=chosen["epochs"]),
                               budget=chosen, deadline=deadline)
