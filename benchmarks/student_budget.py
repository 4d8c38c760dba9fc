"""Which student setting learns most in the cpu replay's minutes: image size, learning rate, epochs.

Trains classic ResNet-18 students (true labels, the paper's flips and 0.4 shifts, batch 32)
on the shared Dogs vs. Cats split the cpu preset uses and prints, per setting, the training
speed and the valid accuracy after each epoch:

    python benchmarks/student_budget.py --data-dir ../shared/data/cats_vs_dogs \\
        --setting 64:1e-4 --setting 64:1e-3 --setting 48:1e-3 --setting 96:1e-3 --epochs 5
"""

from kd_keras import quiet  # noqa: I001  (first: before Keras loads TensorFlow)

quiet.tensorflow_defaults()  # oneDNN on and a quiet start-up, as the kd-keras command has them

import argparse
import time

import keras
import numpy as np

from kd_keras import data, input_pipeline, models
from kd_keras.distill import Distiller


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--setting", action="append", required=True, help="SIZE:LR, repeatable")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--train-per-class", type=int, default=1000)
    parser.add_argument("--valid-per-class", type=int, default=150)
    parser.add_argument("--cache-dir", default="runs/.cache")
    args = parser.parse_args()
    dataset = data.subsample(data.split(data.scan(args.data_dir), seed=0),
                             {"train": args.train_per_class, "valid": args.valid_per_class, "test": 1}, seed=0)
    for setting in args.setting:
        size, lr = int(setting.split(":")[0]), float(setting.split(":")[1])
        train_x, train_y, _, _ = input_pipeline.cached_images(dataset.splits["train"], size, args.cache_dir, "train")
        valid_x, valid_y, _, _ = input_pipeline.cached_images(dataset.splits["valid"], size, args.cache_dir, "valid")
        keras.utils.set_random_seed(0)
        distiller = Distiller(models.resnet18((size, size, 3)), mode="classic",
                              preprocessing=input_pipeline.preprocessing(flip=True, shift=0.4, seed=0))
        distiller.compile(keras.optimizers.Adam(lr))
        train = input_pipeline.ArrayBatches(train_x, train_y.astype("float32"), 32, shuffle=True, seed=0)
        valid = input_pipeline.ArrayBatches(valid_x, valid_y.astype("float32"), 64)
        started = time.perf_counter()
        history = distiller.fit(train, validation_data=valid, epochs=args.epochs, verbose=0, shuffle=False)
        seconds = time.perf_counter() - started
        accuracy = history.history["val_accuracy"]
        print(f"{size} px, lr {lr:g}: {len(train_x) * args.epochs / seconds:.0f} images/s incl. validation; "
              f"valid accuracy per epoch {' '.join(f'{a:.3f}' for a in accuracy)}; best {np.max(accuracy):.3f}",
              flush=True)


if __name__ == "__main__":
    main()
