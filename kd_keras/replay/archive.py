"""The run archive: the small files of finished runs, copied where they can be committed.

``kd-keras archive --runs-dir runs --to results/runs`` copies, for every finished run (one with
``metrics.json``), the files the report reads: ``config.json``, ``split.json`` (gzipped as
``split.json.gz``: every run of a seed lists the same thousands of images, 25 times smaller
so), ``history.csv``, ``metrics.json`` and ``predictions.npz``. Models, resume state and caches
stay behind. Paths are made portable on the way: a run folder becomes its path relative to the
runs folder, an image its path relative to the folder that holds its dataset, so an archive
names no machine. ``kd-keras report --runs-dir results/runs`` then rebuilds every table.

Examples:
    >>> from kd_keras import archive
    >>> copied = archive.archive_runs("runs", "results/runs")  # doctest: +SKIP
"""

import gzip
import json
import logging
import os
import shutil

from kd_keras.errors import UserError
from kd_keras.replay import layout
from kd_keras.replay.run_files import read_json, read_split, replace_atomically, write_json

_log = logging.getLogger(__name__)

# A run's file -> its name in the archive.
FILES = {"config.json": "config.json", "split.json": "split.json.gz", "history.csv": "history.csv",
         "metrics.json": "metrics.json", "predictions.npz": "predictions.npz"}
MAX_BYTES = 5 * 1024 * 1024


def finished_runs(runs_dir):
    """Every finished run folder under ``runs_dir``, relative to it, in sorted order (:mod:`~kd_keras.replay.layout`)."""
    return sorted(os.path.relpath(run.path, runs_dir) for run in layout.finished_runs(runs_dir))


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
    split = read_split(run_dir)
    if split is not None:
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


def archive_runs(runs_dir, to, log=None):
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
        staged = {}  # archived name -> the source file (a run's, or an archive's when re-archived)
        for name, archived in FILES.items():
            path = next((p for p in (os.path.join(src, name), os.path.join(src, archived)) if os.path.exists(p)), None)
            if path is None:
                continue
            if os.path.getsize(path) > MAX_BYTES:
                raise UserError(f"{path} is {os.path.getsize(path) / 2**20:.1f} MiB, over the archive's 5 MiB a file")
            staged[archived] = path
        # The split is read before anything of the run is removed: src may be dst (an archive re-archived).
        split = read_split(src)
        os.makedirs(dst, exist_ok=True)
        for name in os.listdir(dst):  # what an earlier archive of this run held and this one does not
            if name not in staged:
                os.remove(os.path.join(dst, name))
        for name, path in staged.items():
            target = os.path.join(dst, name)
            if name == FILES["split.json"]:
                _write_gzipped_json(target, _portable(split, replacements))
            elif name.endswith(".json"):
                write_json(target, _portable(read_json(path), replacements))
            elif os.path.abspath(path) != os.path.abspath(target):
                shutil.copyfile(path, target)
    (log or _log.info)(f"archived {len(runs)} finished runs from {runs_dir} into {to}")
    return runs


def _write_gzipped_json(path, obj):
    """JSON as :func:`kd_keras.runs.write_json` writes it, gzipped with no time stamp: the same bytes each time."""
    text = (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()

    def write(tmp):
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
            f.write(text)

    replace_atomically(path, write)
