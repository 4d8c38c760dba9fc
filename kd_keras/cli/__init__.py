"""The ``kd-keras`` command (click): flags and one-line errors over the replay, the report and deploy.

:mod:`~kd_keras.cli.main` is the entry point, :mod:`~kd_keras.cli.commands` the commands,
:mod:`~kd_keras.cli.options` their shared options and the experiments those make.
"""

from kd_keras.cli.main import expand_seeds, main

__all__ = ["main", "expand_seeds"]
