"""``python -m kd_keras.cli ...``: the ``kd-keras`` command, where no console script is installed (a
remote machine given only the source tree, say)."""

from kd_keras.cli.main import main

if __name__ == "__main__":
    main()
