"""Which classifier head each loss of the package needs, by the loss's name.

No Keras here: the command line checks a ``--loss`` name with it before anything heavy loads.
:func:`kd_keras.losses.get` builds the loss, :func:`kd_keras.models.classifier_head` the head.

- ``softmax``: probabilities (a dense layer and a softmax);
- ``linear``: raw scores (the cosine loss and the hinges);
- ``cosine``: cos θ per class, :class:`~kd_keras.layers.CosineDense` (AM-softmax);
- ``lsoftmax``: cos θ and ‖W‖‖x‖ per class, :class:`~kd_keras.layers.LSoftmaxDense` (L-softmax).

Examples:
    >>> from kd_keras.loss_heads import LOSS_HEADS
    >>> LOSS_HEADS["am-softmax"]
    'cosine'
"""

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
