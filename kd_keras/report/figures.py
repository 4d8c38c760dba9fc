"""The figures of both papers as PNG files.

Each is drawn on its own ``matplotlib.figure.Figure`` and saved from it: no pyplot, no global
backend, no screen needed, and nothing changed for a notebook that imports the report.
"""

import os

import numpy as np
from matplotlib.figure import Figure

from kd_keras.replay import layout
from kd_keras.replay.run_files import read_history
from kd_keras.report import paper_values as paper

NETWORKS = layout.NETWORKS
_PNG = {"Software": None}  # no version stamp: same runs, same bytes where matplotlib allows


def _save(fig, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata=_PNG)
    return path


def _figure(figsize, nrows=1, ncols=1, **kwargs):
    """A new figure and its axes (``Figure.subplots``'s), outside pyplot's global state."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def training_curves(seed_dir, path):
    """Paper Fig. 2-5: loss and accuracy per epoch, train and valid, for teacher and students."""
    fig, axes = _figure((16, 6.5), 2, 4, squeeze=False)
    for col, (net, run) in enumerate(NETWORKS.items()):
        rows = read_history(os.path.join(seed_dir, run, "history.csv"))
        for row, metric in enumerate(("loss", "accuracy")):
            ax = axes[row][col]
            if rows:
                epochs = [r["epoch"] for r in rows]
                ax.plot(epochs, [r[metric] for r in rows], "o-", ms=3, label="train")
                ax.plot(epochs, [r[f"val_{metric}"] for r in rows], "s-", ms=3, label="valid")
                ax.legend()
            else:
                ax.text(0.5, 0.5, "not run", ha="center", transform=ax.transAxes)
            ax.set(title=f"{net}: {metric}", xlabel="epoch", ylabel=metric)
            ax.grid(alpha=0.3)
    return _save(fig, path)


def histogram_bars(seed_metrics, split, path):
    """Paper Fig. 6-8: relative frequency of predictions in 20 bins, paper beside ours."""
    fig, axes = _figure((14, 4.5), 1, 2, sharey=True)
    centers = np.arange(20) * 0.05 + 0.025
    width = 0.05 / 5
    for ax, who in zip(axes, ("paper", "ours")):
        for i, (net, run) in enumerate(NETWORKS.items()):
            if who == "paper":
                values = paper.HISTOGRAMS[split][net]
            elif run in seed_metrics:
                values = seed_metrics[run]["eval"][split]["histogram"]
            else:
                continue
            ax.bar(centers + (i - 1.5) * width, values, width=width, label=net)
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set(title=f"{who}: predictions on {split}", xlabel="prediction p (bins of 0.05)",
               ylabel="relative frequency (symlog)", xlim=(0, 1))
        ax.legend()
    return _save(fig, path)


def chain_curves(seeds_metrics, path):
    """Accuracy and uncertainty against generation for both chains, ours beside the paper.

    Args:
        seeds_metrics: ``{run_name: metrics}`` of each seed; each seed is a thin line and
            their mean, over the generations every seed has, a thick one.
    """
    fig, axes = _figure((12, 4.5), 1, 2)
    for kind, color in (("hard", "tab:red"), ("soft", "tab:blue")):
        last = max((k for m in seeds_metrics for k in layout.chain_generations(m, kind)), default=0)
        runs = [layout.chain_run(kind, k) for k in range(last + 1)]
        published = len(paper.CHAINS[kind])  # generations 0-6
        for ax, index, name in ((axes[0], 0, "test accuracy"), (axes[1], 1, "test uncertainty")):
            ax.plot(range(published), [paper.CHAINS[kind][k]["test"][index] for k in range(published)], "--",
                    color=color, alpha=0.6, label=f"{kind} chain, paper")
            key = "accuracy" if index == 0 else "uncertainty"
            series = [[m[r]["eval"]["test"][key] for r in runs if r in m] for m in seeds_metrics]
            series = [s for s in series if s]
            for one in series if len(series) > 1 else []:
                ax.plot(range(len(one)), one, "-", color=color, alpha=0.25, lw=1)
            if series:
                common = min(len(s) for s in series)
                mean = np.mean([s[:common] for s in series], axis=0)
                label = f"{kind} chain, ours" + (f" (mean of {len(series)} seeds, thin: each)" if len(series) > 1 else "")
                ax.plot(range(common), mean, "o-", color=color, label=label)
            ax.set(xlabel="generation (0 = student)", ylabel=name, title=name)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    return _save(fig, path)


def soft_chain_histograms(seed_metrics, path):
    """Paper Fig. 9: test histograms of the soft chain, one bar group per generation."""
    fig, ax = _figure((12, 4.5))
    runs = [layout.chain_run("soft", k) for k in [0] + layout.chain_generations(seed_metrics, "soft")]
    runs = [r for r in runs if r in seed_metrics]
    width = 0.05 / (len(runs) + 1)
    for i, run in enumerate(runs):
        ax.bar(np.arange(20) * 0.05 + (i + 0.5) * width, seed_metrics[run]["eval"]["test"]["histogram"],
               width=width, label=run)
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set(xlabel="prediction p (bins of 0.05)", ylabel="relative frequency (symlog)",
           title="soft chain: test predictions per generation (ours)", xlim=(0, 1))
    ax.legend(ncol=4, fontsize=8)
    return _save(fig, path)


def latency_bars(timing, path, exported=()):
    """Per-image latency, teacher beside student: the paper's, ours in Keras, and each exported student.

    Args:
        timing: ``timing/metrics.json`` of the replay.
        exported: ``(label, timing json)`` of exported students (``kd-keras bench --exported``); their
            teacher bar is the Keras teacher timed in the same process.
    """
    groups = [("paper (i7-7500U)", paper.LATENCY_S["teacher"] * 1000, paper.LATENCY_S["student"] * 1000),
              ("Keras, model only", timing["teacher_ms"], timing["student_ms"]),
              ("Keras, end to end", timing["teacher_ms_end_to_end"], timing["student_ms_end_to_end"])]
    groups += [(f"{label} ({t['size']} px)", t["teacher_ms"], t["exported_ms"]) for label, t in exported]
    fig, ax = _figure((max(7, 2.2 * len(groups)), 4.5))
    x = np.arange(len(groups))
    teacher, student = [g[1] for g in groups], [g[2] for g in groups]
    ax.bar(x - 0.2, teacher, 0.4, label="ResNet-50 teacher (Keras)")
    ax.bar(x + 0.2, student, 0.4, label="ResNet-18 student")
    for i in range(len(groups)):
        ax.text(x[i], max(teacher[i], student[i]) * 1.02, f"{teacher[i] / student[i]:.2f}x", ha="center")
    ax.set_xticks(x, [g[0] for g in groups], fontsize=8)
    ax.set(ylabel="ms per image (batch size 1)", title=f"CPU latency at {timing['size']} px (speed-up above)")
    ax.legend()
    return _save(fig, path)


def calibration_curves(measures, path):
    """ECE, NLL and Brier score on test against generation for both chains: the mean over seeds, its 95 % interval.

    Args:
        measures: :func:`kd_keras.report.calibration.by_generation`'s ``{chain: {generation: {measure: Comparison}}}``.
    """
    from kd_keras.report.calibration import LABELS

    fig, axes = _figure((15, 4.2), 1, len(LABELS))
    for ax, (name, label) in zip(axes, LABELS.items()):
        for kind, color in (("hard", "tab:red"), ("soft", "tab:blue")):
            points = [(k, c[name]) for k, c in sorted(measures.get(kind, {}).items()) if name in c]
            if not points:
                continue
            ks = [k for k, _ in points]
            means = [c.mean for _, c in points]
            ax.plot(ks, means, "o-", color=color, label=f"{kind} chain (n={points[0][1].n} seeds)")
            if all(c.low is not None for _, c in points):
                ax.fill_between(ks, [c.low for _, c in points], [c.high for _, c in points], color=color, alpha=0.2)
        ax.set(xlabel="generation (0 = student)", ylabel=label, title=f"{label} on test")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def kd_figures(seeds, folder, exported=(), calibration=None):
    """All distillation figures of a group (the chains over every seed, the rest for the first); returns the paths.

    Args:
        calibration: :func:`kd_keras.report.calibration.by_generation` of ``seeds``, if already computed.
    """
    seed_dir, seed_metrics = next(iter(seeds.items()))
    paths = [training_curves(seed_dir, os.path.join(folder, "curves.png"))]
    paths += [histogram_bars(seed_metrics, s, os.path.join(folder, f"histogram_{s}.png"))
              for s in ("test", "valid", "train") if layout.TEACHER in seed_metrics or layout.student_run("soft") in seed_metrics]
    paths.append(chain_curves(list(seeds.values()), os.path.join(folder, "chains.png")))
    if calibration is None:
        from kd_keras.report.calibration import by_generation

        calibration = by_generation(seeds)
    if any(calibration.values()):
        paths.append(calibration_curves(calibration, os.path.join(folder, "calibration.png")))
    if layout.student_run("soft") in seed_metrics:
        paths.append(soft_chain_histograms(seed_metrics, os.path.join(folder, "soft_chain_histograms.png")))
    if layout.TIMING in seed_metrics:
        paths.append(latency_bars(seed_metrics[layout.TIMING], os.path.join(folder, "latency.png"), exported))
    return paths


def loss_figures(datasets, folder):
    """Thesis Fig. 6-7: per dataset, one panel per loss with train and valid loss per epoch."""
    paths = []
    for dataset, by_loss in sorted(datasets.items()):
        fig, axes = _figure((5 * len(by_loss), 4), 1, len(by_loss), squeeze=False)
        for ax, (loss, seeds) in zip(axes[0], sorted(by_loss.items())):
            histories = [read_history(os.path.join(d, "history.csv")) for _, d in sorted(seeds.items())]
            n = min(len(h) for h in histories)
            for key, label in (("loss", "train"), ("val_loss", "valid")):
                values = np.array([[r[key] for r in h[:n]] for h in histories])
                mean, std = values.mean(0), values.std(0)
                epochs = np.arange(1, n + 1)
                ax.plot(epochs, mean, "o-", ms=3, label=f"{label} (mean of {len(histories)} seeds)")
                ax.fill_between(epochs, mean - std, mean + std, alpha=0.2)
            ax.set(title=f"{dataset}: {loss}", xlabel="epoch", ylabel="loss")
            ax.grid(alpha=0.3)
            ax.legend()
        paths.append(_save(fig, os.path.join(folder, f"loss_curves_{dataset}.png")))
    return paths
