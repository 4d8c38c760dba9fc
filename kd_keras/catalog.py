"""Names the command line accepts, in a module that imports nothing heavy.

``kd-keras`` checks a user's choices against these before TensorFlow is loaded, so a
typo is answered at once.
"""

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
