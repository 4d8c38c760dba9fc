"""The run layout: where every run of both papers lives, what it is called, and how runs are found.

::

    RUNS/<source>-<preset>/seed<N>/<run>            Paper B; <run> is one of
        teacher, student-classic, student-hard, student-soft,
        hard-chain-<k>, soft-chain-<k> (k = 1, 2, ...), timing
    RUNS/<source>-<preset>/seed<N>/budget.json      the seed's --budget-minutes sizing
    RUNS/losses-<preset>/<dataset>/<loss>/seed<N>   Paper A
    RUNS/.cache/                                    decoded images, packs, synthetic data, XLA programs

This module is the one place that builds those names and walks those folders (the replay writes
through it, the report and the archive read through it). It imports no Keras.

Examples:
    >>> from kd_keras.replay import layout
    >>> layout.chain_run("soft", 3), layout.chain_run("soft", 0)
    ('soft-chain-3', 'student-soft')
    >>> layout.group_name("../shared/data/cats_vs_dogs", "cpu")
    'cats_vs_dogs-cpu'
"""

import dataclasses
import glob
import os
import re

from kd_keras.replay.run_files import read_json

TEACHER = "teacher"
TIMING = "timing"
BUDGET = "budget.json"
CACHE = ".cache"
MODES = ("classic", "hard", "soft")  # the students: true labels, the teacher's hard and soft labels
CHAINS = ("hard", "soft")  # the recursive chains start from these students
LOSSES_PREFIX = "losses-"


def student_run(mode):
    """The run name of the student trained on ``mode`` targets."""
    return f"student-{mode}"


# The teacher and the three students, as the papers' tables name them -> their run folders.
NETWORKS = {TEACHER: TEACHER, **{mode: student_run(mode) for mode in MODES}}


def chain_run(kind, generation):
    """The run name of ``kind``'s chain at ``generation`` (0: the student it starts from)."""
    return student_run(kind) if generation == 0 else f"{kind}-chain-{generation}"


def student_runs(generations, kinds=CHAINS):
    """The names of a seed's student runs: the three students, then each chain's generations."""
    return [student_run(mode) for mode in MODES] + [chain_run(kind, k) for kind in kinds
                                                      for k in range(1, generations + 1)]


def group_name(data_dir, preset_name):
    """The folder of an experiment of Paper B: the data source's name and the preset's."""
    source = os.path.basename(os.path.normpath(os.fspath(data_dir))).replace(":", "-")
    return f"{source}-{preset_name}"


def seed_folder(runs_dir, data_dir, preset_name, seed):
    """``RUNS/<source>-<preset>/seed<N>``: the teacher, students, chains and timing of one seed."""
    return os.path.join(runs_dir, group_name(data_dir, preset_name), f"seed{seed}")


def loss_run_folder(runs_dir, preset_name, dataset, loss, seed):
    """``RUNS/losses-<preset>/<dataset>/<loss>/seed<N>``: one run of Paper A."""
    return os.path.join(runs_dir, f"{LOSSES_PREFIX}{preset_name}", dataset, loss, f"seed{seed}")


def cache_folder(runs_dir):
    """``RUNS/.cache``: what every run of a runs folder shares (decoded images, unpacked packs, ...)."""
    return os.path.join(runs_dir, CACHE)


def chain_generations(run_names, kind):
    """The generations 1..K of ``kind``'s chain among ``run_names`` (each seed may have run a different K)."""
    pattern = re.compile(rf"^{re.escape(kind)}-chain-(\d+)$")
    return sorted(int(m.group(1)) for m in map(pattern.match, run_names) if m)


@dataclasses.dataclass(frozen=True)
class FoundRun:
    """A finished run, as :func:`finished_runs` finds it.

    Attributes:
        path: its folder.
        paper: ``"B"`` (distillation) or ``"A"`` (loss study).
        experiment: ``<source>-<preset>`` (B) or ``losses-<preset>/<dataset>`` (A).
        seed_folder: the folder named ``seed<N>`` (B: it holds the run; A: it is the run).
        name: the run's name (B) or its loss (A).
    """

    path: str
    paper: str
    experiment: str
    seed_folder: str
    name: str

    @property
    def seed(self):
        """N of ``seed<N>`` as an int (its text when it is not a number)."""
        digits = os.path.basename(self.seed_folder)[len("seed"):]
        return int(digits) if digits.isdigit() else digits

    @property
    def preset(self):
        """A loss-study run's preset name (Paper A), from ``losses-<preset>``."""
        return self.experiment.split("/")[0][len(LOSSES_PREFIX):] if self.paper == "A" else None


def finished_runs(runs_dir):
    """Every finished run (one with ``metrics.json``) under ``runs_dir``, Paper B's first, in path order."""
    found = []
    for path in sorted(glob.glob(os.path.join(runs_dir, "*", "seed*", "*", "metrics.json"))):
        run = os.path.dirname(path)
        seed_dir = os.path.dirname(run)
        experiment = os.path.basename(os.path.dirname(seed_dir))
        if not experiment.startswith(LOSSES_PREFIX):
            found.append(FoundRun(run, "B", experiment, seed_dir, os.path.basename(run)))
    for path in sorted(glob.glob(os.path.join(runs_dir, f"{LOSSES_PREFIX}*", "*", "*", "seed*", "metrics.json"))):
        seed_dir = os.path.dirname(path)
        loss_dir = os.path.dirname(seed_dir)
        dataset_dir = os.path.dirname(loss_dir)
        experiment = f"{os.path.basename(os.path.dirname(dataset_dir))}/{os.path.basename(dataset_dir)}"
        found.append(FoundRun(seed_dir, "A", experiment, seed_dir, os.path.basename(loss_dir)))
    return found


def distillation_groups(runs_dir):
    """``{experiment: {seed folder: [finished run names]}}`` of Paper B under ``runs_dir``, sorted."""
    groups = {}
    for run in finished_runs(runs_dir):
        if run.paper == "B":
            groups.setdefault(run.experiment, {}).setdefault(run.seed_folder, []).append(run.name)
    return {group: {seed: sorted(names) for seed, names in sorted(seeds.items())}
            for group, seeds in sorted(groups.items())}


def loss_groups(runs_dir):
    """``{preset: {dataset: {loss: {"seed<N>": run folder}}}}`` of Paper A's finished runs under ``runs_dir``."""
    found = {}
    for run in finished_runs(runs_dir):
        if run.paper == "A":
            dataset = run.experiment.split("/", 1)[1]
            found.setdefault(run.preset, {}).setdefault(dataset, {}).setdefault(run.name, {})[
                os.path.basename(run.seed_folder)] = run.path
    return {preset: {dataset: {loss: dict(sorted(seeds.items())) for loss, seeds in sorted(losses.items())}
                     for dataset, losses in sorted(datasets.items())} for preset, datasets in sorted(found.items())}


def exported_models(seed_dir):
    """The ``<file>.json`` descriptions of every model exported from a run of ``seed_dir`` (``kd-keras export``)."""
    found = []
    for path in sorted(glob.glob(os.path.join(seed_dir, "*", "*.json"))):
        name = os.path.basename(path)
        if name in ("metrics.json", "config.json", "split.json") or name.endswith(".timing.json"):
            continue
        if "quantization" in read_json(path):  # an export's description; other JSON is not
            found.append(path)
    return found
