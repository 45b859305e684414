"""Small helpers shared by the layers."""

from __future__ import annotations

import keras

from tf4ctr_keras.registry import derive_seed


def get_initializer(initializer):
    """``keras.initializers.get``, keeping None (which means "the layer's seeded default")."""
    return None if initializer is None else keras.initializers.get(initializer)


def serialize_initializer(initializer):
    return None if initializer is None else keras.initializers.serialize(initializer)


def kernel_initializer_for(initializer, seed: int | None, offset: int):
    """A fresh copy of `initializer` for one kernel, or by default Xavier-normal seeded with
    ``derive_seed(seed, offset)`` (each kernel of a layer gets its own offset)."""
    if initializer is None:
        return keras.initializers.GlorotNormal(seed=derive_seed(seed, offset))
    return clone_initializer(initializer)


def clone_initializer(initializer):
    """A copy of an initializer object (one per variable, as keras-hub does)."""
    return initializer.__class__.from_config(initializer.get_config())
