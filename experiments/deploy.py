"""Deploy a student: export it as int8 ONNX at 224 px, then time it beside the Keras teacher.

    python experiments/deploy.py runs/cats_vs_dogs-cpu/seed0/student-soft [--format tflite]
"""

import os
import sys

from _run import run

if __name__ == "__main__":
    run_dir, options = sys.argv[1], sys.argv[2:]
    fmt = options[options.index("--format") + 1] if "--format" in options else "onnx"
    sys.argv = [sys.argv[0]]
    run(["export", run_dir, "--format", fmt, "--quantize", "int8", "--image-size", "224"], [])
    exported = os.path.join(run_dir, f"model-int8-224px.{fmt}")
    run(["bench", "--json", "--exported", exported, "--threads", "2"],
        [("--data-dir", "../shared/data/cats_vs_dogs"), ("--preset", "cpu")])
