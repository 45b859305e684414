"""Plain sum fusion."""

from __future__ import annotations

from tf4ctr_keras.layers.fusion.base import FusionLayer
from tf4ctr_keras.registry import register


@register
class SumFusion(FusionLayer):
    """Plain sum (``DFM: none`` in the reference; the usual parallel-model fusion): z_s + z_c.

    Example:
        >>> fused = SumFusion()([h_s, h_c, np.ones((2, 1)), 3 * np.ones((2, 1))])
        >>> # fused == [[4.], [4.]]
    """

    def call(self, inputs):
        _, _, z_s, z_c = self._unpack(inputs)
        return z_s + z_c
