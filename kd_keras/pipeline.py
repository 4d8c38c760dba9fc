"""Paper B end to end: the order in which the runs of ``kd-keras reproduce`` are made."""

import os

from kd_keras import data, runs, timing, train
from kd_keras.distill import MODES


def students(exp):
    """The teacher and the classic, hard and soft students (each reused when finished)."""
    teacher_dir = train.train_teacher(exp)
    return teacher_dir, {mode: train.train_student(exp, mode, teacher_dir) for mode in MODES}


def chains(exp, generations, kinds=("hard", "soft")):
    """The recursive chains, starting from the hard and the soft student."""
    _, student_dirs = students(exp)
    return {kind: train.train_chain(exp, kind, student_dirs[kind], generations) for kind in kinds}


def timing_run(exp, images=None):
    """Latency of teacher and student on the test images; saved as ``timing/metrics.json``."""
    split_file = os.path.join(exp.run_dir("teacher"), "split.json")
    if os.path.exists(split_file):
        dataset = data.Dataset.load(split_file)
    else:
        folder = data.resolve_source(exp.data_dir, exp.cache_dir)
        dataset = data.split(data.scan(folder), seed=exp.seed)
    paths = [path for path, _ in dataset.splits["test"]][: images or exp.preset.timing_images]
    result = timing.benchmark(paths, exp.preset.timing_size, exp.backbone, log=exp.log)
    result["preset"] = exp.preset.name
    runs.write_json(os.path.join(exp.run_dir("timing"), "metrics.json"), result)
    return result


def reproduce(exp, generations=None):
    """Teacher, three students, both chains and the timing, in that order."""
    chains(exp, generations or exp.preset.generations)
    return timing_run(exp)
