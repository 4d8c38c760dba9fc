"""Names and values the command line accepts, in a module that imports nothing heavy.

``kd-keras`` checks a user's choices against these before TensorFlow is loaded, so a
typo is answered at once.
"""

import os

from kd_keras.errors import UserError

# Loss name -> the classifier head it needs (see kd_keras.losses.get and models.classifier_head).
LOSS_HEADS = {
    "softmax": "softmax",
    "cosine": "linear",
    "am-softmax": "cosine",
    "hinge": "linear",
    "thesis-hinge": "linear",
    "huber": "softmax",
    "l1": "softmax",
    "l2": "softmax",
    "l-softmax": "lsoftmax",
}


def is_pretrained(weights):
    """Whether ``weights`` names trained weights (``"imagenet"`` or a file) rather than none."""
    return weights is not None and str(weights).lower() != "none"


def resolve_weights(weights):
    """Maps the user's ``weights`` value to ``"imagenet"``, a checked file path, or None."""
    if not is_pretrained(weights):
        return None
    if weights == "imagenet":
        return "imagenet"
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise UserError(f"weights file not found: {path} (pass 'imagenet', 'none' or a file path)")
    return path
