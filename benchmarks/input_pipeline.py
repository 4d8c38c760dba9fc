"""Input-pipeline throughput: the decode-once cache and its batches against a plain per-epoch decode loop.

Both sides deliver the same batches (resized with nearest-neighbour, divided by 255) for
the same number of epochs, in the same process; the cached side pays its one decode
inside the timing. Prints images/second of each and the ratio.

    python benchmarks/input_pipeline.py --data-dir ../shared/data/cats_vs_dogs --images 2000 --epochs 5
"""

from kd_keras import quiet  # noqa: I001  (first: before Keras loads TensorFlow)

quiet.tensorflow_defaults()  # oneDNN on and a quiet start-up, as the kd-keras command has them

import argparse
import os
import tempfile
import time

from kd_keras import data, input_pipeline, sources


def plain_loop(paths, size, batch_size):
    """What a naive loader does every epoch: read, decode, resize, scale, batch, one file at a time."""
    import numpy as np

    batch = []
    for path in paths:
        image = input_pipeline.decode_file(path, size).astype("float32") / 255.0
        batch.append(image)
        if len(batch) == batch_size:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data/cats_vs_dogs")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    cache = tempfile.mkdtemp(prefix="kd-keras-bench-")
    folder = sources.resolve_source(args.data_dir if os.path.isdir(args.data_dir) else "synthetic", cache)
    items = [item for split in data.scan(folder).splits.values() for item in split][: args.images]
    paths = [p for p, _ in items]
    n = len(paths) * args.epochs

    start = time.perf_counter()
    for _ in range(args.epochs):
        for _ in plain_loop(paths, args.size, args.batch_size):
            pass
    plain = n / (time.perf_counter() - start)

    start = time.perf_counter()
    images, labels, _, _ = input_pipeline.cached_images(items, args.size, cache, log=lambda *_: None)
    batches = input_pipeline.ArrayBatches(images, labels, args.batch_size, shuffle=True, scale=1 / 255)
    for _ in range(args.epochs):
        for i in range(len(batches)):
            batches[i]
        batches.on_epoch_end()
    cached = n / (time.perf_counter() - start)

    print(f"{len(paths)} images x {args.epochs} epochs at {args.size} px, batch {args.batch_size}, from {folder}")
    print(f"plain per-epoch decode loop: {plain:8.1f} images/s")
    print(f"kd_keras cache + batches:    {cached:8.1f} images/s")
    print(f"ratio: {cached / plain:.1f}x")


if __name__ == "__main__":
    main()
