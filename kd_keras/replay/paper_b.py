"""Paper B end to end: the order in which the runs of ``kd-keras reproduce`` are made."""

import os
import time

from kd_keras import data, models, sources
from kd_keras.replay import layout, provenance, run_files, students, teacher, timing
from kd_keras.errors import UserError
from kd_keras.replay.programs import Programs


def chains(exp, generations, kinds=layout.CHAINS, budget_minutes=None, started=None, programs=None):
    """The teacher, the three students and the recursive chains from the hard and the soft student.

    Args:
        budget_minutes: size the students' epochs so that all of this fits these minutes from
            ``started`` (:func:`kd_keras.replay.budget.size_students`); None trains the preset's epochs.
        started: a ``time.time()`` value, when the command started (default: now).
        programs: the compiled student programs (:class:`~kd_keras.replay.programs.Programs`), shared
            by every student and generation, and by the seeds that come after; None makes the seed's own.
    """
    programs = programs if programs is not None else Programs()
    teacher_dir = teacher.teacher_run(exp)
    if budget_minutes is not None:
        from kd_keras.replay import budget

        exp = budget.size_students(exp, teacher_dir, layout.student_runs(generations, kinds), budget_minutes,
                                   time.time() if started is None else started, programs=programs)
    student_dirs = {mode: students.train_student(exp, mode, teacher_dir, programs=programs) for mode in layout.MODES}
    return {kind: students.train_chain(exp, kind, student_dirs[kind], generations, programs=programs)
            for kind in kinds}


def timing_run(exp, images=None, student_dir=None, exported=None, run_exported=None):
    """Latency of teacher and student on the test images; saved as ``timing/metrics.json``.

    With ``student_dir`` its trained model is timed; with ``exported`` (a ``.tflite`` or
    ``.onnx`` file) and ``run_exported`` (the function that runs it,
    :func:`kd_keras.deploy.export.load_runtime`) the exported student too, at that file's
    input size, and the result is saved beside it as ``<file>.timing.json`` instead.
    """
    split_file = os.path.join(exp.run_dir(layout.TEACHER), "split.json")
    if os.path.exists(split_file):
        dataset = data.Dataset.load(split_file)
    else:
        folder = sources.resolve_source(exp.data_dir, exp.cache_dir)
        dataset = data.split(data.scan(folder), seed=exp.seed)
    paths = [path for path, _ in dataset.splits["test"]][: images or exp.preset.timing_images]
    size, student = exp.preset.timing_size, None
    if exported:
        size = run_files.read_json(exported.rstrip("/") + ".json")["image_size"]
    if student_dir and not os.path.exists(os.path.join(student_dir, "model.keras")):
        raise UserError(f"{student_dir} has no model.keras; pass a finished student run")
    source = student_dir or (exported and os.path.dirname(os.path.abspath(exported)))
    if source and os.path.exists(os.path.join(source, "model.keras")):  # else a fresh ResNet-18: same latency
        import keras

        student = keras.models.load_model(os.path.join(source, "model.keras"))
        if student.input_shape[1] != size and student.name == "resnet18":  # same weights, the timing size
            student = models.resized_resnet18(student, size)
    result = timing.benchmark(paths, size, exp.backbone, log=exp.log, student=student,
                              exported=(os.path.basename(exported), run_exported) if exported else None)
    result["preset"] = exp.preset.name
    result["code"] = provenance.code_version()
    if exported:
        run_files.write_json(exported.rstrip("/") + ".timing.json", result)
        return result
    run_dir = exp.run_dir(layout.TIMING)
    os.makedirs(run_dir, exist_ok=True)
    run_files.write_json(os.path.join(run_dir, "config.json"),
                    {"name": layout.TIMING, "preset": exp.preset.name, "data_dir": exp.data_dir, "seed": exp.seed,
                     "images": len(paths), "size": size, "backend": result["backend"], "code": result["code"]})
    run_files.write_json(os.path.join(run_dir, "metrics.json"), result)
    return result


def reproduce(exp, generations=None, budget_minutes=None, started=None, programs=None):
    """Teacher, three students, both chains and the timing, in that order (the budget and programs: :func:`chains`)."""
    chains(exp, generations or exp.preset.generations, budget_minutes=budget_minutes, started=started,
           programs=programs)
    return timing_run(exp)


def summary(exp, generations=None):
    """A few lines for the terminal: each model's test accuracy and the measured speed-up."""
    generations = generations or exp.preset.generations
    names = [layout.TEACHER, *(layout.student_run(mode) for mode in layout.MODES),
             *(layout.chain_run(kind, generations) for kind in layout.CHAINS)]
    lines = [f"{os.path.dirname(exp.run_dir('teacher'))}: test accuracy"]
    for name in names:
        path = os.path.join(exp.run_dir(name), "metrics.json")
        if os.path.exists(path):
            m = run_files.read_json(path)["eval"]["test"]
            lines.append(f"  {name:<16} {m['accuracy']:.3f} ({m['n']} images)")
    timing_path = os.path.join(exp.run_dir(layout.TIMING), "metrics.json")
    if os.path.exists(timing_path):
        t = run_files.read_json(timing_path)
        lines.append(f"  CPU speed-up, ResNet-18 over ResNet-50 (the paper's pair), batch 1 at {t['size']} px: "
                     f"{t['speedup']:.2f}x ({t['student_ms']:.1f} against {t['teacher_ms']:.1f} ms per image)")
    return lines

