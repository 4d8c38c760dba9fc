"""ResNet-18 training and inference images/second on this machine.

Compare oneDNN on and off (TensorFlow leaves it off on non-Intel CPUs):

    TF_ENABLE_ONEDNN_OPTS=0 python benchmarks/training_speed.py
    TF_ENABLE_ONEDNN_OPTS=1 python benchmarks/training_speed.py
"""

from kd_keras import quiet  # noqa: I001  (first: before Keras loads TensorFlow)

quiet.tensorflow_defaults()  # oneDNN on and a quiet start-up, as the kd-keras command has them

import argparse
import os
import time

import numpy as np

from kd_keras import models


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=6)
    args = parser.parse_args()
    n = args.batch_size * args.batches
    x = np.random.rand(n, args.size, args.size, 3).astype("float32")
    y = np.random.randint(0, 2, n).astype("float32")
    model = models.resnet18((args.size, args.size, 3))
    model.compile("adam", "binary_crossentropy")
    model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0)  # trace and warm up
    start = time.perf_counter()
    model.fit(x, y, batch_size=args.batch_size, epochs=2, verbose=0)
    train = 2 * n / (time.perf_counter() - start)
    model.predict(x, batch_size=64, verbose=0)
    start = time.perf_counter()
    model.predict(x, batch_size=64, verbose=0)
    infer = n / (time.perf_counter() - start)
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    print(f"ResNet-18 at {args.size} px, TF_ENABLE_ONEDNN_OPTS={onednn}: train {train:.1f} images/s, "
          f"inference {infer:.1f} images/s")


if __name__ == "__main__":
    main()
