"""Students' training rate through the package's own path, on the backend Keras runs on.

uint8 batches from :class:`kd_keras.input_pipeline.ArrayBatches`, the flips, 0.4 shifts and
the division by 255 inside the Distiller's compiled step, soft targets, Adam 1e-4, as
``kd-keras student`` trains. Prints images/second per epoch after a warm-up epoch:

    python benchmarks/student_training.py                        # TensorFlow (the default)
    KERAS_BACKEND=jax .venv-jax/bin/python benchmarks/student_training.py
"""

import argparse
import time

import keras
import numpy as np

import kd_keras  # noqa: F401  (sets the TensorFlow defaults)
from kd_keras import input_pipeline, models
from kd_keras.distill import Distiller


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, s = args.images, args.size
    x = rng.integers(0, 256, (n, s, s, 3), dtype="uint8")
    y = {"label": rng.integers(0, 2, n).astype("float32"), "teacher": rng.random(n).astype("float32")}
    keras.utils.set_random_seed(0)
    distiller = Distiller(models.resnet18((s, s, 3)), mode="soft",
                          preprocessing=input_pipeline.preprocessing(flip=True, shift=0.4, seed=1))
    distiller.compile(keras.optimizers.Adam(1e-4))
    train = input_pipeline.ArrayBatches(x, y, args.batch_size, shuffle=True, seed=1)
    distiller.fit(train, epochs=1, verbose=0, shuffle=False)  # trace, compile, warm up
    for _ in range(args.epochs):
        started = time.perf_counter()
        distiller.fit(train, epochs=1, verbose=0, shuffle=False)
        print(f"{keras.backend.backend()}: {n / (time.perf_counter() - started):.1f} images/s "
              f"(ResNet-18 student, {s} px, batch {args.batch_size}, flips and shifts in the step)", flush=True)


if __name__ == "__main__":
    main()
