"""Classifier heads for the margin losses: a normalised dense layer and the L-softmax layer."""

import keras
from keras import ops

_register = keras.saving.register_keras_serializable(package="kd_keras")


class _NormedKernel(keras.layers.Layer):
    """A dense kernel without bias; subclasses say what to output."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(input_shape[-1], self.units), initializer="glorot_uniform"
        )

    def _cosine(self, inputs):
        inputs = ops.cast(inputs, "float32")
        kernel = ops.cast(self.kernel, "float32")
        x_norm = ops.norm(inputs, axis=-1, keepdims=True)
        w_norm = ops.norm(kernel, axis=0, keepdims=True)
        cosine = ops.matmul(inputs / ops.maximum(x_norm, 1e-12), kernel / ops.maximum(w_norm, 1e-12))
        return cosine, x_norm * w_norm

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@_register
class CosineDense(_NormedKernel):
    """Normalised dense layer without bias: outputs ``cos θ_j = <x, W_j> / (||x|| ||W_j||)``.

    The head for :class:`kd_keras.losses.AMSoftmax` and :class:`kd_keras.losses.CosineLoss`.
    The predicted class is the argmax of the cosines.

    Examples:
        >>> features = keras.Input((2048,))
        >>> CosineDense(4)(features).shape
        (None, 4)
    """

    def call(self, inputs):
        return self._cosine(inputs)[0]

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)


@_register
class LSoftmaxDense(_NormedKernel):
    """The L-softmax layer (Liu et al. 2016): outputs ``(cos θ_j, ||W_j|| ||x||)`` per class.

    Output shape ``(batch, units, 2)``; :class:`kd_keras.losses.LSoftmax` puts the margin on
    the target class, and :func:`lsoftmax_logits` gives the plain logits for prediction.
    """

    def call(self, inputs):
        cosine, norms = self._cosine(inputs)
        return ops.stack([cosine, norms], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units, 2)


def lsoftmax_logits(outputs):
    """Plain logits ``||W_j|| ||x|| cos θ_j`` from an :class:`LSoftmaxDense` output."""
    return outputs[..., 0] * outputs[..., 1]


@_register
class ColorAffine(keras.layers.Layer):
    """Maps [0, 1] RGB images to a backbone's input space: ``y = x @ matrix + bias`` per pixel.

    Every ImageNet preprocessing in use is such a map (scale, mean, std, and for Caffe-style
    networks RGB -> BGR), so one small layer puts each network's normalisation inside the
    model and callers always pass images in [0, 1].

    Args:
        matrix: 3x3 nested list; ``matrix[i][j]`` is the weight of input channel i in output j.
        bias: 3 values added after the matrix.

    Examples:
        >>> to_lite = ColorAffine([[255 / 128, 0, 0], [0, 255 / 128, 0], [0, 0, 255 / 128]], [-127 / 128] * 3)
        >>> white = keras.ops.ones((1, 1, 1, 3))  # [0, 1] images in, EfficientNet-Lite's (255 x - 127) / 128 out
        >>> [round(float(v), 4) for v in keras.ops.convert_to_numpy(to_lite(white)).ravel()]
        [1.0, 1.0, 1.0]
    """

    def __init__(self, matrix, bias, **kwargs):
        super().__init__(**kwargs)
        self.matrix = [[float(v) for v in row] for row in matrix]
        self.bias = [float(v) for v in bias]

    def call(self, inputs):
        matrix = ops.convert_to_tensor(self.matrix, dtype=inputs.dtype)
        bias = ops.convert_to_tensor(self.bias, dtype=inputs.dtype)
        return ops.tensordot(inputs, matrix, axes=1) + bias

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "matrix": self.matrix, "bias": self.bias}
