"""The cross network of DCN (rank-1 cross layers)."""

from __future__ import annotations

import math

import keras
from keras import ops

from tf4ctr_keras.layers.utils import (
    clone_initializer,
    get_initializer,
    kernel_initializer_for,
    serialize_initializer,
)
from tf4ctr_keras.registry import register


def flatten(x):
    """``(batch, d1, d2, ...)`` -> ``(batch, d1 * d2 * ...)``."""
    return ops.reshape(x, (-1, math.prod(x.shape[1:])))


@register
class CrossNetwork(keras.layers.Layer):
    """Cross network of DCN: ``x_{l+1} = x_0 * (x_l . w_l) + b_l + x_l`` (rank-1 weights).

    Hand-written because keras-rs ships only the DCNv2 cross (see :class:`CrossNetworkV2`).

    Args:
        num_layers: number of cross layers. Default 3.
        seed: optional int seed.
        kernel_initializer: initializer of every ``w_l``. Default None: Xavier-normal seeded
            per layer from ``seed``.
        bias_initializer: initializer of every ``b_l``. Default ``"zeros"``.

    Input: ``(batch, ...)``, flattened to ``(batch, D)``. Output: ``(batch, D)``.

    Example:
        >>> CrossNetwork(2)(np.ones((8, 3, 4))).shape
        (8, 12)
    """

    def __init__(
        self,
        num_layers: int = 3,
        seed: int | None = None,
        kernel_initializer=None,
        bias_initializer="zeros",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"`num_layers` must be >= 1. Received: `num_layers={num_layers!r}`")
        self.num_layers = num_layers
        self.seed = seed
        self.kernel_initializer = get_initializer(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape) -> None:
        width = math.prod(input_shape[1:])
        self.kernels = [
            self.add_weight(
                name=f"kernel_{i}",
                shape=(width, 1),
                initializer=kernel_initializer_for(self.kernel_initializer, self.seed, i),
            )
            for i in range(self.num_layers)
        ]
        self.biases = [
            self.add_weight(
                name=f"bias_{i}",
                shape=(width,),
                initializer=clone_initializer(self.bias_initializer),
            )
            for i in range(self.num_layers)
        ]

    def call(self, inputs):
        x0 = flatten(inputs)
        x = x0
        for kernel, bias in zip(self.kernels, self.biases, strict=True):
            x = x0 * ops.matmul(x, kernel) + bias + x
        return x

    def compute_output_shape(self, input_shape):
        return (input_shape[0], math.prod(input_shape[1:]))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_layers": self.num_layers,
            "seed": self.seed,
            "kernel_initializer": serialize_initializer(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }
