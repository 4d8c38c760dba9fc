"""Paper B's students and recursive chains: each trained on its parent's predictions (formulas 13 and 14).

Each function trains into one run folder and returns it; a finished run is reused, an
interrupted one resumes from its last completed epoch. Every student and generation draws its
own weights, data order and augmentation (:func:`~kd_keras.replay.experiment.run_seed`).
"""

import os
import time

from kd_keras import user_models
from kd_keras.errors import UserError
from kd_keras.replay import layout, lifecycle, run_files
from kd_keras.replay.experiment import class_labels, load_images, prepare_split, start_run
from kd_keras.replay.programs import Programs
from kd_keras.replay.training import train_on_images

def train_student(exp, mode, parent_dir, name=None, generation=0, programs=None):
    """A student (the paper's ResNet-18 by default): Adam 1e-4, no decay, flips and 0.4 shifts, batch 32.

    Args:
        exp: the :class:`Experiment`.
        mode: ``"classic"`` (true labels), ``"hard"`` (formula 13) or ``"soft"`` (formula 14).
        parent_dir: the teacher's run folder (or the previous generation's); its split is
            reused and its training predictions are the targets.
        name: the run's name; ``student-<mode>`` by default.
        generation: the step in a recursive chain (0 for the students themselves).
        programs: the replay's compiled programs (:class:`~kd_keras.replay.programs.Programs`): a
            student of a shape trained before reuses its compiled steps; None compiles afresh.

    One process at a time: another one on the same run folder is refused (:class:`lifecycle.RunLock`).
    """
    with lifecycle.RunLock(exp.run_dir(name or layout.student_run(mode))):
        return _train_student(exp, mode, parent_dir, name, generation, programs)


def _train_student(exp, mode, parent_dir, name, generation, programs):
    p = exp.preset
    if not run_files.is_complete(parent_dir):
        raise UserError(f"teacher run {parent_dir} is missing or incomplete (no metrics.json)")
    name = name or layout.student_run(mode)
    extra = {"kind": "student", "mode": mode, "generation": generation, "parent": parent_dir}
    if exp.student != user_models.DEFAULT_STUDENT or exp.student_size:  # recorded only when not the paper's
        extra.update(student=exp.student, student_size=exp.student_size)
    if exp.budget is not None:
        extra["budget"] = exp.budget
    run_dir, seed, finished = start_run(exp, name, extra, parent_dir)
    if finished:
        exp.log(f"{run_dir}: done, reused")
        return run_dir
    started = time.time()
    exp.log(f"training {name}")
    dataset = prepare_split(exp, run_dir, parent_dir)
    num_classes = len(dataset.class_names)
    size = exp.student_size or p.image_size
    if exp.student.endswith(".keras"):  # a student file keeps its own input size
        size = user_models.input_size(user_models.load_model_file(exp.student, "--student"), "--student")
    program = (programs if programs is not None else Programs()).student(exp, (size, size, 3), num_classes)
    images = load_images(exp, dataset, size)
    labels = class_labels(images, num_classes)
    targets = run_files.read_predictions(os.path.join(parent_dir, "predictions.npz"), ["train"])["train"].astype("float32")
    if len(targets) != len(labels["train"]):
        raise UserError(f"{parent_dir} has predictions for {len(targets)} training images, the split has "
                        f"{len(labels['train'])}; re-run the parent")
    return train_on_images(exp, run_dir, seed, program, images, labels, p.student_epochs, started, extra,
                           targets=targets, mode=mode)


def train_chain(exp, chain, start_dir, generations, programs=None):
    """Recursive distillation: generation k learns from generation k-1's predictions.

    Args:
        chain: ``"hard"`` (formula 13 at every step) or ``"soft"`` (formula 14).
        start_dir: the hard or soft student's run folder (generation 0).
        generations: how many new students.
        programs: as :func:`train_student`'s.

    Returns:
        The run folders of generations 0..N.
    """
    if generations < 1:
        raise UserError(f"generations must be >= 1, got {generations}")
    chain_dirs = [start_dir]
    for k in range(1, generations + 1):
        chain_dirs.append(train_student(exp, chain, chain_dirs[-1], name=layout.chain_run(chain, k), generation=k,
                                        programs=programs))
    return chain_dirs
