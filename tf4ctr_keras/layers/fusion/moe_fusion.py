"""Mixture-of-experts fusion (MoEF)."""

from __future__ import annotations

import keras
from keras import ops

from tf4ctr_keras.layers.fusion.base import FusionLayer, dense
from tf4ctr_keras.layers.utils import get_initializer, serialize_initializer
from tf4ctr_keras.registry import register


@register
class MoEFusion(FusionLayer):
    """Mixture-of-experts fusion (MoEF in TF4CTR section 3.6, Eq. 11).

    On ``c = [h_s || h_c]``: gates ``g = softmax(W_g c)``, experts ``m_i = w_i . c + b_i`` (one
    linear unit each, as the reference), ``z = sum_i g_i m_i``.

    Args:
        num_experts: number of experts and gate outputs. Default 2.
        seed: optional int seed of the gate and expert kernels.
        kernel_initializer: initializer of both kernels. Default None: Xavier-normal seeded
            from ``seed``.
        bias_initializer: initializer of both biases. Default ``"zeros"``.
    """

    uses_logits = False

    def __init__(
        self, num_experts: int = 2, kernel_initializer=None, bias_initializer="zeros", **kwargs
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(num_experts, int) or num_experts < 2:
            raise ValueError(f"`num_experts` must be >= 2. Received: `num_experts={num_experts!r}`")
        self.num_experts = num_experts
        self.kernel_initializer = get_initializer(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape) -> None:
        init = (self.kernel_initializer, self.bias_initializer, self.seed)
        self.gate = dense(self.num_experts, *init, 0, "gate")
        self.experts = dense(self.num_experts, *init, 1, "experts")
        width = (None, input_shape[0][-1] + input_shape[1][-1])
        self.gate.build(width)
        self.experts.build(width)

    def call(self, inputs):
        h_s, h_c, _, _ = self._unpack(inputs)
        both = ops.concatenate([h_s, h_c], axis=-1)
        gates = ops.softmax(self.gate(both), axis=-1)
        return ops.sum(gates * self.experts(both), axis=-1, keepdims=True)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_experts": self.num_experts,
            "kernel_initializer": serialize_initializer(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }
