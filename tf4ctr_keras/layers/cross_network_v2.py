"""The cross network of DCNv2 (full-rank or low-rank cross layers), on keras-rs."""

from __future__ import annotations

import math

import keras
import keras_rs

from tf4ctr_keras.layers.cross_network import flatten
from tf4ctr_keras.layers.utils import (
    clone_initializer,
    get_initializer,
    kernel_initializer_for,
    serialize_initializer,
)
from tf4ctr_keras.registry import check_units, register


@register
class CrossNetworkV2(keras.layers.Layer):
    """Cross network of DCNv2: ``x_{l+1} = x_0 * (W_l x_l + b_l) + x_l``.

    A stack of ``keras_rs.layers.FeatureCross`` (the Keras 3 successor of TFRS ``Cross``).

    Args:
        num_layers: number of cross layers. Default 3.
        projection_dim: optional low-rank projection (DCN-M). Default None (full rank).
        seed: optional int seed.
        kernel_initializer: initializer of every ``W_l``. Default None: Xavier-normal seeded
            per layer from ``seed``.
        bias_initializer: initializer of every ``b_l``. Default ``"zeros"``.

    Input: ``(batch, ...)``, flattened to ``(batch, D)``. Output: ``(batch, D)``.

    Example:
        >>> CrossNetworkV2(2)(np.ones((8, 3, 4))).shape
        (8, 12)
    """

    def __init__(
        self,
        num_layers=3,
        projection_dim=None,
        seed=None,
        kernel_initializer=None,
        bias_initializer="zeros",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"`num_layers` must be >= 1. Received: `num_layers={num_layers!r}`")
        if projection_dim is not None:
            check_units("projection_dim", [projection_dim])
        self.num_layers = num_layers
        self.projection_dim = projection_dim
        self.seed = seed
        self.kernel_initializer = get_initializer(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape) -> None:
        flat = (input_shape[0], math.prod(input_shape[1:]))
        self.crosses = []
        for i in range(self.num_layers):
            cross = keras_rs.layers.FeatureCross(
                projection_dim=self.projection_dim,
                kernel_initializer=kernel_initializer_for(self.kernel_initializer, self.seed, i),
                bias_initializer=clone_initializer(self.bias_initializer),
                dtype=self.dtype_policy,
                name=f"cross_{i}",
            )
            self.crosses.append(cross)
            cross.build(flat)
            # keras-rs 0.4.0 FeatureCross.build creates its Dense sublayers without building
            # them, so `.keras` loading finds no variables to restore; build them here.
            if self.projection_dim is not None:
                cross.down_proj_dense.build(flat)
                cross.dense.build((flat[0], self.projection_dim))
            else:
                cross.dense.build(flat)

    def call(self, inputs):
        x0 = flatten(inputs)
        x = x0
        for cross in self.crosses:
            x = cross(x0, x)
        return x

    def compute_output_shape(self, input_shape):
        return (input_shape[0], math.prod(input_shape[1:]))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            num_layers=self.num_layers,
            projection_dim=self.projection_dim,
            seed=self.seed,
            kernel_initializer=serialize_initializer(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config
