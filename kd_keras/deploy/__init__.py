"""Deployment of a trained student: TFLite, ONNX and SavedModel files, quantized, scored and timed.

TensorFlow only (its converters): on another backend :func:`~kd_keras.deploy.export.export_run`
is one error line. See :mod:`kd_keras.deploy.export`.
"""
