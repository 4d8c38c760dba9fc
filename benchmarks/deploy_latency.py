"""Per-image latency of every deployment path at batch size 1: Keras, TFLite (LiteRT), ONNX Runtime.

Times the ResNet-18 student and the ResNet-50 teacher (random weights unless --student names a
run; latency does not depend on weights) at 224 px on the same images, in one process:

    python benchmarks/deploy_latency.py --threads 2 --images 50 [--student runs/.../student-soft]

Prints ms per image for each network and path, the student's speed-up over the Keras teacher, and
the like-for-like ratio (teacher exported the same way), so a deployment gain cannot pass for an
architecture gain. For TFLite int8 it also tries LiteRT's interpreter options that decide whether
XNNPACK's int8 (QS8) kernels run.
"""

from kd_keras import quiet  # noqa: I001  (first: before Keras loads TensorFlow)

quiet.tensorflow_defaults()  # oneDNN on and a quiet start-up, as the kd-keras command has them

import argparse
import os
import tempfile
import time

import numpy as np

from kd_keras.deploy import export
from kd_keras import models, runtime
from kd_keras.replay import timing

PATHS = [("keras", None), ("tflite", "none"), ("tflite", "dynamic"), ("tflite", "int8"),
         ("onnx", "none"), ("onnx", "int8")]


def _time(run, images, warmup=3):
    for x in images[:warmup]:
        run(x)
    started = time.perf_counter()
    for x in images:
        run(x)
    return 1000 * (time.perf_counter() - started) / len(images)


def _tflite_variants(path, threads):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from kd_keras.quiet import native_stderr_silenced

    for label, kwargs in (("default (XNNPACK)", {}),
                          ("XNNPACK latest features", {"experimental_default_delegate_latest_features": True}),
                          ("no XNNPACK (builtin kernels)",
                           {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES})):
        with native_stderr_silenced():
            interpreter = Interpreter(model_path=path, num_threads=threads, **kwargs)
            interpreter.allocate_tensors()
        inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

        def run(x, interpreter=interpreter, inp=inp, out=out):
            interpreter.set_tensor(inp["index"], x)
            interpreter.invoke()
            return interpreter.get_tensor(out["index"])

        yield label, run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--student", default=None, help="a student run folder (its trained weights)")
    args = parser.parse_args()
    runtime.cpu_only(args.threads)
    import keras

    shape = (args.size, args.size, 3)
    student = models.resnet18(shape)
    if args.student:
        student.set_weights(keras.models.load_model(os.path.join(args.student, "model.keras")).get_weights())
    networks = {"student": student, "teacher": models.teacher(None, True, shape)}
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (args.images, 1, *shape)).astype("float32")
    calibration = rng.uniform(0, 1, (16, *shape)).astype("float32")
    print(f"{args.images} images at {args.size} px, batch 1, {args.threads} threads, {timing.cpu_model()}")
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for fmt, quantize in PATHS:
            for net, model in networks.items():
                if fmt == "keras":
                    infer = keras.ops.convert_to_numpy
                    call = __import__("tensorflow").function(lambda x, m=model: m(x, training=False))
                    results[(net, "keras")] = _time(lambda x: infer(call(x)), images)
                    continue
                path = os.path.join(folder, f"{net}-{quantize}.{fmt}")
                export.export_model(model, path, fmt, quantize, calibration)
                if fmt == "tflite" and quantize == "int8":
                    for label, run in _tflite_variants(path, args.threads):
                        results[(net, f"tflite int8, {label}")] = _time(run, images)
                    continue
                run = export.load_runtime(path, args.threads)
                results[(net, f"{fmt} {quantize}")] = _time(run, list(images))
                print(f"  {net:8s} {fmt} {quantize}: {results[(net, f'{fmt} {quantize}')]:.1f} ms", flush=True)
    teacher_keras = results[("teacher", "keras")]
    print(f"\n| path | student ms | teacher ms | speed-up vs Keras teacher | like for like |")
    print("|---|---|---|---|---|")
    for path in dict.fromkeys(k[1] for k in results):
        s, t = results.get(("student", path)), results.get(("teacher", path))
        print(f"| {path} | {s:.1f} | {t:.1f} | {teacher_keras / s:.2f}x | {t / s:.2f}x |")


if __name__ == "__main__":
    main()
