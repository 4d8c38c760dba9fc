"""Students' training rate through the package's own path, on the backend and device Keras runs on.

uint8 batches from :class:`kd_keras.input_pipeline.ArrayBatches`, the flips, 0.4 shifts and
the division by 255 inside the Distiller's compiled step, soft targets, Adam, as ``kd-keras
student`` trains. Prints images/second per epoch after a warm-up epoch, and the arithmetic
rate that is: the student's training FLOPs per image (3 x its forward FLOPs: the forward pass,
and the backward pass through activations and weights), counted from its layers. On a GPU it
also prints that rate's share of the chip's dense bf16 peak (``--peak-tflops``: 790 is what an
8192^3 bf16 matrix product ran at on an H100 and an H200):

    python benchmarks/student_training.py                                   # CPU, TensorFlow
    KERAS_BACKEND=jax python benchmarks/student_training.py --size 224 --batch-size 256 \\
        --mixed-precision bfloat16 --images 8192                             # the gpu preset's step
"""

from kd_keras import quiet  # noqa: I001  (first: before Keras loads TensorFlow)

quiet.tensorflow_defaults()  # oneDNN on and a quiet start-up, as the kd-keras command has them

import argparse
import time

import keras
import numpy as np

from kd_keras import input_pipeline, models, runtime
from kd_keras.distill import Distiller


def forward_flops(model, size):
    """Multiply-adds x 2 of the convolutions and dense layers of ``model`` for one ``size`` px image."""
    total = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Conv2D):  # DepthwiseConv2D is not a Conv2D subclass in Keras 3
            h, w, c_out = layer.output.shape[1:]
            kh, kw, c_in_per_group, _ = layer.kernel.shape
            total += 2 * h * w * kh * kw * c_in_per_group * c_out
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            h, w, c_out = layer.output.shape[1:]
            kh, kw = layer.kernel.shape[:2]
            total += 2 * h * w * kh * kw * c_out
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * int(np.prod(layer.kernel.shape))
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--mixed-precision", choices=["off", "float16", "bfloat16"], default="off")
    parser.add_argument("--peak-tflops", type=float, default=790.0, help="the device's dense bf16 peak")
    args = parser.parse_args()
    runtime.configure(mixed_precision=args.mixed_precision)
    rng = np.random.default_rng(0)
    n, s = args.images, args.size
    x = rng.integers(0, 256, (n, s, s, 3), dtype="uint8")
    y = {"label": rng.integers(0, 2, n).astype("float32"), "teacher": rng.random(n).astype("float32")}
    keras.utils.set_random_seed(0)
    student = models.resnet18((s, s, 3))
    distiller = Distiller(student, mode="soft",
                          preprocessing=input_pipeline.preprocessing(flip=True, shift=0.4, seed=1))
    distiller.compile(keras.optimizers.Adam(args.lr))
    train = input_pipeline.ArrayBatches(x, y, args.batch_size, shuffle=True, seed=1)
    started = time.perf_counter()
    distiller.fit(train, epochs=1, verbose=0, shuffle=False)  # trace, compile, warm up
    print(f"first epoch (tracing and compiling included): {time.perf_counter() - started:.1f} s", flush=True)
    train_flops = 3 * forward_flops(student, s)
    device = runtime.device_kind()
    for _ in range(args.epochs):
        started = time.perf_counter()
        distiller.fit(train, epochs=1, verbose=0, shuffle=False)
        rate = n / (time.perf_counter() - started)
        tflops = rate * train_flops / 1e12
        share = f", {100 * tflops / args.peak_tflops:.1f} % of a {args.peak_tflops:g} TFLOP/s bf16 peak" if (
            device == "GPU") else ""
        print(f"{keras.backend.backend()} on {device}: {rate:.1f} images/s = {tflops:.3g} TFLOP/s "
              f"(ResNet-18 student, {s} px, {train_flops / 1e9:.2f} GFLOP an image in training, batch "
              f"{args.batch_size}, precision {args.mixed_precision}, flips and shifts in the step){share}",
              flush=True)


if __name__ == "__main__":
    main()
