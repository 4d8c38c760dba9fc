"""What a ``weights`` argument names: ``"imagenet"``, ``"none"`` or a file (no Keras import).

Examples:
    >>> from kd_keras.weights import is_pretrained, resolve_weights
    >>> is_pretrained("none"), resolve_weights("imagenet")
    (False, 'imagenet')
"""

import os

from kd_keras.errors import UserError


def is_pretrained(weights):
    """Whether ``weights`` names trained weights (``"imagenet"`` or a file) rather than none."""
    return weights is not None and str(weights).lower() != "none"


def resolve_weights(weights):
    """Maps the user's ``weights`` value to ``"imagenet"``, a checked file path, or None.

    Raises:
        UserError: a path that is not a file.
    """
    if not is_pretrained(weights):
        return None
    if weights == "imagenet":
        return "imagenet"
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise UserError(f"weights file not found: {path} (pass 'imagenet', 'none' or a file path)")
    return path
