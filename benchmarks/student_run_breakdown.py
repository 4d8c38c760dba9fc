"""Where one student run's seconds go: training steps, validation, saves, predictions, augmented draws.

Trains one student the way the replay does (:func:`kd_keras.replay.training.train_on_images`:
the resumable fit with its validation and its best-model and resume-state saves, then the
predictions on the three splits and the augmented test draws) on random images of a preset's
shape and split sizes, through a program compiled beforehand (as every run of a replay but its
first), and prints each part's seconds and share. Then what a seed's student runs cost at that
rate: the floor their training steps alone set, whatever else is saved:

    python benchmarks/student_run_breakdown.py                   # the cpu preset: 2,000 / 300 / 1,000 images, 9 epochs
    python benchmarks/student_run_breakdown.py --preset demo --images 280
    python benchmarks/student_run_breakdown.py --images 512 --epochs 2   # a quick look
"""

from kd_keras import quiet  # noqa: I001  (first: before Keras loads TensorFlow)

quiet.tensorflow_defaults()  # oneDNN on and a quiet start-up, as the kd-keras command has them

import argparse
import collections
import contextlib
import dataclasses
import sys
import tempfile
import time

import keras
import numpy as np

from kd_keras.errors import UserError
from kd_keras.replay import experiment, layout, presets, training
from kd_keras.replay.programs import Programs


@contextlib.contextmanager
def _timed(owner, name, seconds, key):
    """Adds the seconds spent in ``owner.name`` to ``seconds[key]`` while inside the block."""
    original = getattr(owner, name)

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            seconds[key] += time.perf_counter() - started

    setattr(owner, name, timed)
    try:
        yield
    finally:
        setattr(owner, name, original)


def _split_sizes(preset, images):
    """Training, validation and test images of one seed: the preset's per-class limits x 2 classes.

    ``images`` replaces the training split's size; the other two keep their proportion to it.
    """
    limits = (preset.train_per_class, preset.valid_per_class, preset.test_per_class)
    if images is None and None in limits:
        raise ValueError(f"preset {preset.name} keeps every image of its data; say how many with --images")
    sizes = [2 * n for n in limits] if None not in limits else [70, 15, 15]
    if images:
        sizes = [images, max(1, images * sizes[1] // sizes[0]), max(1, images * sizes[2] // sizes[0])]
    return dict(zip(("train", "valid", "test"), sizes))


def breakdown(preset, sizes, log=print):
    """Seconds per part of one student run at ``preset``'s shape and ``sizes``, its program compiled beforehand."""
    size = preset.image_size
    rng = np.random.default_rng(0)
    data = {s: (rng.integers(0, 256, (n, size, size, 3), dtype="uint8"), None, None) for s, n in sizes.items()}
    labels = {s: rng.integers(0, 2, n).astype("float32") for s, n in sizes.items()}
    seconds = collections.Counter()
    with tempfile.TemporaryDirectory() as folder:
        exp = experiment.Experiment(preset=preset, data_dir="synthetic", runs_dir=folder, verbose=0)
        programs = Programs()
        keras.utils.set_random_seed(0)
        program = programs.student(exp, (size, size, 3), 2)
        log(f"{keras.backend.backend()}: preset {preset.name}, {size} px, batch {preset.batch_size}, "
            f"{preset.student_epochs} epochs, train/valid/test {sizes['train']}/{sizes['valid']}/{sizes['test']} "
            f"images, {preset.augmented_evaluations} augmented draws; a first run compiles the program ...")
        short = dataclasses.replace(preset, student_epochs=1, augmented_evaluations=1)
        few = {s: (x[: preset.batch_size * 2], *rest) for s, (x, *rest) in data.items()}
        training.train_on_images(experiment.Experiment(preset=short, data_dir="synthetic", runs_dir=folder, verbose=0),
                                 f"{folder}/compile", 0, program, few,
                                 {s: v[: preset.batch_size * 2] for s, v in labels.items()},
                                 1, time.time(), {"kind": "student"}, targets=None)
        with contextlib.ExitStack() as stack:
            stack.enter_context(_timed(keras.Model, "fit", seconds, "fit"))
            stack.enter_context(_timed(keras.Model, "evaluate", seconds, "validation"))
            stack.enter_context(_timed(keras.callbacks.CallbackList, "on_epoch_end", seconds, "epoch end"))
            stack.enter_context(_timed(training, "predict_splits", seconds, "predictions"))
            stack.enter_context(_timed(training, "augmented_draws", seconds, "augmented draws"))
            started = time.perf_counter()
            training.train_on_images(exp, f"{folder}/{layout.student_run('classic')}", 1, program, data, labels,
                                     preset.student_epochs, time.time(), {"kind": "student"}, targets=None)
            seconds["run"] = time.perf_counter() - started
    parts = {
        "training steps (and their batches)": seconds["fit"] - seconds["validation"] - seconds["epoch end"],
        "validation after each epoch": seconds["validation"],
        "epoch-end saves (best model, resume state)": seconds["epoch end"],
        "predictions on the three splits": seconds["predictions"],
        "augmented test draws": seconds["augmented draws"],
    }
    parts["the rest (targets, metrics, files)"] = seconds["run"] - sum(parts.values())
    return parts, seconds["run"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--images", type=int, default=None, help="training images (default: the preset's seed)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the preset's student epochs")
    parser.add_argument("--runs", type=int, default=None,
                        help="student runs in a seed (default: the preset's, 3 students + 2 chains of its generations)")
    args = parser.parse_args()
    try:
        for flag, value in (("--images", args.images), ("--epochs", args.epochs), ("--runs", args.runs)):
            if value is not None and value < 1:
                raise ValueError(f"{flag} must be at least 1, got {value}")
        preset = presets.get(args.preset)
        sizes = _split_sizes(preset, args.images)
    except (UserError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    preset = dataclasses.replace(preset, student_epochs=args.epochs or preset.student_epochs)
    runs = args.runs or len(layout.MODES) + len(layout.CHAINS) * preset.generations
    parts, whole = breakdown(preset, sizes)
    for name, value in parts.items():
        print(f"  {name:<44} {value:7.1f} s  {100 * value / whole:5.1f} %")
    steps = parts["training steps (and their batches)"]
    rate = preset.student_epochs * sizes["train"] / steps
    print(f"one run: {whole:.1f} s; training at {rate:.0f} images/s (epochs x training images / the steps' seconds)")
    print(f"{runs} such runs: {runs * whole / 60:.1f} min, of which {runs * steps / 60:.1f} min are "
          f"training steps: the floor at this rate whatever else is cut")


if __name__ == "__main__":
    main()
