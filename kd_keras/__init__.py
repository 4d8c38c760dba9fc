"""kd_keras: knowledge distillation and loss functions for small image datasets, in Keras 3."""

from kd_keras import layers, losses, models, schedules  # noqa: F401

__version__ = "0.1.0"
