"""The ``kd-keras`` commands: flags only, each handing its work to the replay, the report or deploy.

Every problem with the user's input ends in one line, ``error: ...``, and exit code 2
(:func:`kd_keras.cli.main.main`).
"""

import json
import logging
import os
import time

import click

from kd_keras.cli import options as opts
from kd_keras.errors import UserError
from kd_keras.replay import layout, run_files


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

    if as_json:  # stdout is the JSON object alone
        logging.getLogger("kd_keras").setLevel(logging.WARNING)

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
@opts.common
def teacher(**options):
    """Train the teacher (ResNet-50, or the preset's backbone)."""
    experiments = opts.experiments(**options)
    from kd_keras.replay.teacher import train_teacher

    for exp in experiments:
        click.echo(train_teacher(exp))


@cli.command()
@click.option("--mode", type=click.Choice(layout.MODES), required=True)
@click.option("--teacher", "teacher_dirs", multiple=True, metavar="RUN",
              help="the teacher's run folder (default: this preset's); repeat it for an ensemble of finished "
                   "teacher runs on one split, their probabilities averaged")
@opts.common
@opts.distillation
def student(mode, teacher_dirs, **options):
    """Train a student (ResNet-18 by default) on true, hard or soft teacher labels."""
    if teacher_dirs and options["teacher_model"]:
        raise UserError("give --teacher (run folders) or --teacher-model (.keras files), not both")
    experiments = opts.experiments(**options, teacher_runs=len(teacher_dirs))
    from kd_keras.replay.imported_teacher import combine_teacher_runs, import_teacher
    from kd_keras.replay.students import train_student

    for exp in experiments:
        if len(teacher_dirs) > 1:
            parent = combine_teacher_runs(exp, teacher_dirs, exp.teacher_weights)
        elif teacher_dirs:
            parent = teacher_dirs[0]
        elif exp.teacher_model:
            parent = import_teacher(exp, exp.teacher_model, exp.teacher_weights)
        else:
            parent = exp.run_dir(layout.TEACHER)
        click.echo(train_student(exp, mode, parent))


@cli.command()
@click.option("--generations", default=None, type=int, help="new students per chain (default: the preset's, 6 as "
              "the paper's; the demo's 3)")
@click.option("--chain", type=click.Choice((*layout.CHAINS, "both")), default="both", show_default=True)
@opts.budgeted
@opts.common
@opts.distillation
def recursive(generations, chain, budget_minutes, **options):
    """Recursive distillation: each generation learns from the previous one."""
    started = time.time()
    if generations is not None and generations < 1:
        raise UserError(f"--generations must be >= 1, got {generations}")
    opts.check_budget(budget_minutes)
    experiments = opts.experiments(**options)
    generations = generations or experiments[0].preset.generations
    from kd_keras.replay import paper_b
    from kd_keras.replay.programs import Programs

    programs = Programs()  # compiled once, for every student and generation of every seed
    for exp in experiments:
        paper_b.chains(exp, generations, layout.CHAINS if chain == "both" else (chain,), budget_minutes, started,
                       programs)
        started = time.time()  # the budget is per seed


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON (last line)")
@click.option("--images", default=None, type=int, help="number of test images (default: the preset's)")
@click.option("--threads", default=None, type=int, help="CPU threads (the paper's CPU had 2 cores; default: all)")
@click.option("--student", "student_dir", default=None, help="a student run folder: time its trained model")
@click.option("--exported", default=None, help="an exported student (.tflite/.onnx): time it in its runtime too")
@opts.common
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
    exp = opts.experiments(**options)[0]
    run_exported = None
    if exported:
        from kd_keras.deploy.export import load_runtime

        run_exported = load_runtime(exported, threads)
    result = paper_b.timing_run(exp, images, student_dir, exported, run_exported)
    click.echo(json.dumps(result) if as_json else "\n".join(f"{k}: {v}" for k, v in result.items()))


@cli.command()
@click.option("--generations", default=None, type=int, help="new students per chain (default: the preset's, 6 as "
              "the paper's; the demo's 3)")
@click.option("--report/--no-report", default=True,
              help="write tables and figures into RUNS_DIR/results and RUNS_DIR/figures at the end")
@click.option("--plan", "plan_only", is_flag=True,
              help="print what the replay will do and its estimated minutes (a short warm-up), train nothing")
@opts.budgeted
@opts.common
@opts.distillation
def reproduce(generations, report, plan_only, budget_minutes, **options):
    """Paper B end to end: teacher, three students, both chains, timing, report."""
    started = time.time()
    if generations is not None and generations < 1:
        raise UserError(f"--generations must be >= 1, got {generations}")
    opts.check_budget(budget_minutes)
    experiments = opts.experiments(**options)
    generations = generations or experiments[0].preset.generations
    from kd_keras.replay import paper_b, plan
    from kd_keras import report as report_module

    if plan_only or experiments[0].preset.estimate_before_run:
        minutes = plan.plan(experiments[0], generations, log=click.echo)
        if len(experiments) > 1:
            click.echo(f"  {len(experiments)} seeds: about {len(experiments) * minutes['total']:.0f} min in all")
    if plan_only:
        return
    from kd_keras.replay.programs import Programs

    programs = Programs()  # compiled once, for every student and generation of every seed
    for exp in experiments:
        paper_b.reproduce(exp, generations, budget_minutes, started, programs)
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
@click.option("--loss", "loss_names", multiple=True, type=click.Choice(opts.LOSS_NAMES),
              default=("softmax", "cosine", "am-softmax"), show_default=True, help="repeatable")
@click.option("--backbone", default=None,
              help="resnet50 | efficientnet-lite0 | any keras.applications name (default: the preset's)")
@opts.preset_option
@opts.seeds_option
@click.option("--weights", default="imagenet", show_default=True, help="backbone weights: imagenet | none | PATH.h5")
@click.option("--runs-dir", default="runs", show_default=True)
@click.option("--quiet", is_flag=True, help="no progress bars")
def losses_command(data_dirs, loss_names, backbone, preset, settings, seeds, weights, runs_dir, quiet):
    """Paper A: compare losses on small class-folder datasets."""
    from kd_keras.weights import resolve_weights

    chosen = opts.chosen_preset(preset, settings)
    resolve_weights(weights)
    for data_dir in data_dirs:
        opts.check_data_dir(data_dir)
    from kd_keras.replay import paper_a

    if backbone is not None:
        from kd_keras import backbones

        backbone = backbones.check_name(backbone)
    paper_a.study_losses(list(data_dirs), list(loss_names), seeds, chosen, runs_dir, backbone, weights,
                         verbose=opts.verbosity(quiet))


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
    opts.check_data_dir(data_dir)
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


