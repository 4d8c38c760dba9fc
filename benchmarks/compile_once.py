"""What compiling once saves: student runs through one reused program against runs that each compile their own.

Trains ``--runs`` students of a preset's shape on random images, one after another, the way
the replay does (:func:`kd_keras.replay.training.train_on_images`: the resumable fit, the
best model saved, the predictions on the three splits and the augmented test draws), once with
a fresh :class:`~kd_keras.replay.programs.Programs` per run (every run traces and compiles its
steps, as before) and once with one shared by all. Prints, per run, the seconds before its
first training step (the fixed cost) and its whole time, and the training rate of the later
epochs; then the ratio of the totals:

    python benchmarks/compile_once.py                  # the demo and the cpu preset, in one run
    python benchmarks/compile_once.py --preset cpu --runs 4 --images 512
    KERAS_BACKEND=jax python benchmarks/compile_once.py --preset demo
"""

from kd_keras import quiet  # noqa: I001  (first: before Keras loads TensorFlow)

quiet.tensorflow_defaults()  # oneDNN on and a quiet start-up, as the kd-keras command has them

import argparse
import dataclasses
import tempfile
import time

import keras
import numpy as np

from kd_keras.replay import experiment, presets, training
from kd_keras.replay.programs import Programs


class _FirstStep(keras.callbacks.Callback):
    """When the run's first training step began, and when its later epochs ran."""

    def __init__(self):
        super().__init__()
        self.first_step, self.epochs = None, []

    def on_train_batch_begin(self, batch, logs=None):
        if self.first_step is None:
            self.first_step = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(time.perf_counter() - self._epoch_started)


def _runs(preset, count, images, shared, folder, log):
    rng = np.random.default_rng(0)
    size = preset.image_size
    splits = {"train": images, "valid": images // 4, "test": images // 4}
    data = {s: (rng.integers(0, 256, (n, size, size, 3), dtype="uint8"), None, None) for s, n in splits.items()}
    labels = {s: rng.integers(0, 2, n).astype("float32") for s, n in splits.items()}
    exp = experiment.Experiment(preset=preset, data_dir="synthetic", runs_dir=folder, verbose=0)
    programs = Programs()
    results = []
    for k in range(count):
        programs = programs if shared else Programs()
        watch = _FirstStep()
        started = time.perf_counter()
        keras.utils.set_random_seed(k)
        program = programs.student(exp, (size, size, 3), 2)
        original = keras.Model.fit

        def fit(model, *args, callbacks=(), **kwargs):
            return original(model, *args, callbacks=[*callbacks, watch], **kwargs)

        keras.Model.fit = fit
        try:
            training.train_on_images(exp, f"{folder}/{'shared' if shared else 'fresh'}-{k}", k, program, data, labels,
                                     preset.student_epochs, time.time(), {"kind": "student"}, targets=None)
        finally:
            keras.Model.fit = original
        whole = time.perf_counter() - started
        rate = splits["train"] / np.mean(watch.epochs[1:]) if len(watch.epochs) > 1 else float("nan")
        results.append((watch.first_step - started, whole, rate))
        log(f"  {'one program' if shared else 'fresh programs'} run {k + 1}: {watch.first_step - started:5.1f} s "
            f"before its first step, {whole:5.1f} s in all, {rate:6.1f} training images/s after its first epoch")
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", nargs="+", default=["demo", "cpu"])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--images", type=int, default=128, help="training images per run")
    parser.add_argument("--epochs", type=int, default=None, help="default: the preset's student epochs")
    args = parser.parse_args()
    for name in args.preset:
        _compare(presets.get(name), args)


def _compare(preset, args):
    preset = dataclasses.replace(preset, student_epochs=args.epochs or preset.student_epochs, augmented_evaluations=2)
    print(f"{keras.backend.backend()}: {args.runs} student runs of preset {preset.name} ({preset.image_size} px, "
          f"batch {preset.batch_size}, {preset.student_epochs} epochs of {args.images} images)", flush=True)
    totals = {}
    with tempfile.TemporaryDirectory() as folder:
        for shared in (False, True):
            results = _runs(preset, args.runs, args.images, shared, folder, lambda line: print(line, flush=True))
            totals[shared] = sum(r[1] for r in results)
            fixed = [r[0] for r in results]
            print(f"{'one program' if shared else 'fresh programs'}: fixed cost {fixed[0]:.1f} s for the first run, "
                  f"{np.mean(fixed[1:]):.1f} s for each later one; {totals[shared]:.1f} s in all", flush=True)
    print(f"{preset.name}: ratio of the totals, fresh / one program: {totals[False] / totals[True]:.2f}x", flush=True)

if __name__ == "__main__":
    main()
