"""Concatenation fusion (CF)."""

from __future__ import annotations

import keras
from keras import ops

from tf4ctr_keras.layers.fusion.base import FusionLayer, dense
from tf4ctr_keras.layers.utils import get_initializer, serialize_initializer
from tf4ctr_keras.registry import register


@register
class ConcatFusion(FusionLayer):
    """Concatenation fusion (CF in TF4CTR section 3.6, Eq. 10): ``z = W [h_s || h_c] + b``.

    Args:
        seed: optional int seed of ``W``.
        kernel_initializer: initializer of ``W``. Default None: Xavier-normal seeded from
            ``seed``.
        bias_initializer: initializer of ``b``. Default ``"zeros"``.
    """

    uses_logits = False

    def __init__(self, kernel_initializer=None, bias_initializer="zeros", **kwargs) -> None:
        super().__init__(**kwargs)
        self.kernel_initializer = get_initializer(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape) -> None:
        init = (self.kernel_initializer, self.bias_initializer, self.seed)
        self.output_layer = dense(1, *init, 0, "output")
        self.output_layer.build((None, input_shape[0][-1] + input_shape[1][-1]))

    def call(self, inputs):
        h_s, h_c, _, _ = self._unpack(inputs)
        return self.output_layer(ops.concatenate([h_s, h_c], axis=-1))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "kernel_initializer": serialize_initializer(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }
