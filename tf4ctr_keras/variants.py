"""Every variant registry of the package in one place, and what configs derive from them.

Importing this module imports every variant module, so the registries are complete:

- :data:`SELECTORS`, :data:`FUSIONS`: ``builder(context: BuildContext, **hyperparameters)``
  -> layer. Their hyperparameters share one namespace (:func:`hyperparameters`).
- :data:`ENCODERS`: ``builder(context, **hyperparameters)`` -> :class:`SimpleSide`.
- :data:`LOSSES`: ``builder(**hyperparameters)`` -> ``keras.losses.Loss``.
- :data:`MODELS`: ``builder(vocab_sizes, **hyperparameters)`` -> :class:`TF4CTR`.

Example:
    >>> from tf4ctr_keras.variants import FUSIONS, hyperparameters
    >>> FUSIONS.names()
    ['wsf', 'vf', 'cf', 'moef', 'sum']
    >>> hyperparameters()["temperature"]
    0.8
"""

from __future__ import annotations

from typing import Any

import keras

from tf4ctr_keras.layers.fusion import FUSIONS
from tf4ctr_keras.layers.sample_selection import SELECTORS
from tf4ctr_keras.losses import LOSSES, TwinFocusLoss, build_loss
from tf4ctr_keras.models.builders import MODELS
from tf4ctr_keras.models.encoders import ENCODERS, SimpleSide
from tf4ctr_keras.models.tf4ctr import CTR_OUTPUT, TWIN_OUTPUT
from tf4ctr_keras.registry import BuildContext, Registry

REGISTRIES: dict[str, Registry] = {
    "selector": SELECTORS,
    "encoder": ENCODERS,
    "fusion": FUSIONS,
    "loss": LOSSES,
    "model": MODELS,
}


def hyperparameters(kind: str | None = None) -> dict[str, Any]:
    """Hyperparameter -> default declared by the variants of one kind (``"selector"``,
    ``"encoder"``, ``"fusion"``, ``"loss"``, ``"model"``), or by default by all selectors and
    fusions: the model options a TF4CTR config exposes besides the encoders'."""
    if kind is None:
        return {**SELECTORS.hyperparameters(), **FUSIONS.hyperparameters()}
    if kind not in REGISTRIES:
        raise ValueError(f"Unknown kind `{kind}`. Valid choices: {', '.join(REGISTRIES)}.")
    return REGISTRIES[kind].hyperparameters()


def encoder_hyperparameters() -> dict[str, Any]:
    """Hyperparameter -> default of every simple encoder (``cross_layers``, ...)."""
    return ENCODERS.hyperparameters()


def output_losses(loss: str, **hyperparameters) -> dict[str, keras.losses.Loss]:
    """The loss per model output for the loss named `loss` (see :func:`build_loss`): the
    Twin Focus loss goes on ``twin_logits`` beside log loss on ``ctr``; any other on ``ctr``."""
    built = build_loss(loss, **hyperparameters)
    if isinstance(built, TwinFocusLoss):
        return {CTR_OUTPUT: keras.losses.BinaryCrossentropy(), TWIN_OUTPUT: built}
    return {CTR_OUTPUT: built}


__all__ = [
    "ENCODERS",
    "FUSIONS",
    "LOSSES",
    "MODELS",
    "REGISTRIES",
    "SELECTORS",
    "BuildContext",
    "SimpleSide",
    "build_loss",
    "encoder_hyperparameters",
    "hyperparameters",
    "output_losses",
]
