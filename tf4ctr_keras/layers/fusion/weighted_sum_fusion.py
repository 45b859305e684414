"""Weighted-sum fusion (WSF)."""

from __future__ import annotations

import keras

from tf4ctr_keras.layers.fusion.base import FusionLayer
from tf4ctr_keras.layers.utils import clone_initializer, get_initializer, serialize_initializer
from tf4ctr_keras.registry import check_range, register


@register
class WeightedSumFusion(FusionLayer):
    """Weighted-sum fusion (WSF in TF4CTR section 3.6): ``z = w_1 z_s + w_2 z_c [+ b]``.

    ``w`` is a trainable pair initialised to ``[0.5, 0.5]`` with no softmax and no positivity
    constraint, exactly as the reference (its 2x1 parameter). With ``use_bias`` and a
    ``kernel_initializer`` it is a ``Linear(2, 1)`` on the two logits: AFN+'s ensemble layer.

    Args:
        initial_weight: initial value of both weights. Default 0.5.
        use_bias: add a trainable bias (initialised to 0). Default False (WSF).
        kernel_initializer: initializer of ``w``; default None: ``initial_weight`` for both.
        seed: unused (no random weights); kept for the common fusion signature.

    Example:
        >>> fused = WeightedSumFusion()([h_s, h_c, np.ones((2, 1)), 3 * np.ones((2, 1))])
        >>> # fused == [[2.], [2.]]: 0.5 * 1 + 0.5 * 3
    """

    def __init__(
        self,
        initial_weight: float = 0.5,
        use_bias: bool = False,
        kernel_initializer=None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        check_range("initial_weight", initial_weight)
        self.initial_weight = float(initial_weight)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = get_initializer(kernel_initializer)

    def build(self, input_shape) -> None:
        self.fusion_weights = self.add_weight(
            name="fusion_weights",
            shape=(2,),
            initializer=(
                keras.initializers.Constant(self.initial_weight)
                if self.kernel_initializer is None
                else clone_initializer(self.kernel_initializer)
            ),
            dtype="float32",
        )
        self.bias = (
            self.add_weight(name="bias", shape=(1,), initializer="zeros", dtype="float32")
            if self.use_bias
            else None
        )

    def call(self, inputs):
        _, _, z_s, z_c = self._unpack(inputs)
        fused = self.fusion_weights[0] * z_s + self.fusion_weights[1] * z_c
        return fused if self.bias is None else fused + self.bias

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "initial_weight": self.initial_weight,
            "use_bias": self.use_bias,
            "kernel_initializer": serialize_initializer(self.kernel_initializer),
        }
