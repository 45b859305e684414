"""Weighted-sum fusion (WSF)."""

from __future__ import annotations

import keras

from tf4ctr_keras.layers.fusion.base import FusionLayer
from tf4ctr_keras.registry import check_range, register


@register
class WeightedSumFusion(FusionLayer):
    """Weighted-sum fusion (WSF in TF4CTR section 3.6): ``z = w_1 z_s + w_2 z_c``.

    ``w`` is a trainable pair initialised to ``[0.5, 0.5]`` with no softmax and no positivity
    constraint, exactly as the reference (its 2x1 parameter).

    Args:
        initial_weight: initial value of both weights. Default 0.5.
        seed: unused (no random weights); kept for the common fusion signature.

    Example:
        >>> fused = WeightedSumFusion()([h_s, h_c, np.ones((2, 1)), 3 * np.ones((2, 1))])
        >>> # fused == [[2.], [2.]]: 0.5 * 1 + 0.5 * 3
    """

    def __init__(self, initial_weight: float = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        check_range("initial_weight", initial_weight)
        self.initial_weight = float(initial_weight)

    def build(self, input_shape) -> None:
        self.fusion_weights = self.add_weight(
            name="fusion_weights",
            shape=(2,),
            initializer=keras.initializers.Constant(self.initial_weight),
            dtype="float32",
        )

    def call(self, inputs):
        _, _, z_s, z_c = self._unpack(inputs)
        return self.fusion_weights[0] * z_s + self.fusion_weights[1] * z_c

    def get_config(self) -> dict:
        return {**super().get_config(), "initial_weight": self.initial_weight}
