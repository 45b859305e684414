"""Vectorized serialization of int64-only ``tf.train.Example`` records.

Why hand-written: building one ``tf.train.Example`` per row in Python runs at about 14 k rows/s
for 40 features, and ``tf.io.encode_proto`` at about 40 k rows/s; Criteo has 45 M rows. Every
record here has the same shape (a fixed set of int64 features, scalar or fixed length), so the
wire format is a fixed template in which only the varint bytes of the values and a few length
bytes vary. This module lays every row out in a ``uint8`` matrix with a validity mask and lets
numpy gather the bytes, about 30x faster than the protobuf runtime. ``tests/test_example_codec.py``
checks the bytes against ``tf.train.Example`` parsing and ``tf.io.parse_example``.

Wire format (proto3, packed repeated int64)::

    Example   = 0x0A len(Features) Features
    Features  = for each feature: 0x0A len(Entry) Entry
    Entry     = 0x0A len(key) key 0x12 len(Feature) Feature
    Feature   = 0x1A len(Int64List) Int64List
    Int64List = 0x0A len(packed) varint(v_1) ... varint(v_k)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_MAX_VARINT = 10


def _varint_len(values: np.ndarray) -> np.ndarray:
    """Bytes of the base-128 varint of each non-negative value (1..10)."""
    v = values.astype(np.uint64)
    length = np.ones(v.shape, dtype=np.int64)
    for k in range(1, _MAX_VARINT):
        length += v >= np.uint64(1) << np.uint64(7 * k)
    return length


def _varint_bytes(values: np.ndarray, width: int) -> np.ndarray:
    """``(n, width)`` uint8 varint bytes, left-aligned; bytes past the length are don't-care."""
    v = values.astype(np.uint64)[:, None]
    shifts = (np.arange(width, dtype=np.uint64) * np.uint64(7))[None, :]
    groups = ((v >> shifts) & np.uint64(0x7F)).astype(np.uint8)
    more = (v >> (shifts + np.uint64(7))) > 0
    return groups | (more.astype(np.uint8) << 7)


def _varint_matrix(values: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Varint bytes ``(n, width)`` and a mask of the bytes that belong to the varint."""
    lengths = _varint_len(values)
    mask = np.arange(width)[None, :] < lengths[:, None]
    return _varint_bytes(values, width), mask


class ExampleEncoder:
    """Serializes rows of int64 features into ``tf.train.Example`` bytes.

    Args:
        features: ``(name, length)`` pairs in output order; ``length`` 1 writes a scalar
            feature (one value), ``k > 1`` a fixed-length list of ``k`` values.
        max_values: optional per-feature upper bound of the values (e.g. the vocabulary size),
            used to size the varint slots; default 2**63 - 1.

    Example:
        >>> enc = ExampleEncoder([("user", 1), ("label", 1)])
        >>> records = enc.encode({"user": np.array([3, 700]), "label": np.array([1, 0])})
    """

    def __init__(self, features: Sequence[tuple[str, int]], max_values: dict | None = None):
        self.features = [(str(n), int(k)) for n, k in features]
        max_values = max_values or {}
        self._widths = {}
        for name, length in self.features:
            key = name.encode("utf-8")
            if len(key) > 100:
                raise ValueError(f"Feature names must be <= 100 bytes. Received: `{name}`")
            if length < 1 or length > 8:
                raise ValueError(f"Feature length must be in [1, 8]. Received: `{name}`={length}")
            bound = int(max_values.get(name, 2**63 - 1))
            self._widths[name] = int(_varint_len(np.array([max(bound, 0)]))[0])

    def encode(self, columns: dict[str, np.ndarray]) -> list[bytes]:
        """Returns one serialized Example per row.

        Args:
            columns: feature name -> non-negative int array ``[n]`` (scalar features) or
                ``[n, length]`` (list features).
        """
        n = len(next(iter(columns.values())))
        blocks: list[np.ndarray] = []
        masks: list[np.ndarray] = []
        body_len = np.zeros(n, dtype=np.int64)
        for name, length in self.features:
            values = np.asarray(columns[name], dtype=np.int64).reshape(n, length)
            if n and values.min() < 0:
                raise ValueError(f"Feature `{name}` holds negative ids; ids must be >= 0.")
            width = self._widths[name]
            key = name.encode("utf-8")
            var_blocks, var_masks = [], []
            packed = np.zeros(n, dtype=np.int64)
            for j in range(length):
                b, m = _varint_matrix(values[:, j], width)
                var_blocks.append(b)
                var_masks.append(m)
                packed += m.sum(axis=1)
            il_len = packed + 2
            feat_len = il_len + 2
            entry_len = 2 + len(key) + 2 + feat_len  # all < 128: one length byte each
            head = np.empty((n, 4 + len(key) + 6), dtype=np.uint8)
            head[:, 0] = 0x0A
            head[:, 1] = entry_len
            head[:, 2] = 0x0A
            head[:, 3] = len(key)
            head[:, 4 : 4 + len(key)] = np.frombuffer(key, dtype=np.uint8)
            tail = head[:, 4 + len(key) :]
            tail[:, 0] = 0x12
            tail[:, 1] = feat_len
            tail[:, 2] = 0x1A
            tail[:, 3] = il_len
            tail[:, 4] = 0x0A
            tail[:, 5] = packed
            blocks.append(head)
            masks.append(np.ones(head.shape, dtype=bool))
            blocks.extend(var_blocks)
            masks.extend(var_masks)
            body_len += 2 + entry_len
        prefix, prefix_mask = _varint_matrix(body_len, 3)
        tag = np.full((n, 1), 0x0A, dtype=np.uint8)
        matrix = np.concatenate([tag, prefix, *blocks], axis=1)
        mask = np.concatenate([np.ones((n, 1), dtype=bool), prefix_mask, *masks], axis=1)
        flat = matrix[mask].tobytes()
        ends = np.cumsum(mask.sum(axis=1))
        starts = ends - mask.sum(axis=1)
        return [flat[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
