"""Compressed Interaction Network of xDeepFM."""

from __future__ import annotations

import keras
from keras import ops

from tf4ctr_keras.layers.utils import (
    clone_initializer,
    get_initializer,
    kernel_initializer_for,
    serialize_initializer,
)
from tf4ctr_keras.registry import check_units, register


@register
class CompressedInteractionNetwork(keras.layers.Layer):
    """Compressed Interaction Network (CIN, xDeepFM; FuxiCTR ``CompressedInteractionNet``).

    ``X^k_h = sum_{i,j} W^{k,h}_{ij} (X^{k-1}_i * X^0_j)`` (a 1x1 convolution over the outer
    product of the previous layer and the input fields), each layer sum-pooled over the
    embedding dimension and the pools concatenated.

    Args:
        layer_sizes: feature maps per CIN layer, e.g. ``[64, 64]`` (the reference's tuning).
        activation: applied to each layer's maps. Default None (linear, as FuxiCTR).
        output_dim: optional width of a final Dense layer on the concatenated pools (the
            reference's TF4CTR-xDeepFM maps to the complex tower's width, 400). Default None.
        seed: optional int seed.
        kernel_initializer: initializer of every kernel. Default None: Xavier-normal seeded
            per layer from ``seed``.
        bias_initializer: initializer of every bias. Default ``"zeros"``.

    Input: ``(batch, fields, dim)``. Output: ``(batch, sum(layer_sizes))`` or
    ``(batch, output_dim)``.

    Example:
        >>> CompressedInteractionNetwork([4, 2])(np.ones((8, 3, 5))).shape
        (8, 6)
    """

    def __init__(
        self,
        layer_sizes=(64, 64),
        activation=None,
        output_dim=None,
        seed=None,
        kernel_initializer=None,
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.layer_sizes = check_units("layer_sizes", layer_sizes)
        if not self.layer_sizes:
            raise ValueError("`layer_sizes` must not be empty. Received: `layer_sizes=[]`")
        if output_dim is not None:
            check_units("output_dim", [output_dim])
        self.activation = activation
        self._activation_fn = keras.activations.get(activation)
        self.output_dim = output_dim
        self.seed = seed
        self.kernel_initializer = get_initializer(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def _dense(self, units: int, offset: int, name: str) -> keras.layers.Dense:
        return keras.layers.Dense(
            units,
            kernel_initializer=kernel_initializer_for(self.kernel_initializer, self.seed, offset),
            bias_initializer=clone_initializer(self.bias_initializer),
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, input_shape) -> None:
        if len(input_shape) != 3:
            raise ValueError(
                "CompressedInteractionNetwork needs a (batch, fields, dim) input. "
                f"Received shape: {tuple(input_shape)}"
            )
        fields = input_shape[1]
        previous = fields
        self.maps = []
        for i, units in enumerate(self.layer_sizes):
            layer = self._dense(units, i, f"cin_{i}")
            self.maps.append(layer)
            layer.build((None, previous * fields))
            previous = units
        self.output_layer = None
        if self.output_dim is not None:
            self.output_layer = self._dense(self.output_dim, 99, "output")
            self.output_layer.build((None, sum(self.layer_sizes)))

    def call(self, inputs):
        x0 = inputs  # (batch, fields, dim)
        fields, dim = x0.shape[1], x0.shape[2]
        xk = x0
        pools = []
        for layer in self.maps:
            outer = ops.einsum("bhd,bmd->bdhm", xk, x0)  # (batch, dim, h, fields)
            outer = ops.reshape(outer, (-1, dim, xk.shape[1] * fields))
            xk = self._activation_fn(layer(outer))  # (batch, dim, units)
            pools.append(ops.sum(xk, axis=1))  # (batch, units)
            xk = ops.transpose(xk, (0, 2, 1))  # (batch, units, dim)
        out = ops.concatenate(pools, axis=-1)
        if self.output_layer is not None:
            out = self.output_layer(out)
        return out

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim or sum(self.layer_sizes))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            layer_sizes=self.layer_sizes,
            activation=self.activation,
            output_dim=self.output_dim,
            seed=self.seed,
            kernel_initializer=serialize_initializer(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config
