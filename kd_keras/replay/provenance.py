"""What made a run: the code's git commit, the package version, the backend and its versions.

Every ``config.json`` carries this under ``"code"`` so that an archived result names the
code that trained it. It is recorded, not compared: a run resumed by a newer commit keeps
the record of the commit that finished it.
"""

import importlib.metadata
import os
import subprocess

import keras

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _git(*args):
    try:
        out = subprocess.run(["git", "-C", PACKAGE_DIR, *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _version(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def code_version():
    """The code that is running, as a dict.

    Returns:
        ``git_commit`` (None outside a git checkout), ``git_dirty`` (uncommitted changes to
        tracked files, None outside a checkout), ``kd_keras``, ``backend`` and the
        ``keras``, ``tensorflow`` and ``jax`` versions (None where not installed).

    Examples:
        >>> from kd_keras.replay.provenance import code_version
        >>> sorted(code_version())[:3]
        ['backend', 'git_commit', 'git_dirty']
    """
    from kd_keras import __version__

    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status),
            "kd_keras": __version__, "backend": keras.backend.backend(),
            "keras": _version("keras"), "tensorflow": _version("tensorflow"), "jax": _version("jax")}
