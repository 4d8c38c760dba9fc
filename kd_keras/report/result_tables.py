"""``kd-keras report``: every table and figure of both papers, from the run folders.

Nothing is trained. Missing runs leave their cells marked "not run"; the same run
folders give byte-identical tables.
"""

import logging
import os

import numpy as np
import pandas as pd

from kd_keras.report import figures, paper_values as paper
from kd_keras.report.calibration import by_generation, calibration_table
from kd_keras.report.claims import claims_table, loss_difference
from kd_keras.report.frame import load_runs  # noqa: F401  (the report's public data source)
from kd_keras.report.run_record import run_record_table
from kd_keras.replay import layout
from kd_keras.replay.run_files import read_json
from kd_keras.report.tables import NOT_RUN, Table, difference, mean_std

_log = logging.getLogger(__name__)

NETWORKS = layout.NETWORKS
KD_SETS = {
    "train": "train (best during training; acc vs true labels)", "valid": "valid (best during training)",
    "test": "test, no augmentation", "test_aug": "test, with augmentation, best of K draws",
    "test_aug_mean": "test, with augmentation, mean of K draws",
    "test_teacher": "test vs teacher labels, no aug", "test_aug_teacher": "test vs teacher labels, aug, best of K draws",
    "train_targets": "train acc vs distillation targets (best during training)",
}
# Rows that compare with the paper's number of another row (the paper's K is not stated).
_PAPER_ROW = {"test_aug_mean": "test_aug", "train_targets": None}


def _load(path):
    return read_json(path) if os.path.exists(path) else None


def kd_groups(runs_dir):
    """``{group: {seed_dir: {run_name: metrics}}}`` for every distillation group under ``runs_dir``."""
    return {group: {seed_dir: {name: read_json(os.path.join(seed_dir, name, "metrics.json")) for name in names}
                    for seed_dir, names in seeds.items()}
            for group, seeds in layout.distillation_groups(runs_dir).items()}


def generations(seeds, kind):
    """The generations 0..K of ``kind``'s chain that some seed has run (K = 0: the student alone)."""
    found = {k for found in seeds.values() for k in layout.chain_generations(found, kind)}
    return list(range(max(found, default=0) + 1))


# Rows of the teacher/students table -> the frame's split names (see kd_keras.frame).
_FRAME_SPLIT = {"train": "train_best", "valid": "valid_best", "test": "test", "test_aug": "test_augmented",
                "test_aug_mean": "test_augmented_mean", "test_teacher": "test_teacher_labels",
                "test_aug_teacher": "test_teacher_labels_augmented", "train_targets": "train_targets_best"}


def frame_values(frame, run, split, column):
    """``column`` of ``run`` on ``split`` for each seed, in seed order; None where a value is missing."""
    rows = frame[(frame["run"] == run) & (frame["split"] == split)].sort_values("seed", kind="stable")
    return [None if pd.isna(v) else float(v) for v in rows[column]]


def _per_seed(seeds, run_name, fn):
    return [fn(runs.get(run_name)) for runs in seeds.values() if run_name in runs]


def _scale_caption(seeds):
    first = next(iter(seeds.values()))
    some = first.get("teacher") or next(iter(first.values()))
    n = {s: some["eval"][s]["n"] for s in ("train", "valid", "test")} if "eval" in some else {}
    config = _load(os.path.join(next(iter(seeds)), "teacher", "config.json")) or {}
    preset = config.get("preset", {})
    size = preset.get("image_size", "?")
    teacher_size = preset.get("teacher_image_size") or size
    draws = (some.get("test_augmented") or {}).get("repeats", preset.get("augmented_evaluations", "?"))
    # The students' own settings: --budget-minutes gives them other epochs than the teacher's preset says.
    student = _load(os.path.join(next(iter(seeds)), layout.student_run("classic"), "config.json")) or config
    epochs = f"{student.get('preset', {}).get('student_epochs', '?')} student epochs"
    if student.get("budget"):
        epochs += f" (sized to --budget-minutes {student['budget']['minutes']:g})"
    return (f"Ours: preset `{preset.get('name', '?')}`, students {size} px, teacher "
            f"`{config.get('backbone', 'resnet50')}` at {teacher_size} px with weights `{config.get('weights', '?')}`, "
            f"train/valid/test = {n.get('train', '?')}/{n.get('valid', '?')}/{n.get('test', '?')} images, "
            f"{epochs}, K = {draws} augmented draws, seeds: {len(seeds)}, "
            f"data `{config.get('data_dir', '?')}`. Paper: ResNet-50 teacher with ImageNet weights, 224 px, "
            f"17,500/3,750/3,750 images, 100 student epochs, K not stated.")


def kd_tables(seeds, caption, frame):
    """The distillation tables of one experiment; numbers from ``frame`` (:func:`load_runs`)."""
    results = Table("teacher_students", "Teacher and students: loss and accuracy",
                    ["network", "set", "loss paper", "loss ours", "Δ loss", "acc paper", "acc ours", "Δ acc"], caption)
    first = next(iter(seeds.values()))
    k = next((m["test_augmented"].get("repeats") for m in first.values() if "test_augmented" in m), "K")
    for net, run in NETWORKS.items():
        for which, label in KD_SETS.items():
            label = label.replace("K draws", f"K = {k} draws")
            paper_row = _PAPER_ROW.get(which, which)
            if which == "train_targets" and net in ("teacher", "classic"):
                continue
            if paper_row is not None and (net, paper_row) not in paper.KD_TABLE:
                continue
            p_loss, p_acc = paper.KD_TABLE[(net, paper_row)] if paper_row else (None, None)
            losses_ = frame_values(frame, run, _FRAME_SPLIT[which], "loss")
            accs = frame_values(frame, run, _FRAME_SPLIT[which], "accuracy")
            loss_cell = "" if which == "train_targets" else mean_std(losses_)  # the targets' loss is the train row's
            results.add(net, label, "" if p_loss is None else p_loss, loss_cell,
                        difference(losses_, p_loss), "" if p_acc is None else p_acc, mean_std(accs),
                        difference(accs, p_acc))
    unc = Table("uncertainty", "Accuracy and degree of uncertainty (formula 15)",
                ["network", "set", "acc paper", "acc ours", "Δ acc", "unc paper", "unc ours", "Δ unc"], caption)
    for net, run in NETWORKS.items():
        for s in ("train", "valid", "test"):
            p_acc, p_unc = paper.UNCERTAINTY[net][s]
            accs, uncs = frame_values(frame, run, s, "accuracy"), frame_values(frame, run, s, "uncertainty")
            unc.add(net, s, p_acc, mean_std(accs), difference(accs, p_acc),
                    p_unc, mean_std(uncs, 5), difference(uncs, p_unc, 5))
    hists = []
    for s in ("test", "valid", "train"):
        table = Table(f"histogram_{s}", f"Histogram of predictions on {s} (relative frequency, 20 bins)",
                      ["bin"] + [f"{net} {who}" for net in NETWORKS for who in ("paper", "ours")], caption)
        ours = {net: _per_seed(seeds, run, lambda m: m["eval"][s]["histogram"]) for net, run in NETWORKS.items()}
        for b in range(20):
            cells = []
            for net in NETWORKS:
                cells += [f"{paper.HISTOGRAMS[s][net][b]:.5f}", mean_std([h[b] for h in ours[net]], 5)]
            table.add(f"[{b * 0.05:.2f}, {(b + 1) * 0.05:.2f}{']' if b == 19 else ')'}", *cells)
        hists.append(table)
    chain = Table("chains", "Recursive distillation: accuracy / uncertainty per generation",
                  ["chain", "generation", "set", "acc paper", "acc ours", "unc paper", "unc ours"], caption)
    for kind in layout.CHAINS:
        for k in sorted(set(generations(seeds, kind)) | set(range(len(paper.CHAINS[kind])))):
            run = layout.chain_run(kind, k)
            for s in ("train", "valid", "test"):
                p_acc, p_unc = paper.CHAINS[kind][k][s] if k < len(paper.CHAINS[kind]) else ("", "")
                accs, uncs = frame_values(frame, run, s, "accuracy"), frame_values(frame, run, s, "uncertainty")
                chain.add(kind, k, s, p_acc, mean_std(accs), p_unc, mean_std(uncs, 5))
    epochs = Table("epochs_to_best", "Epoch of the best validation accuracy",
                   ["network", "paper (of 100)", "ours"], caption)
    for net in ("classic", "hard", "soft"):
        ours = _per_seed(seeds, NETWORKS[net], lambda m: m["best"].get("best_epoch"))
        total = _per_seed(seeds, NETWORKS[net], lambda m: m["best"].get("epochs"))
        cell = f"{mean_std(ours, 1)} of {total[0]}" if ours else NOT_RUN
        epochs.add(net, paper.EPOCHS_TO_BEST.get(net, "not reported"), cell)
    return [results, unc, *hists, chain, epochs]


def timing_table(seeds, caption):
    table = Table("timing", "Inference time per image at batch size 1 (CPU)",
                  ["network", "paper s/img", "ours ms/img model only", "ours ms/img end to end"],
                  caption)
    runs_ = [r["timing"] for r in seeds.values() if "timing" in r]
    extra = sorted({k[len("teacher_"):-len("_ms")] for r in runs_ for k in r
                    if k.startswith("teacher_") and k.endswith("_ms") and k != "teacher_ms"})
    for net, label in [("teacher", "teacher (ResNet-50)"), ("student", "student (ResNet-18)")] + [
            (f"teacher_{name}", f"teacher ({name}, the cpu replay's)") for name in extra]:
        table.add(label, paper.LATENCY_S.get(net, "not in paper"), mean_std([r.get(f"{net}_ms") for r in runs_], 2),
                  mean_std([r.get(f"{net}_ms_end_to_end") for r in runs_], 2))
    table.add("speedup (ResNet-50 / ResNet-18)", paper.SPEEDUP, mean_std([r["speedup"] for r in runs_], 2),
              mean_std([r["speedup_end_to_end"] for r in runs_], 2))
    if runs_:
        first = runs_[0]
        table.caption += (f" Timing: {first['images']} test images at {first['size']} px, batch size 1, random "
                          f"weights, on {first.get('device', 'CPU')} ({first.get('cpu_model', 'CPU model not recorded')}, "
                          f"{first.get('cpu_threads', '?')} threads). Paper: 3,750 images on a 2-core i7-7500U; "
                          f"batch size and whether loading was timed: paper: not stated.")
        if extra:
            table.caption += (" An EfficientNet-Lite0 teacher (about 0.4 GFLOP) is cheaper than its ResNet-18 "
                              "student (about 1.8 GFLOP): the cpu replay tests the accuracy claims, not the speed motive.")
    return table


def exported_results(seeds):
    """``[(run, export json, timing json or None)]`` for every exported model under the seed folders."""
    found = []
    for seed_dir in seeds:
        for path in layout.exported_models(seed_dir):
            timing_path = path[: -len(".json")] + ".timing.json"
            found.append((os.path.basename(os.path.dirname(path)), read_json(path), _load(timing_path)))
    return found


def deployment_table(exported, caption):
    """Every exported student (:func:`exported_results`): size, accuracy drop, latency beside the Keras teacher's."""
    table = Table("deployment", "Deployed students: exported file, accuracy on the run's test split, latency",
                  ["run", "format", "quantization", "input px", "MB", "test acc (Keras)", "test acc (exported)",
                   "drop (Keras − exported, points)", "ms/img (exported)", "ms/img (Keras teacher)", "speed-up vs Keras teacher"],
                  caption + " Latency at batch size 1 from `kd-keras bench --exported` on the same images; "
                  "paper: 4.95x (Keras ResNet-18 against Keras ResNet-50 on a 2-core i7-7500U).")
    for run, blob, timed in exported:
        table.add(run, blob["format"], blob["quantization"], blob["image_size"], f"{blob['bytes'] / 1e6:.1f}",
                  f"{blob['keras_test_accuracy']:.4f}", f"{blob['test_accuracy']:.4f}",
                  f"{100 * blob['accuracy_drop']:+.2f}", f"{timed['exported_ms']:.2f}" if timed else NOT_RUN,
                  f"{timed['teacher_ms']:.2f}" if timed else NOT_RUN,
                  f"{timed['exported_speedup']:.2f}x" if timed else NOT_RUN)
    return table


loss_groups = layout.loss_groups  # {preset: {dataset: {loss: {seed: run_dir}}}} of finished loss-study runs


def _fine_tuned(datasets):
    """Whether the loss-study runs trained the whole backbone (the first run's config.json says)."""
    first = next((d for by_loss in datasets.values() for by_seed in by_loss.values() for d in by_seed.values()), None)
    return bool(first and (_load(os.path.join(first, "config.json")) or {}).get("fine_tune"))


def loss_table(preset, datasets, frame):
    """Table 4's layout: losses by datasets, mean ± std over seeds, and each loss minus the best.

    The difference is paired by seed on the shared valid images, with the t interval of
    :mod:`kd_keras.statistics` (seeds as the unit, each image counted once).
    """
    names = sorted(datasets)
    mode = "fine-tuned backbone" if _fine_tuned(datasets) else "frozen backbone features"
    table = Table(f"losses_{preset}_{mode.split()[0].replace('-', '_')}",
                  f"Loss functions: valid accuracy after training, {mode} (preset {preset})",
                  ["loss"] + [f"{d} {what}" for d in names for what in ("ours", "thesis", "minus best, pts (95 % interval)")],
                  "Minus best: this loss's valid accuracy minus the best mean loss's, per seed on the same valid "
                  "images; Student's t interval over the seed x image table (seed, image and interaction each counted "
                  "once, Welch-Satterthwaite degrees of freedom), conditional on the shared training split.")
    ours = frame[frame["experiment"].str.startswith(f"losses-{preset}/")]
    settings = sorted({f"`{b}` with weights `{w}` at {s} px" for b, w, s in
                       zip(ours["backbone"], ours["weights"], ours["image_size"])})
    table.caption = (f"Ours: {'; '.join(settings)}, {mode}. Thesis: ResNet-50, ImageNet weights, fine-tuned. "
                     + table.caption)
    losses_ = sorted({loss for d in names for loss in datasets[d]})
    cells = {loss: [] for loss in losses_}
    for d in names:
        rows = frame[frame["experiment"] == f"losses-{preset}/{d}"]
        acc = {loss: frame_values(rows, loss, "valid", "accuracy") for loss in losses_}
        ranked = [loss for loss in losses_ if acc[loss]]
        best = max(ranked, key=lambda loss: np.mean(acc[loss])) if ranked else None
        for loss in losses_:
            versus = ""
            if loss == best:
                versus = "best"
            elif best and acc[loss]:
                versus = loss_difference(datasets[d][loss], datasets[d][best]).text(unit="", digits=1, mcnemar=False)
            thesis = paper.thesis_accuracy(loss, d)
            cells[loss] += [mean_std(acc[loss], 3), "" if thesis is None else f"{thesis:.2f}", versus]
    for loss in losses_:
        table.add(loss, *cells[loss])
    return table


def augmented_draws_table(seeds, frame, caption):
    """The spread of the K augmented test draws within each seed, beside the spread across seeds."""
    table = Table("augmented_draws", "Augmented test accuracy: the K draws within a seed and across seeds",
                  ["network", "mean of K draws (± SD across seeds)", "SD of the K draws within each seed",
                   "best of K (± SD across seeds)"], caption)
    for net, run in NETWORKS.items():
        within = _per_seed(seeds, run, lambda m: (m.get("test_augmented") or {}).get("accuracy_std"))
        table.add(net, mean_std(frame_values(frame, run, "test_augmented_mean", "accuracy")),
                  ", ".join(f"{v:.4f}" for v in within if v is not None) or NOT_RUN,
                  mean_std(frame_values(frame, run, "test_augmented", "accuracy")))
    return table


def summary_table(kd, loss_runs, frame, claims):
    """The headline numbers, paper beside ours, and how many claims hold: the README's results table."""
    verdicts = [row[-2] for row in claims.rows]
    counts = ", ".join(f"{verdicts.count(v)} {v}" for v in ("holds", "does not hold", "cannot tell at this scale"))
    table = Table("summary", "Summary: the papers' headline numbers beside ours",
                  ["experiment", "result", "paper", "ours (mean ± SD over seeds)", "seeds"],
                  f"Claims (results/claims.md): {counts}. Ours at the scale of each group's tables (their "
                  "captions give the images, epochs and backbones).")
    for group, seeds in kd.items():
        rows = frame[frame["experiment"] == group]
        for net, run in NETWORKS.items():
            accs = frame_values(rows, run, "test", "accuracy")
            table.add(f"B ({group})", f"{net} test accuracy", f"{paper.KD_TABLE[(net, 'test')][1]:.4f}",
                      mean_std(accs), len(accs))
        for kind in layout.CHAINS:
            last = generations(seeds, kind)[-1]  # the paper's 6, unless the runs have another number
            if last == 0:
                continue
            accs = frame_values(rows, layout.chain_run(kind, last), "test", "accuracy")
            paper_value = f"{paper.CHAINS[kind][last]['test'][0]:.4f}" if last < len(paper.CHAINS[kind]) else ""
            table.add(f"B ({group})", f"{kind} chain, generation {last}, test accuracy", paper_value,
                      mean_std(accs), len(accs))
        timed = _per_seed(seeds, "timing", lambda m: m.get("speedup_end_to_end"))
        table.add(f"B ({group})", "speed-up of ResNet-18 over ResNet-50, end to end", f"{paper.SPEEDUP:.2f}",
                  mean_std(timed, 2), len(timed))
    for preset, datasets in loss_runs.items():
        group = f"A ({preset}, {'fine-tuned' if _fine_tuned(datasets) else 'frozen'})"
        for name in sorted(datasets):
            rows = frame[frame["experiment"] == f"losses-{preset}/{name}"]
            for loss in sorted(datasets[name]):
                accs = frame_values(rows, loss, "valid", "accuracy")
                thesis = paper.thesis_accuracy(loss, name)
                table.add(group, f"{name}: {loss} valid accuracy", "" if thesis is None else f"{thesis:.2f}",
                          mean_std(accs, 3), len(accs))
    return table


def write_report(runs_dir="runs", out="results", figures_dir="figures", latex=False, log=None):
    """Writes every table (Markdown, CSV, LaTeX) and figure (none with ``figures_dir=None``); returns the paths."""
    written = []
    frame = load_runs(runs_dir)
    kd, loss_runs = kd_groups(runs_dir), loss_groups(runs_dir)
    for group, seeds in kd.items():
        caption = _scale_caption(seeds)
        rows = frame[frame["experiment"] == group]
        calibration = by_generation(seeds)  # read once from the predictions: for the table and the figure
        tables = kd_tables(seeds, caption, rows) + [augmented_draws_table(seeds, rows, caption), timing_table(seeds, caption),
                                                    calibration_table(seeds, caption, calibration),
                                                    run_record_table(seeds, caption)]
        for table in tables:
            written += table.write(os.path.join(out, group), latex)
        exported = exported_results(seeds)
        deployed = deployment_table(exported, caption)
        if deployed.rows:
            written += deployed.write(os.path.join(out, group), latex)
        timed = [(f"{blob['format']} {blob['quantization']}", t) for _, blob, t in exported if t]
        if figures_dir is not None:
            written += figures.kd_figures(seeds, os.path.join(figures_dir, group), timed, calibration)
    for preset, datasets in loss_runs.items():
        written += loss_table(preset, datasets, frame).write(out, latex)
        if figures_dir is not None:
            written += figures.loss_figures(datasets, os.path.join(figures_dir, f"losses-{preset}"))
    claims = claims_table(kd, loss_runs, paper.LOSS_TABLE)
    if claims.rows:
        written += claims.write(out, latex)
    if kd or loss_runs:
        written += summary_table(kd, loss_runs, frame, claims).write(out, latex)
    if not written:
        (log or _log.info)(f"no finished runs under {runs_dir}; nothing to report")
    return written
