"""The run archive: the small files of finished runs, copied where they can be committed.

``kd-keras archive --runs-dir runs --to results/runs`` copies, for every finished run (one with
``metrics.json``), the files the report reads: ``config.json``, ``split.json``,
``history.csv``, ``metrics.json`` and ``predictions.npz``. Models, resume state and caches stay
behind. Paths are made portable on the way: a run folder becomes its path relative to the
runs folder, an image its path relative to the folder that holds its dataset, so an archive
names no machine. ``kd-keras report --runs-dir results/runs`` then rebuilds every table.

Example:
    >>> from kd_keras import archive
    >>> copied = archive.archive_runs("runs", "results/runs")  # doctest: +SKIP
"""

import glob
import json
import os
import shutil

from kd_keras.errors import UserError
from kd_keras.runs import read_json, write_json

FILES = ("config.json", "split.json", "history.csv", "metrics.json", "predictions.npz")
MAX_BYTES = 5 * 1024 * 1024


def finished_runs(runs_dir):
    """Every finished run folder under ``runs_dir``, relative to it, in sorted order.

    The layouts are ``<group>/seed<N>/<run>`` (Paper B, and the timing run) and
    ``losses-<preset>/<dataset>/<loss>/seed<N>`` (Paper A).
    """
    patterns = (os.path.join(runs_dir, "*", "seed*", "*", "metrics.json"),
                os.path.join(runs_dir, "losses-*", "*", "*", "seed*", "metrics.json"))
    found = {os.path.relpath(os.path.dirname(p), runs_dir) for pattern in patterns for p in glob.glob(pattern)}
    return sorted(found)


def _portable(value, replacements):
    if isinstance(value, dict):
        return {k: _portable(v, replacements) for k, v in value.items()}
    if isinstance(value, list):
        return [_portable(v, replacements) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        for prefix, replacement in replacements:
            if value == prefix or value.startswith(prefix + os.sep):
                return os.path.normpath(os.path.join(replacement, os.path.relpath(value, prefix)))
    return value


def _data_roots(run_dir):
    """``(absolute dataset folder, its name)`` from the run's ``split.json`` and ``config.json``."""
    roots = []
    config = read_json(os.path.join(run_dir, "config.json")) if os.path.exists(
        os.path.join(run_dir, "config.json")) else {}
    data_dir = config.get("data_dir")
    if isinstance(data_dir, str) and os.path.isabs(data_dir):
        roots.append((os.path.normpath(data_dir), os.path.basename(os.path.normpath(data_dir))))
    split_path = os.path.join(run_dir, "split.json")
    if os.path.exists(split_path):
        split = read_json(split_path)
        files = [f[0] if isinstance(f, list) else f for files in split.get("splits", {}).values() for f in files]
        files = [f for f in files if isinstance(f, str) and os.path.isabs(f)]
        if files:
            common = os.path.commonpath(files)
            name = split.get("name")
            parts = common.split(os.sep)
            if name in parts:  # cut at the dataset's own folder
                common = os.sep.join(parts[: len(parts) - parts[::-1].index(name)])
            roots.append((common, os.path.basename(common)))
    return roots


def archive_runs(runs_dir, to, log=print):
    """Copies the small files of every finished run under ``runs_dir`` into ``to``.

    Args:
        runs_dir: the runs folder of ``kd-keras reproduce`` / ``kd-keras losses``.
        to: the archive (``results/runs`` in this repository); runs already there are replaced.
        log: progress lines.

    Returns:
        The archived run folders, relative to ``to``.

    Raises:
        UserError: no finished run under ``runs_dir``, or a file over 5 MiB.
    """
    runs = finished_runs(runs_dir)
    if not runs:
        raise UserError(f"no finished run under {runs_dir} (a run is finished when it has metrics.json)")
    source_root = os.path.abspath(runs_dir)
    for run in runs:
        src, dst = os.path.join(runs_dir, run), os.path.join(to, run)
        replacements = [(source_root, ".")] + _data_roots(src)
        staged = {}
        for name in FILES:
            path = os.path.join(src, name)
            if not os.path.exists(path):
                continue
            if os.path.getsize(path) > MAX_BYTES:
                raise UserError(f"{path} is {os.path.getsize(path) / 2**20:.1f} MiB, over the archive's 5 MiB a file")
            staged[name] = path
        os.makedirs(dst, exist_ok=True)
        for name in os.listdir(dst):  # what an earlier archive of this run held and this one does not
            if name not in staged:
                os.remove(os.path.join(dst, name))
        for name, path in staged.items():
            if name.endswith(".json"):
                with open(path) as f:
                    write_json(os.path.join(dst, name), _portable(json.load(f), replacements))
            else:
                shutil.copyfile(path, os.path.join(dst, name))
    log(f"archived {len(runs)} finished runs from {runs_dir} into {to}")
    return runs
