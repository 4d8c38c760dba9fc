"""The one exception type the CLI turns into a one-line ``error: ...``."""


class UserError(Exception):
    """A problem with the user's input (paths, options, data, weights).

    The CLI prints ``error: <message>`` and exits with code 2; the library raises it
    wherever a traceback would not help the user.
    """


class NonFiniteLossError(UserError):
    """Training produced a NaN or infinite loss; the last good checkpoint is kept."""
