"""Small helpers shared by the layers."""

from __future__ import annotations


def derive_seed(seed: int | None, offset: int) -> int | None:
    """A distinct, reproducible seed per sublayer (same-shaped kernels must not start equal)."""
    return None if seed is None else int(seed) * 1009 + offset


def build_once(layer, *args) -> None:
    """Builds a child layer unless it is built already.

    When a model is loaded from a ``.keras`` file, Keras deserializes and builds the child
    layers that were passed to the constructor before the parent's ``build`` runs; building
    them twice would try to create their variables again.
    """
    if not layer.built:
        layer.build(*args)
