"""What made each seed of a group: the code, the machine, and the minutes its runs took.

Every run's ``config.json`` names the code that trained it (:mod:`kd_keras.replay.provenance`), its
``metrics.json`` the seconds it took, and the seed's timing run the CPU it was measured on. This
table puts them side by side per seed, so a reader can tell which commit and machine made which
numbers, and what a seed costs.

Examples:
    >>> from kd_keras import report
    >>> from kd_keras.report.run_record import run_record_table
    >>> seeds = report.kd_groups("results/runs")["cats_vs_dogs-cpu"]
    >>> run_record_table(seeds, "").columns[:3]
    ['seed', 'code (git commit)', 'machine (the timing run)']
"""

import os

import numpy as np

from kd_keras.replay import layout
from kd_keras.replay.run_files import read_json
from kd_keras.report.tables import NOT_RUN, Table


def _config(seed_dir, run):
    """The run's config.json as :func:`~kd_keras.report.frame.load_runs` reads it: ``{}`` where there is none."""
    path = os.path.join(seed_dir, run, "config.json")
    return read_json(path) if os.path.exists(path) else {}


def _code(seed_dir, runs):
    """The commits (short, ``+dirty`` where the tree had changes) that made ``runs``, in order of first use."""
    found = []
    for run in runs:
        code = _config(seed_dir, run).get("code") or {}
        commit = code.get("git_commit")
        name = "not recorded" if not commit else commit[:7] + (" +dirty" if code.get("git_dirty") else "")
        if name not in found:
            found.append(name)
    return ", ".join(found) or NOT_RUN


def _minutes(values):
    return f"{sum(values) / 60:.1f}" if values else NOT_RUN


def run_record_table(seeds, caption):
    """Per seed: its code, the timing run's machine, and the minutes of the teacher and the student runs.

    Args:
        seeds: ``{seed_dir: {run_name: metrics}}`` (:func:`kd_keras.report.kd_groups`).
        caption: the group's scale.
    """
    table = Table("run_record", "What made each seed: code, machine and minutes",
                  ["seed", "code (git commit)", "machine (the timing run)", "teacher min", "student runs",
                   "student runs min", "min per student run"],
                  caption + " Each run's own seconds as its metrics.json records them, from its start to its "
                  "scoring (runs made by commit f8b9e12 or before stopped that clock before their augmented test "
                  "draws). A seed's wall time adds the images' decoding, the plan's warm-up and the timing run. "
                  "Minutes compare between seeds made on the same machine only.")
    for seed_dir, runs in seeds.items():
        timing = runs.get(layout.TIMING) or {}
        machine = (f"{timing['cpu_model']}, {timing.get('cpu_threads', '?')} threads" if timing.get("cpu_model")
                   else "not recorded")
        teacher = [runs[layout.TEACHER]["seconds"]] if runs.get(layout.TEACHER, {}).get("seconds") else []
        students = [m["seconds"] for name, m in runs.items()
                    if name not in (layout.TEACHER, layout.TIMING) and (m or {}).get("seconds")]
        table.add(os.path.basename(seed_dir), _code(seed_dir, sorted(runs)), machine, _minutes(teacher),
                  len(students), _minutes(students), f"{np.mean(students) / 60:.1f}" if students else NOT_RUN)
    return table
