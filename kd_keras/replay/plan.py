"""``kd-keras reproduce --plan``: what a replay will do and how long it will take, before it starts.

The counts come from the data source and the preset alone (nothing is decoded); the
minutes come from a short measured warm-up on this machine: teacher features, a few training
steps of the student, and its inference.
"""

import logging
import math
import time

import numpy as np

from kd_keras import data, sources

_log = logging.getLogger(__name__)



def describe(exp, generations):
    """The replay's shape: images per split, sizes, runs, steps and cache sizes (no TensorFlow)."""
    p = exp.preset
    folder = sources.resolve_source(exp.data_dir, exp.cache_dir)
    dataset = data.split(data.scan(folder), seed=exp.seed)
    limits = {"train": p.train_per_class, "valid": p.valid_per_class, "test": p.test_per_class}
    counts = {s: len(items) for s, items in data.subsample(dataset, limits, seed=exp.seed).splits.items()}
    total = sum(counts.values())
    teacher_size = p.teacher_image_size or p.image_size
    sizes = sorted({p.image_size, teacher_size})
    student_runs = 3 + 2 * generations
    steps = math.ceil(counts["train"] / p.batch_size)
    return {
        "preset": p.name, "images": counts, "student_size": p.image_size, "teacher_size": teacher_size,
        "teacher_backbone": exp.backbone, "teacher_epochs": p.teacher_epochs, "student_runs": student_runs,
        "student_epochs": p.student_epochs, "steps_per_epoch": steps, "batch_size": p.batch_size,
        "augmented_draws": p.augmented_evaluations, "mixed_precision": p.mixed_precision,
        "timing_images": min(p.timing_images, counts["test"]), "seeds": 1,
        "cache_bytes": sum(total * s * s * 3 for s in sizes),
    }


def measure(exp, shape):
    """Seconds per image: teacher features, and student training and inference (:func:`kd_keras.replay.budget.measure_rates`)."""
    from kd_keras.replay import budget
    from kd_keras import models

    rng = np.random.default_rng(0)
    t = shape["teacher_size"]
    backbone = models.backbone(shape["teacher_backbone"], None, (t, t, 3))
    images = rng.uniform(0, 1, (2 * 32, t, t, 3)).astype("float32")
    backbone.predict(images[:32], batch_size=32, verbose=0)
    started = time.perf_counter()
    backbone.predict(images, batch_size=32, verbose=0)
    feature_s = (time.perf_counter() - started) / len(images)
    rates = budget.measure_rates(exp, exp.preset.image_size, 2)
    return {"feature_s": feature_s, "train_s": rates.train_s, "infer_s": rates.infer_s}


def estimate_minutes(shape, rates):
    """Minutes per seed: teacher features, students and chains, their evaluations, timing."""
    n = shape["images"]
    features = (2 * n["train"] + n["valid"] + 2 * n["test"]) * rates["feature_s"]
    per_student = (shape["student_epochs"] * (n["train"] * rates["train_s"] + n["valid"] * rates["infer_s"])
                   + (sum(n.values()) + shape["augmented_draws"] * n["test"]) * rates["infer_s"])
    timing = shape["timing_images"] * 2 * 0.35  # about 350 ms per image for all networks and both modes
    return {"teacher": features / 60, "students": shape["student_runs"] * per_student / 60,
            "timing": timing / 60, "total": (features + shape["student_runs"] * per_student + timing) / 60}


def format_plan(shape, rates=None, minutes=None):
    """The plan as lines of text."""
    n = shape["images"]
    lines = [
        f"plan: preset {shape['preset']}, teacher {shape['teacher_backbone']} at {shape['teacher_size']} px "
        f"({shape['teacher_epochs']} epochs of its head on cached features)",
        f"  images: train {n['train']}, valid {n['valid']}, test {n['test']} (per seed)",
        f"  students: {shape['student_runs']} runs (3 students + 2 chains) x {shape['student_epochs']} epochs x "
        f"{shape['steps_per_epoch']} steps of {shape['batch_size']} at {shape['student_size']} px, "
        f"mixed precision {shape['mixed_precision']}",
        f"  evaluation: train/valid/test and {shape['augmented_draws']} augmented test draws per run; "
        f"timing on {shape['timing_images']} images",
        f"  image cache: {shape['cache_bytes'] / 2**20:.0f} MiB on disk and in memory (uint8)",
    ]
    if rates:
        lines.append(f"  measured here: features {1 / rates['feature_s']:.0f} img/s, student training "
                     f"{1 / rates['train_s']:.0f} img/s, inference {1 / rates['infer_s']:.0f} img/s")
    if minutes:
        lines.append(f"  estimate: {minutes['total']:.0f} min per seed (teacher {minutes['teacher']:.1f}, "
                     f"students and chains {minutes['students']:.0f}, timing {minutes['timing']:.1f})")
    return lines


def plan(exp, generations, log=None):
    """Describes, measures and estimates the replay of ``exp``; returns the estimate's minutes."""
    log = log or _log.info
    shape = describe(exp, generations)
    log("plan: measuring a short warm-up on this machine ...")
    rates = measure(exp, shape)
    minutes = estimate_minutes(shape, rates)
    for line in format_plan(shape, rates, minutes):
        log(line)
    return minutes
