"""Shared by the experiment scripts: run one kd-keras command with the script's defaults."""

import sys

from kd_keras.cli import main


def run(command, defaults):
    """``kd-keras COMMAND DEFAULTS... ARGS...``; options given on the command line win."""
    given = {arg.split("=")[0] for arg in sys.argv[1:] if arg.startswith("--")}
    extra = [token for option, value in defaults for token in (option, value) if option not in given]
    main([*command, *extra, *sys.argv[1:]])
