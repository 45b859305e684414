"""Per-field embeddings: categorical ids, pooled id sequences and dense numeric values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tf4ctr_keras.layers.utils import clone_initializer, get_initializer, serialize_initializer
from tf4ctr_keras.registry import check_choice, check_range, register

SEQUENCE_COMBINERS = ("mean", "sum")
#: Rows of a numeric field's table: row 0 is the missing-value vector, row 1 the value vector.
NUMERIC_VOCAB_SIZE = 2


def numeric_field_list(numeric_fields: Sequence[str] | None) -> list[str]:
    """``numeric_fields`` as a list of names (None -> ``[]``); a bare string is rejected, as it
    would otherwise read as a sequence of one-letter fields."""
    if numeric_fields is None:
        return []
    if isinstance(numeric_fields, str | bytes) or not isinstance(numeric_fields, Sequence):
        raise ValueError(
            "`numeric_fields` must be a sequence of field names. "
            f"Received: `numeric_fields={numeric_fields!r}`"
        )
    return [str(name) for name in numeric_fields]


def check_fields(
    vocab_sizes: Mapping[str, int],
    embedding_dim: int,
    sequence_fields: Mapping[str, str] | None = None,
    embedding_l2: float = 0.0,
    numeric_fields: Sequence[str] | None = None,
) -> dict[str, str]:
    """Validates embedding arguments (raising with the value received); returns the sequence
    fields as a dict. Layers that make their tables in ``build()`` call it at construction.

    A numeric field must be a key of ``vocab_sizes`` with size 2 (its missing and value rows)
    and cannot also be a sequence field."""
    if not isinstance(vocab_sizes, Mapping) or not vocab_sizes:
        raise ValueError(
            "`vocab_sizes` must be a non-empty mapping field -> size. "
            f"Received: `vocab_sizes={vocab_sizes!r}`"
        )
    for name, size in vocab_sizes.items():
        if not isinstance(size, int | np.integer) or isinstance(size, bool) or size < 1:
            raise ValueError(f"`vocab_sizes[{name!r}]` must be a positive int. Received: {size!r}")
    if not isinstance(embedding_dim, int) or embedding_dim < 1:
        raise ValueError(
            f"`embedding_dim` must be a positive int. Received: `embedding_dim={embedding_dim!r}`"
        )
    sequence_fields = dict(sequence_fields or {})
    for name, combiner in sequence_fields.items():
        if name not in vocab_sizes:
            raise ValueError(
                f"Sequence field {name!r} is not in `vocab_sizes` ({list(vocab_sizes)})."
            )
        check_choice(f"sequence_fields[{name!r}]", combiner, SEQUENCE_COMBINERS)
    for name in numeric_field_list(numeric_fields):
        if name not in vocab_sizes:
            raise ValueError(
                f"Numeric field {name!r} is not in `vocab_sizes` ({list(vocab_sizes)})."
            )
        if vocab_sizes[name] != NUMERIC_VOCAB_SIZE:
            raise ValueError(
                f"`vocab_sizes[{name!r}]` of numeric field {name!r} must be "
                f"{NUMERIC_VOCAB_SIZE} (missing row, value row). Received: {vocab_sizes[name]!r}"
            )
        if name in sequence_fields:
            raise ValueError(
                f"Field {name!r} cannot be both a sequence and a numeric field. Received: "
                f"`sequence_fields[{name!r}]={sequence_fields[name]!r}` and {name!r} in "
                "`numeric_fields`"
            )
    check_range("embedding_l2", embedding_l2, 0.0)
    return sequence_fields


@register
class FieldEmbedding(keras.layers.Layer):
    """Embeds every field's ids and stacks them to ``(batch, fields, dim)``.

    Each field owns ``vocab_sizes[field]`` rows, as one ``nn.Embedding`` per field does in the
    reference. The tables are stored as one concatenated matrix with per-field row offsets, so a
    forward pass is one gather instead of one per field (39 fields on Criteo); the parameters,
    the initialisation and the L2 penalty are the same as with separate tables, because the
    penalty is a sum over all rows either way.

    Ids follow the Keras lookup convention: for categorical fields 0 is out-of-vocabulary; for
    sequence fields 0 is padding (masked out of the pooling) and 1 is out-of-vocabulary.

    Every id is checked against its field's size: in the fused table an id ``>= vocab_size``
    would silently read the next field's rows (a negative one the previous field's), where the
    reference's per-field ``nn.Embedding`` raises. A call with such an id fails with
    ``InvalidArgumentError`` naming the fields, their sizes and the largest id of each. (XLA,
    ``--jit``, drops the check: it compiles no assertions.)

    A numeric field (FuxiCTR's numeric embedding) takes an already normalized float value
    ``x`` and gives ``e_f = x * v_f``; a missing value (NaN) gives ``e_f = m_f``. Its two rows
    are part of the same table (``vocab_sizes[f] == 2``: row 0 is ``m_f``, row 1 is ``v_f``), so
    the lookup stays one gather: ``e_f = E[offset_f + (0 if isnan(x) else 1)] * (1 if isnan(x)
    else x)``. NaN never reaches a multiply, so outputs and gradients stay finite.

    Regularization follows FuxiCTR 2.0.1: ``(embedding_l2 / 2) * ||E||^2`` over the whole table
    every step (the reference's ``embedding_regularizer``), i.e. Keras ``L2(embedding_l2 / 2)``.

    Args:
        vocab_sizes: ordered mapping field name -> number of ids (rows) of that field.
        embedding_dim: width ``d`` of every field vector.
        sequence_fields: mapping field name -> combiner (``"mean"`` or ``"sum"``) for fields fed
            as ``(batch, max_len)`` id lists. Defaults to none. ``"mean"`` is FuxiCTR's
            ``MaskedAveragePooling``: the sum of non-padding rows over their count (+1e-12).
        numeric_fields: names of dense numeric fields (each a key of ``vocab_sizes`` with size
            2, not a sequence field). Defaults to none.
        embedding_l2: the reference's lambda; the penalty is ``lambda / 2 * ||E||^2`` (numeric
            rows included). Default 0.
        initializer_stddev: std of the normal initializer. Default 1e-4 (the reference).
        seed: optional int seed for the initializer.
        embeddings_initializer: optional initializer of the table; default None, the normal
            initializer above (``RandomNormal(initializer_stddev, seed)``).

    Input: dict field -> int tensor ``(batch,)`` (or ``(batch, 1)``); sequence fields
        ``(batch, max_len)``; numeric fields float ``(batch,)`` (or ``(batch, 1)``), NaN for a
        missing value.
    Output: float tensor ``(batch, len(vocab_sizes), embedding_dim)`` in the vocab_sizes order.

    Example:
        >>> emb = FieldEmbedding({"user": 10, "item": 20}, embedding_dim=4)
        >>> emb({"user": np.array([1, 2]), "item": np.array([0, 5])}).shape
        (2, 2, 4)
        >>> emb = FieldEmbedding({"user": 10, "age": 2}, 4, numeric_fields=["age"])
        >>> emb({"user": np.array([1, 2]), "age": np.array([0.3, np.nan], "float32")}).shape
        (2, 2, 4)
    """

    def __init__(
        self,
        vocab_sizes: Mapping[str, int],
        embedding_dim: int,
        sequence_fields: Mapping[str, str] | None = None,
        embedding_l2: float = 0.0,
        initializer_stddev: float = 1e-4,
        seed: int | None = None,
        embeddings_initializer=None,
        numeric_fields: Sequence[str] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        numeric_fields = numeric_field_list(numeric_fields)
        sequence_fields = check_fields(
            vocab_sizes, embedding_dim, sequence_fields, embedding_l2, numeric_fields
        )
        check_range("initializer_stddev", initializer_stddev, 0.0, low_inclusive=False)
        self.vocab_sizes = {str(k): int(v) for k, v in vocab_sizes.items()}
        self.embedding_dim = embedding_dim
        self.sequence_fields = sequence_fields
        self.numeric_fields = numeric_fields
        self.embedding_l2 = float(embedding_l2)
        self.initializer_stddev = float(initializer_stddev)
        self.seed = seed
        self.embeddings_initializer = get_initializer(embeddings_initializer)

        names = list(self.vocab_sizes)
        self.field_names = names
        self._offsets = np.concatenate([[0], np.cumsum(list(self.vocab_sizes.values()))[:-1]])
        self._categorical = [
            n for n in names if n not in sequence_fields and n not in numeric_fields
        ]
        self._numeric = [n for n in names if n in numeric_fields]
        self._sequence = [n for n in names if n in sequence_fields]
        # Output position of each field after [categorical..., numeric..., sequence...].
        order = self._categorical + self._numeric + self._sequence
        self._perm = [order.index(n) for n in names]
        self._identity_order = self._perm == list(range(len(names)))

    @property
    def num_fields(self) -> int:
        return len(self.vocab_sizes)

    def build(self, input_shape=None) -> None:
        regularizer = (
            keras.regularizers.L2(self.embedding_l2 / 2.0) if self.embedding_l2 > 0 else None
        )
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(int(sum(self.vocab_sizes.values())), self.embedding_dim),
            initializer=(
                keras.initializers.RandomNormal(stddev=self.initializer_stddev, seed=self.seed)
                if self.embeddings_initializer is None
                else clone_initializer(self.embeddings_initializer)
            ),
            regularizer=regularizer,
            trainable=True,
        )
        self.built = True

    def _field(self, inputs, name: str):
        if name not in inputs:
            raise KeyError(
                f"FieldEmbedding `{self.name}` needs input field {name!r}; "
                f"received fields {sorted(inputs)}."
            )
        return inputs[name]

    def _field_ids(self, inputs, name: str):
        return ops.cast(self._field(inputs, name), "int32")

    def _categorical_ids(self, inputs):
        """The categorical fields' ids as one ``(batch, fc)`` int32 tensor.

        Where every field's input has the same dtype and the same static shape, ``(batch,)``
        or ``(batch, 1)``, this is one stack or concatenation and one cast, whatever the
        number of fields; otherwise a cast and a reshape per field, then a stack. Same ids
        either way: a batch-1 request of Criteo's 39 fields runs 2 ops here instead of 79."""
        if not self._categorical:
            return None
        tensors = [self._field(inputs, n) for n in self._categorical]
        first = tensors[0]
        rank = len(first.shape)
        same = all(t.dtype == first.dtype and len(t.shape) == rank for t in tensors)
        if same and rank == 1:
            return ops.cast(ops.stack(tensors, axis=1), "int32")
        if same and rank == 2 and all(t.shape[-1] == 1 for t in tensors):
            return ops.cast(ops.concatenate(tensors, axis=1), "int32")
        columns = [ops.reshape(ops.cast(t, "int32"), (-1,)) for t in tensors]
        return ops.stack(columns, axis=1)

    def _check_ids(self, ids, names: list[str]) -> None:
        """Fails the call if an id of ``ids`` (``(batch, len(names))``, or ``(batch, max_len)``
        for one sequence field) is outside ``[0, vocab_size)`` of its field."""
        sizes = np.asarray([self.vocab_sizes[n] for n in names], "int32")
        in_range = ops.logical_and(ops.greater_equal(ids, 0), ops.less(ids, sizes))
        tf.debugging.Assert(
            ops.all(in_range),
            [
                f"FieldEmbedding `{self.name}`: an id is outside [0, vocab_size) of its field "
                f"(it would read another field's rows). Fields and sizes: "
                f"{dict(zip(names, sizes.tolist(), strict=True))}; largest and smallest id:",
                ops.max(ids, axis=0),
                ops.min(ids, axis=0),
            ],
            summarize=64,
        )

    def _numeric_ids_and_scales(self, inputs):
        """Row ids (0 missing, 1 present) and scales (1 missing, x present), each
        ``(batch, numeric fields)``. NaN is replaced before anything multiplies it."""
        values = ops.stack(
            [
                ops.reshape(ops.cast(self._field(inputs, n), "float32"), (-1,))
                for n in self._numeric
            ],
            axis=1,
        )  # (batch, fn) float32
        missing = ops.isnan(values)
        ids = ops.cast(ops.logical_not(missing), "int32")
        scales = ops.where(missing, ops.ones_like(values), values)
        return ids, scales

    def call(self, inputs):
        table = self.embeddings
        parts = []
        single = self._categorical + self._numeric  # one row per field: one gather
        if single:
            ids = self._categorical_ids(inputs)  # (batch, fc) or None
            if ids is not None:
                self._check_ids(ids, self._categorical)
            if self._numeric:
                numeric_ids, scales = self._numeric_ids_and_scales(inputs)  # (batch, fn)
                ids = numeric_ids if ids is None else ops.concatenate([ids, numeric_ids], axis=1)
            offsets = np.asarray(
                [self._offsets[self.field_names.index(n)] for n in single], "int32"
            )
            vectors = ops.take(table, ids + offsets, axis=0)  # (batch, fc + fn, dim)
            if self._numeric:
                if self._categorical:
                    ones = ops.ones_like(ids[:, : len(self._categorical)], dtype="float32")
                    scales = ops.concatenate([ones, scales], axis=1)  # (batch, fc + fn)
                vectors = vectors * ops.cast(scales, vectors.dtype)[..., None]
            parts.append(vectors)
        for name in self._sequence:
            ids = self._field_ids(inputs, name)  # (batch, max_len)
            self._check_ids(ids, [name] * ids.shape[-1])
            offset = int(self._offsets[self.field_names.index(name)])
            vectors = ops.take(table, ids + offset, axis=0)  # (batch, max_len, dim)
            mask = ops.cast(ops.not_equal(ids, 0), vectors.dtype)[..., None]
            pooled = ops.sum(vectors * mask, axis=1)  # (batch, dim)
            if self.sequence_fields[name] == "mean":
                # max(count, 1) == the reference's count + 1e-12 for integer counts, and stays
                # finite in float16 where 1e-12 underflows to zero.
                pooled = pooled / ops.maximum(ops.sum(mask, axis=1), 1.0)
            parts.append(pooled[:, None, :])
        out = parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=1)
        if not self._identity_order:
            out = ops.take(out, np.asarray(self._perm, "int32"), axis=1)
        return ops.cast(out, self.compute_dtype)

    def compute_output_shape(self, input_shape=None):
        return (None, self.num_fields, self.embedding_dim)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            vocab_sizes=self.vocab_sizes,
            embedding_dim=self.embedding_dim,
            sequence_fields=self.sequence_fields,
            numeric_fields=self.numeric_fields,
            embedding_l2=self.embedding_l2,
            initializer_stddev=self.initializer_stddev,
            seed=self.seed,
            embeddings_initializer=serialize_initializer(self.embeddings_initializer),
        )
        return config
