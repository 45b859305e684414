"""Second-order factorization-machine interaction."""

from __future__ import annotations

import keras
from keras import ops

from tf4ctr_keras.registry import register


@register
class FactorizationMachine(keras.layers.Layer):
    """Second-order term of a factorization machine on ``(batch, fields, dim)``.

    ``y = 1/2 * sum_k [(sum_i v_ik)^2 - sum_i v_ik^2] = sum_{i<j} <v_i, v_j>`` per sample.

    The reference's DeepFM variant feeds this layer a flattened 2-D tensor, so its "sum over
    fields" runs over all scalars and the result collapses to one scalar for the whole batch
    (tf4ctr_reference.md section 1.7). This layer requires the 3-D input and computes the real
    per-sample interaction. Hand-written rather than ``keras_rs.layers.DotInteraction`` + sum
    because the sum-of-squares identity is O(fields * dim) instead of O(fields^2 * dim).

    Output: ``(batch, 1)``, computed in float32.

    Example:
        >>> FactorizationMachine()(np.ones((1, 3, 2))).numpy()  # 3 pairs of <1, 1> = 2
        array([[6.]], dtype=float32)
    """

    def build(self, input_shape) -> None:
        if len(input_shape) != 3:
            raise ValueError(
                "FactorizationMachine needs a (batch, fields, dim) input. "
                f"Received shape: {tuple(input_shape)}"
            )

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        square_of_sum = ops.square(ops.sum(x, axis=1))  # (batch, dim)
        sum_of_square = ops.sum(ops.square(x), axis=1)  # (batch, dim)
        return 0.5 * ops.sum(square_of_sum - sum_of_square, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)
