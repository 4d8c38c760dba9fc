"""The ``kd-keras`` command: thin click wrappers over the library.

Every problem with the user's input ends in one line, ``error: ...``, and exit code 2.
"""

import errno
import json
import os
import sys
import time

import click

from kd_keras.errors import UserError
from kd_keras.replay import layout, run_files


def _seeds(ctx, param, value):
    return [int(v) for v in value] if value else [0]


def common(f):
    """Options shared by the training commands."""
    options = [
        click.option("--preset", default="cpu", show_default=True, help="paper | cpu | gpu | demo | smoke"),
        click.option("--data-dir", default="synthetic", show_default=True,
                     help="image folder, Kaggle layout, 'synthetic[:CLASSES[:N]]' or 'tfds:cats_vs_dogs'"),
        click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False)),
        click.option("--seed", "seeds", multiple=True, type=int, callback=_seeds,
                     help="repeat with each seed: --seed 0 --seed 1, or --seeds 0 1 2"),
        click.option("--weights", default="imagenet", show_default=True,
                     help="teacher/backbone weights: imagenet | none | PATH"),
        click.option("--teacher-backbone", default=None,
                     help="resnet50 | efficientnet-lite0 | any keras.applications name (default: the preset's)"),
        click.option("--batch-size", type=int, default=None, help="override the preset's batch size"),
        click.option("--fine-tune-teacher", is_flag=True,
                     help="train the whole ResNet-50 instead of the head on frozen features"),
        click.option("--deterministic", is_flag=True, help="seeded TensorFlow op determinism"),
        click.option("--strategy", type=click.Choice(["default", "mirrored", "multiworker"]), default="default",
                     show_default=True,
                     help="mirrored: every local GPU (tf.distribute on TensorFlow, keras.distribution.DataParallel "
                          "on JAX); multiworker: TF_CONFIG's machines (TensorFlow)"),
        click.option("--mixed-precision", type=click.Choice(["off", "float16", "bfloat16"]), default=None,
                     help="compute in float16/bfloat16; losses stay float32 (default: the preset's)"),
        click.option("--quiet", is_flag=True, help="no progress bars"),
        click.option("--stop-after", type=float, default=None, metavar="MINUTES",
                     help="stop at the first epoch's end after this many minutes; the same command resumes"),
        click.option("--tensorboard", is_flag=True, help="also write TensorBoard logs into each run folder (TensorFlow)"),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def budgeted(f):
    """``--budget-minutes``: the students' epochs sized to a time slot (:mod:`kd_keras.budget`)."""
    return click.option(
        "--budget-minutes", type=float, default=None, metavar="MINUTES",
        help="size the students' epochs by a short measured warm-up so that every student and generation of a "
             "seed finishes within MINUTES (per seed; the chosen epochs go into each run's config.json)")(f)


def _check_budget(minutes):
    if minutes is not None and not (0 < minutes < float("inf")):
        raise UserError(f"--budget-minutes must be a number of minutes > 0, got {minutes}")


def distillation(f):
    """Options of the commands that train students: whose teacher, which student."""
    options = [
        click.option("--teacher-model", default=None, metavar="PATH.keras",
                     help="your trained teacher (K probabilities, or one sigmoid for 2 classes) instead of "
                          "training one; it sees [0, 1] images at its own input size"),
        click.option("--student", "student_spec", default="resnet18", show_default=True,
                     help="resnet18 | any keras.applications name | PATH.keras"),
        click.option("--student-size", type=int, default=None, metavar="PX",
                     help="the students' input size (default: the preset's)"),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _experiments(preset, data_dir, runs_dir, seeds, weights, teacher_backbone, batch_size, fine_tune_teacher,
                 deterministic, strategy, mixed_precision, quiet, stop_after, tensorboard,
                 teacher_model=None, student_spec="resnet18", student_size=None):
    import dataclasses

    from kd_keras.replay import presets
    from kd_keras.weights import resolve_weights

    # Everything that needs no TensorFlow is checked first: a wrong value is answered at once.
    chosen = presets.get(preset)
    _check_data_dir(data_dir)
    if batch_size is not None:
        if batch_size < 1:
            raise UserError(f"--batch-size must be >= 1, got {batch_size}")
        chosen = dataclasses.replace(chosen, batch_size=batch_size)
    if fine_tune_teacher:
        chosen = dataclasses.replace(chosen, teacher_fine_tune=True)
    if stop_after is not None and not (0 < stop_after < float("inf")):  # nan and inf fail too
        raise UserError(f"--stop-after must be a number of minutes > 0, got {stop_after}")
    deadline = None if stop_after is None else time.time() + 60 * stop_after
    resolve_weights(weights)
    if student_size is not None and student_size < 32:
        raise UserError(f"--student-size must be >= 32, got {student_size}")
    if teacher_model is not None and not os.path.isfile(teacher_model):
        raise UserError(f"--teacher-model: no such file: {teacher_model}")

    from kd_keras import backbones, runtime, user_models
    from kd_keras.replay.experiment import Experiment

    if teacher_backbone is not None:
        teacher_backbone = backbones.check_name(teacher_backbone)
    student_spec = user_models.check_student(student_spec)
    if tensorboard:
        runtime.require_tensorflow("--tensorboard (Keras writes its logs with tf.summary)")
        import importlib.util

        if importlib.util.find_spec("tensorboard") is None:
            raise UserError("--tensorboard needs the tensorboard package: pip install 'kd_keras[tensorboard]'")
    distribute = runtime.configure(deterministic=deterministic, strategy=strategy,
                                   mixed_precision=mixed_precision or chosen.mixed_precision,
                                   compile_cache=os.path.join(layout.cache_folder(runs_dir), "xla"))
    return [Experiment(chosen, data_dir, runs_dir, seed, weights, distribute, _verbosity(quiet), teacher_backbone,
                       deadline, student=student_spec, teacher_model=teacher_model, student_size=student_size,
                       tensorboard=tensorboard) for seed in seeds]


def _check_data_dir(data_dir):
    """A plain folder that does not exist is an error before anything is loaded."""
    if data_dir == "synthetic" or data_dir.startswith(("synthetic:", "tfds:")):
        return
    if not os.path.isdir(data_dir):
        raise UserError(f"data folder not found: {data_dir}")


def _verbosity(quiet):
    """Keras's progress bar on a terminal, a line per epoch in a log file, nothing with --quiet."""
    return 0 if quiet else (1 if sys.stdout.isatty() else 2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kd_keras")
def cli():
    """Knowledge distillation (ResNet-50 -> ResNet-18) and loss functions for small image sets."""


@cli.command("data")
@click.argument("data_dir")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.option("--runs-dir", default="runs", show_default=True, help="where synthetic/tfds data are made")
def data_command(data_dir, as_json, runs_dir):
    """Count images per split and class, and name the unreadable files."""
    from kd_keras import data, sources

    dataset = data.scan(sources.resolve_source(data_dir, layout.cache_folder(runs_dir)))
    from kd_keras import input_pipeline  # TensorFlow decodes; loaded only once the folder is valid

    skipped = []
    for split, items in dataset.splits.items():
        _, kept, bad = input_pipeline.decode_images([p for p, _ in items], 8, split, log=lambda *_: None)
        skipped += bad
        dataset.splits[split] = [items[i] for i in kept]
    counts = dataset.counts()
    if as_json:
        click.echo(json.dumps({"splits": counts, "skipped": skipped}))
        return
    for split, per_class in counts.items():
        click.echo(f"{split}: {sum(per_class.values())} images")
        for name, n in per_class.items():
            click.echo(f"  {name}: {n}")
    click.echo(f"skipped: {len(skipped)}")
    for line in skipped:
        click.echo(f"  {line}")


@cli.command()
@common
def teacher(**options):
    """Train the teacher (ResNet-50, or the preset's backbone)."""
    experiments = _experiments(**options)
    from kd_keras.replay.teacher import train_teacher

    for exp in experiments:
        click.echo(train_teacher(exp))


@cli.command()
@click.option("--mode", type=click.Choice(["classic", "hard", "soft"]), required=True)
@click.option("--teacher", "teacher_dir", default=None, help="the teacher's run folder (default: this preset's)")
@common
@distillation
def student(mode, teacher_dir, **options):
    """Train a student (ResNet-18 by default) on true, hard or soft teacher labels."""
    if teacher_dir and options["teacher_model"]:
        raise UserError("give --teacher (a run folder) or --teacher-model (a .keras file), not both")
    experiments = _experiments(**options)
    from kd_keras.replay.students import train_student
    from kd_keras.replay.teacher import import_teacher

    for exp in experiments:
        parent = teacher_dir or (import_teacher(exp, exp.teacher_model) if exp.teacher_model
                                 else exp.run_dir(layout.TEACHER))
        click.echo(train_student(exp, mode, parent))


@cli.command()
@click.option("--generations", default=6, show_default=True, type=int)
@click.option("--chain", type=click.Choice(["hard", "soft", "both"]), default="both", show_default=True)
@budgeted
@common
@distillation
def recursive(generations, chain, budget_minutes, **options):
    """Recursive distillation: each generation learns from the previous one."""
    started = time.time()
    if generations < 1:
        raise UserError(f"--generations must be >= 1, got {generations}")
    _check_budget(budget_minutes)
    experiments = _experiments(**options)
    from kd_keras.replay import paper_b

    for exp in experiments:
        paper_b.chains(exp, generations, ("hard", "soft") if chain == "both" else (chain,), budget_minutes, started)
        started = time.time()  # the budget is per seed


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON (last line)")
@click.option("--images", default=None, type=int, help="number of test images (default: the preset's)")
@click.option("--threads", default=None, type=int, help="CPU threads (the paper's CPU had 2 cores; default: all)")
@click.option("--student", "student_dir", default=None, help="a student run folder: time its trained model")
@click.option("--exported", default=None, help="an exported student (.tflite/.onnx): time it in its runtime too")
@common
def bench(as_json, images, threads, student_dir, exported, **options):
    """Per-image CPU latency of teacher and student at batch size 1 (GPUs hidden)."""
    if images is not None and images < 1:
        raise UserError(f"--images must be >= 1, got {images}")
    if threads is not None and threads < 1:
        raise UserError(f"--threads must be >= 1, got {threads}")
    from kd_keras.replay import paper_b
    from kd_keras import runtime

    for path in filter(None, (student_dir, exported)):
        if not os.path.exists(path):
            raise UserError(f"not found: {path}")
    if exported and not os.path.exists(exported.rstrip("/") + ".json"):
        raise UserError(f"{exported} has no .json beside it; make it with kd-keras export")
    runtime.cpu_only(threads)
    exp = _experiments(**options)[0]
    run_exported = None
    if exported:
        from kd_keras.deploy.export import load_runtime

        run_exported = load_runtime(exported, threads)
    result = paper_b.timing_run(exp, images, student_dir, exported, run_exported)
    click.echo(json.dumps(result) if as_json else "\n".join(f"{k}: {v}" for k, v in result.items()))


@cli.command()
@click.option("--generations", default=6, show_default=True, type=int)
@click.option("--report/--no-report", default=True,
              help="write tables and figures into RUNS_DIR/results and RUNS_DIR/figures at the end")
@click.option("--plan", "plan_only", is_flag=True,
              help="print what the replay will do and its estimated minutes (a short warm-up), train nothing")
@budgeted
@common
@distillation
def reproduce(generations, report, plan_only, budget_minutes, **options):
    """Paper B end to end: teacher, three students, both chains, timing, report."""
    started = time.time()
    if generations < 1:
        raise UserError(f"--generations must be >= 1, got {generations}")
    _check_budget(budget_minutes)
    experiments = _experiments(**options)
    from kd_keras.replay import paper_b, plan
    from kd_keras import report as report_module

    if plan_only or experiments[0].preset.estimate_before_run:
        minutes = plan.plan(experiments[0], generations, log=click.echo)
        if len(experiments) > 1:
            click.echo(f"  {len(experiments)} seeds: about {len(experiments) * minutes['total']:.0f} min in all")
    if plan_only:
        return
    for exp in experiments:
        paper_b.reproduce(exp, generations, budget_minutes, started)
        started = time.time()  # the budget is per seed
    if report:
        runs_dir = options["runs_dir"]
        written = report_module.write_report(runs_dir, os.path.join(runs_dir, "results"),
                                             os.path.join(runs_dir, "figures"))
        click.echo(f"report: {len(written)} tables and figures in {os.path.join(runs_dir, 'results')} and "
                   f"{os.path.join(runs_dir, 'figures')}")
    for exp in experiments:
        click.echo("\n".join(paper_b.summary(exp, generations)))


@cli.command("export")
@click.argument("run_dir")
@click.option("--format", "fmt", type=click.Choice(["tflite", "onnx", "saved_model"]), default="tflite",
              show_default=True)
@click.option("--quantize", type=click.Choice(["none", "float16", "dynamic", "int8"]), default="none",
              show_default=True, help="int8 calibrates on the run's own training images")
@click.option("--out", default=None, help="the exported file (default: inside RUN_DIR)")
@click.option("--image-size", type=int, default=None,
              help="export a ResNet-18 student at another input size, e.g. 224 for the paper's timing")
def export_command(run_dir, fmt, quantize, out, image_size):
    """Export a run's best model, score it on the run's test split, write <file>.json beside it."""
    if not os.path.isfile(os.path.join(run_dir, "metrics.json")):
        raise UserError(f"{run_dir} is not a finished run (no metrics.json)")
    from kd_keras.deploy import export
    from kd_keras import runtime

    runtime.require_tensorflow("kd-keras export (the TFLite, ONNX and SavedModel converters)")
    export.check_choice(fmt, quantize)
    if image_size is not None and image_size < 32:
        raise UserError(f"--image-size must be >= 32, got {image_size}")
    path = export.export_run(run_dir, fmt, quantize, out, image_size=image_size, log=click.echo)
    click.echo(json.dumps(run_files.read_json(path.rstrip("/") + ".json")))


@cli.command("losses")
@click.option("--data-dir", "data_dirs", multiple=True, required=True, help="a class-folder dataset (repeatable)")
@click.option("--loss", "loss_names", multiple=True, default=("softmax", "cosine", "am-softmax"), show_default=True,
              help="softmax | cosine | am-softmax | hinge | huber | l1 | l2 | l-softmax (repeatable)")
@click.option("--backbone", default=None,
              help="resnet50 | efficientnet-lite0 | any keras.applications name (default: the preset's)")
@click.option("--preset", default="cpu", show_default=True, help="paper | cpu | gpu | demo | smoke")
@click.option("--seed", "seeds", multiple=True, type=int, callback=_seeds, help="--seeds 0 1 2 repeats per seed")
@click.option("--weights", default="imagenet", show_default=True, help="backbone weights: imagenet | none | PATH.h5")
@click.option("--runs-dir", default="runs", show_default=True)
@click.option("--quiet", is_flag=True, help="no progress bars")
def losses_command(data_dirs, loss_names, backbone, preset, seeds, weights, runs_dir, quiet):
    """Paper A: compare losses on small class-folder datasets."""
    from kd_keras.loss_heads import LOSS_HEADS
    from kd_keras.replay import presets
    from kd_keras.weights import resolve_weights

    for name in loss_names:
        if name not in LOSS_HEADS:
            raise UserError(f"unknown loss {name!r}; choose from {', '.join(LOSS_HEADS)}")
    chosen = presets.get(preset)
    resolve_weights(weights)
    for data_dir in data_dirs:
        _check_data_dir(data_dir)
    from kd_keras.replay import paper_a

    if backbone is not None:
        from kd_keras import backbones

        backbone = backbones.check_name(backbone)
    paper_a.study_losses(list(data_dirs), list(loss_names), seeds, chosen, runs_dir,
                            backbone, weights, verbose=_verbosity(quiet))


@cli.command("pack")
@click.argument("data_dir")
@click.option("--image-size", type=int, required=True, help="the side N the images are stored at (the run's size)")
@click.option("--max-mib", type=float, required=True, help="the largest shard, in MiB")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="a new or empty folder")
@click.option("--quality", type=int, default=80, show_default=True, help="the encoder's quality, 1-100")
@click.option("--format", "image_format", type=click.Choice(["webp", "jpeg"]), default="webp", show_default=True)
@click.option("--runs-dir", default="runs", show_default=True, help="where synthetic/tfds data are made")
def pack_command(data_dir, image_size, max_mib, out, quality, image_format, runs_dir):
    """Pack a dataset into shards of at most --max-mib MiB, to carry to another machine.

    The pack reads like the original folder: --data-dir OUT and kd-keras data OUT.
    """
    _check_data_dir(data_dir)
    from kd_keras import pack, sources

    folder = sources.resolve_source(data_dir, layout.cache_folder(runs_dir))
    manifest = pack.pack(folder, out, image_size, max_mib, quality, image_format, log=click.echo)
    for shard in manifest["shards"]:
        click.echo(f"{os.path.join(out, shard['file'])}: {shard['images']} images, {shard['bytes'] / 2**20:.1f} MiB")
    click.echo(f"{os.path.join(out, pack.MANIFEST)}: {sum(s['images'] for s in manifest['shards'])} images in "
               f"{len(manifest['shards'])} shard(s), skipped {len(manifest['skipped'])}")


@cli.command("report")
@click.option("--runs-dir", default="runs", show_default=True)
@click.option("--out", default="results", show_default=True)
@click.option("--figures", default="figures", show_default=True)
@click.option("--latex", is_flag=True, help="also write LaTeX tables")
def report_command(runs_dir, out, figures, latex):
    """Regenerate every table and figure from the run folders (trains nothing)."""
    from kd_keras import report

    for path in report.write_report(runs_dir, out, figures, latex=latex):
        click.echo(path)


@cli.command("archive")
@click.option("--runs-dir", default="runs", show_default=True, help="the runs folder to archive from")
@click.option("--to", "to", default=os.path.join("results", "runs"), show_default=True,
              help="the archive: the small files of every finished run, no models")
def archive_command(runs_dir, to):
    """Copy every finished run's config, split, history, metrics and predictions into the archive."""
    from kd_keras.replay import archive

    if not os.path.isdir(runs_dir):
        raise UserError(f"--runs-dir {runs_dir} is not a folder")
    archive.archive_runs(runs_dir, to, log=click.echo)


def expand_seeds(argv):
    """Lets ``--seeds 0 1 2`` stand for ``--seed 0 --seed 1 --seed 2`` (click options take one value)."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] == "--seeds":
            i += 1
            while i < len(argv) and argv[i].lstrip("-").isdigit() and not argv[i].startswith("--"):
                out += ["--seed", argv[i]]
                i += 1
            continue
        out.append(argv[i])
        i += 1
    return out


def main(argv=None):
    """Entry point: ``error: ...`` and exit code 2 for any input problem, never a traceback.

    TensorFlow's defaults (quiet start-up, oneDNN on) are set here, before anything imports it:
    the command checks its input first and loads TensorFlow only for the work.
    """
    from kd_keras import quiet

    quiet.tensorflow_defaults()
    argv = expand_seeds(list(sys.argv[1:] if argv is None else argv))
    try:
        cli.main(args=argv, standalone_mode=False, prog_name="kd-keras")
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(2)
    except UserError as exc:
        click.echo(f"{getattr(exc, 'prefix', 'error')}: {exc}", err=True)
        sys.exit(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        click.echo("error: interrupted; run the same command again to resume", err=True)
        sys.exit(130)
    except OSError as exc:
        reason = _disk_problem(exc)
        if reason is None:
            raise
        click.echo(f"error: {reason}", err=True)
        sys.exit(2)


_DISK_ERRNOS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                errno.EACCES: "permission denied", errno.EROFS: "read-only file system"}


def _disk_problem(exc):
    """A one-line reason for a full, read-only or forbidden disk, or None for any other OSError."""
    text = str(exc)
    found = _DISK_ERRNOS.get(exc.errno) or next(
        (why for why in _DISK_ERRNOS.values() if why in text.lower()), None)
    if found is None and "errno = 28" in text:  # h5py's wording of ENOSPC
        found = _DISK_ERRNOS[errno.ENOSPC]
    if found is None:
        return None
    where = f" writing {exc.filename}" if getattr(exc, "filename", None) else ""
    return (f"{found}{where}; free space or choose another --runs-dir, then run the same command again "
            "(finished epochs and runs are kept)")


if __name__ == "__main__":
    main()
