"""What the fusion layers share: float32 maths, input unpacking, seeds, the registry builder."""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import ops

from tf4ctr_keras.layers.utils import clone_initializer, kernel_initializer_for
from tf4ctr_keras.registry import FUSION_SEED, BuildContext


class FusionLayer(keras.layers.Layer):
    """Base of the fusion layers (not registered: abstract).

    A fusion takes ``[h_simple, h_complex, z_simple, z_complex]`` (the two encoder outputs
    ``(batch, width)`` and their logits ``(batch, 1)``) and returns the fused logit
    ``(batch, 1)`` in float32. :class:`~tf4ctr_keras.TF4CTR` needs no subclass of this one:
    any layer with that call and an optional ``uses_logits`` attribute will do.

    Args:
        seed: optional int seed of the layer's weights and noise.
    """

    #: Whether the fused logit is built from the auxiliary logits z_s and z_c.
    uses_logits = True

    def __init__(self, seed: int | None = None, **kwargs) -> None:
        kwargs.setdefault("dtype", "float32")  # fusion maths stays float32 under mixed precision
        super().__init__(**kwargs)
        self.seed = seed

    @staticmethod
    def _unpack(inputs):
        if not isinstance(inputs, list | tuple) or len(inputs) != 4:
            raise ValueError(
                "A fusion layer takes [h_simple, h_complex, z_simple, z_complex]. "
                f"Received: {type(inputs).__name__} of length {len(inputs)}"
            )
        return [ops.cast(x, "float32") for x in inputs]

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)

    def get_config(self) -> dict:
        return {**super().get_config(), "seed": self.seed}


def dense(units, kernel_initializer, bias_initializer, seed, offset, name) -> keras.layers.Dense:
    """A float32 Dense of a fusion; by default Xavier-normal seeded at ``offset``."""
    return keras.layers.Dense(
        units,
        kernel_initializer=kernel_initializer_for(kernel_initializer, seed, offset),
        bias_initializer=clone_initializer(bias_initializer),
        dtype="float32",
        name=name,
    )


def fusion_builder(cls: type) -> Callable[..., keras.layers.Layer]:
    """The registry builder of a fusion class: ``builder(context, **hyperparameters)`` returns
    ``cls(seed=<the model's fusion seed>, name="fusion", **hyperparameters)``."""

    def builder(context: BuildContext, **hyperparameters) -> keras.layers.Layer:
        return cls(seed=context.derive_seed(FUSION_SEED), name="fusion", **hyperparameters)

    builder.__name__ = builder.__qualname__ = f"build_{cls.__name__}"
    return builder
