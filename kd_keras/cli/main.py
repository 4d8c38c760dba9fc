"""``main``: the ``kd-keras`` entry point, where every input problem becomes one line and exit code 2.

It sets TensorFlow's defaults first (a quiet start-up, oneDNN on; :func:`kd_keras.quiet.tensorflow_defaults`)
and sends the package's log lines to the terminal: progress to stdout, warnings to stderr as
``warning: ...``. Everything else is the commands' (:mod:`kd_keras.cli.commands`).
"""

import errno
import logging
import sys

import click

from kd_keras.errors import UserError


class _Lines(logging.Formatter):
    """``message`` for progress, ``warning: message`` for warnings and errors."""

    def format(self, record):
        text = record.getMessage()
        return text if record.levelno < logging.WARNING else f"warning: {text}"


class _Terminal(logging.StreamHandler):
    """Writes to ``sys.stdout`` or ``sys.stderr`` as they are when a line is written, not when it was made."""

    def __init__(self, which):
        self._which = which
        super().__init__()

    @property
    def stream(self):
        return getattr(sys, self._which)

    @stream.setter
    def stream(self, value):  # logging.StreamHandler sets it; the stream is always the current one
        pass


def _log_to_terminal():
    """The package's loggers print: INFO and below to stdout, warnings to stderr (once per process)."""
    logger = logging.getLogger("kd_keras")
    if any(getattr(h, "_kd_keras", False) for h in logger.handlers):
        return
    progress = _Terminal("stdout")
    progress.addFilter(lambda record: record.levelno < logging.WARNING)
    warnings = _Terminal("stderr")
    warnings.setLevel(logging.WARNING)
    for handler in (progress, warnings):
        handler.setFormatter(_Lines())
        handler._kd_keras = True
        logger.addHandler(handler)
    logger.propagate = False


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
    from kd_keras.cli.commands import cli

    quiet.tensorflow_defaults()
    _log_to_terminal()
    logging.getLogger("kd_keras").setLevel(logging.INFO)  # each command's progress, unless it asks for less
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
