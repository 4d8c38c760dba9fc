"""The ``kd-keras`` command (click): flags and one-line errors over the replay, the report and deploy."""

from kd_keras.cli.commands import cli, expand_seeds, main

__all__ = ["cli", "main", "expand_seeds"]
