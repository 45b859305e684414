"""Hashed categorical fields: Keras' ``Hashing`` layer, the same function in preprocessing and
in the serving graph (FarmHash64 of the UTF-8 token, modulo the bucket count)."""

from __future__ import annotations

import numpy as np

_LAYERS: dict[int, object] = {}


def hashing_layer(buckets: int):
    """A ``keras.layers.Hashing(num_bins=buckets)`` (cached per bucket count)."""
    if buckets not in _LAYERS:
        import keras

        _LAYERS[buckets] = keras.layers.Hashing(num_bins=int(buckets), dtype="int64")
    return _LAYERS[buckets]


def hash_ids(tokens: np.ndarray, buckets: int) -> np.ndarray:
    """Bucket of each token in ``[0, buckets)`` (int64); the caller reserves the low ids."""
    import tensorflow as tf

    if len(tokens) == 0:
        return np.zeros(0, dtype=np.int64)
    values = tf.constant(np.asarray(tokens, dtype=object))
    return np.asarray(hashing_layer(buckets)(values), dtype=np.int64).reshape(-1)
