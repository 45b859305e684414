"""Sample Selection Embedding Module (SSEM, TF4CTR section 3.3): four variants.

Each selector maps the id dict to the pair ``(simple_input, complex_input)``, both of shape
``(batch, fields, dim)``; the simple and complex encoders consume one each. Each is registered
in :data:`SELECTORS` with the hyperparameters the model builder passes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
from keras import ops

from tf4ctr_keras.layers.field_embedding import (
    FieldEmbedding,
    check_fields,
    numeric_field_list,
)
from tf4ctr_keras.layers.mlp_block import MLPBlock
from tf4ctr_keras.layers.utils import get_initializer, serialize_initializer
from tf4ctr_keras.registry import (
    PART_HYPERPARAMETERS,
    SELECTOR_SEED,
    BuildContext,
    Registry,
    check_range,
    derive_seed,
    register,
)


class _SampleSelector(keras.layers.Layer):
    """Shared constructor and config for the selectors (not registered: abstract).

    Every selector takes ``vocab_sizes``, ``embedding_dim``, ``sequence_fields``,
    ``embedding_l2``, ``seed``, ``embeddings_initializer`` and ``numeric_fields`` as
    :class:`FieldEmbedding`, and its input is FieldEmbedding's: the dict of ids (numeric
    fields: float values, NaN = missing).
    """

    def __init__(
        self,
        vocab_sizes: Mapping[str, int],
        embedding_dim: int = 16,
        sequence_fields: Mapping[str, str] | None = None,
        embedding_l2: float = 0.0,
        seed: int | None = None,
        embeddings_initializer=None,
        numeric_fields: Sequence[str] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.vocab_sizes = dict(vocab_sizes)
        self.embedding_dim = embedding_dim
        self.sequence_fields = dict(sequence_fields or {})
        self.numeric_fields = numeric_field_list(numeric_fields)
        self.embedding_l2 = embedding_l2
        self.seed = seed
        self.embeddings_initializer = get_initializer(embeddings_initializer)
        check_fields(
            self.vocab_sizes,
            embedding_dim,
            self.sequence_fields,
            embedding_l2,
            self.numeric_fields,
        )

    def _embedding(self, dim: int, name: str, offset: int) -> FieldEmbedding:
        embedding = FieldEmbedding(
            self.vocab_sizes,
            dim,
            sequence_fields=self.sequence_fields,
            numeric_fields=self.numeric_fields,
            embedding_l2=self.embedding_l2,
            seed=derive_seed(self.seed, offset),
            embeddings_initializer=self.embeddings_initializer,
            dtype=self.dtype_policy,
            name=name,
        )
        embedding.build()
        return embedding

    @property
    def num_fields(self) -> int:
        return len(self.vocab_sizes)

    @property
    def simple_dim(self) -> int:
        """Width of each field vector on the simple side."""
        return self.embedding_dim

    @property
    def complex_dim(self) -> int:
        return self.embedding_dim

    def build(self, input_shape=None) -> None:
        self.embedding = self._embedding(self.embedding_dim, "embedding", 0)

    def compute_output_shape(self, input_shape=None):
        return (
            (None, self.num_fields, self.simple_dim),
            (None, self.num_fields, self.complex_dim),
        )

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            vocab_sizes=self.vocab_sizes,
            embedding_dim=self.embedding_dim,
            sequence_fields=self.sequence_fields,
            numeric_fields=self.numeric_fields,
            embedding_l2=self.embedding_l2,
            seed=self.seed,
            embeddings_initializer=serialize_initializer(self.embeddings_initializer),
        )
        return config


@register
class SeparateEmbeddingSelector(_SampleSelector):
    """Separate embeddings (SER in TF4CTR section 3.3): one table per encoder.

    ``e_simple = E_s[x]`` with ``simple_embedding_dim`` columns and ``e_complex = E_c[x]`` with
    ``embedding_dim`` columns; the encoders' gradients never meet in the embeddings. The
    reference builds the simple table at ``embedding_dim // 2`` (8 for d = 16) in every log.

    Args:
        vocab_sizes: ordered mapping field -> number of ids.
        embedding_dim: complex-side width ``d``. Default 16.
        simple_embedding_dim: simple-side width. Default ``embedding_dim // 2``.
        sequence_fields, numeric_fields, embedding_l2, seed, embeddings_initializer: as
            :class:`FieldEmbedding`.

    Output: ``((batch, fields, simple_embedding_dim), (batch, fields, embedding_dim))``.
    """

    def __init__(self, vocab_sizes, embedding_dim=16, simple_embedding_dim=None, **kwargs):
        super().__init__(vocab_sizes, embedding_dim, **kwargs)
        if simple_embedding_dim is None:
            simple_embedding_dim = max(1, embedding_dim // 2)
        if not isinstance(simple_embedding_dim, int) or simple_embedding_dim < 1:
            raise ValueError(
                "`simple_embedding_dim` must be a positive int. "
                f"Received: `simple_embedding_dim={simple_embedding_dim!r}`"
            )
        self.simple_embedding_dim = simple_embedding_dim

    @property
    def simple_dim(self) -> int:
        return self.simple_embedding_dim

    def build(self, input_shape=None) -> None:
        super().build(input_shape)
        self.simple_embedding = self._embedding(self.simple_embedding_dim, "simple_embedding", 1)

    def call(self, inputs):
        return self.simple_embedding(inputs), self.embedding(inputs)

    def get_config(self) -> dict:
        return {**super().get_config(), "simple_embedding_dim": self.simple_embedding_dim}


@register
class SharedEmbeddingSelector(_SampleSelector):
    """One shared table feeds both encoders ("Share" in TF4CTR Table III; ``SSM: none``).

    Output: the same ``(batch, fields, embedding_dim)`` tensor twice.
    """

    def call(self, inputs):
        embedded = self.embedding(inputs)
        return embedded, embedded


@register
class GatedSampleSelector(_SampleSelector):
    """Gate module (GM in TF4CTR section 3.3): a scalar gate splits one embedding in two.

    ``g = sigmoid(MLP(h))`` with one hidden layer of width ``D // 4`` (``D = fields * dim``);
    ``e_simple = g * h`` and ``e_complex = (1 - g) * h``, so the two parts are complementary
    (they sum to ``h``). The gate runs in float32.

    Args:
        vocab_sizes, embedding_dim, sequence_fields, numeric_fields, embedding_l2, seed: as the
            other selectors.
        dropout: dropout of the gate's hidden layer (the model's dropout in the reference).
        batch_norm: BatchNorm in the gate's hidden layer. Default True.
    """

    def __init__(self, vocab_sizes, embedding_dim=16, dropout=0.0, batch_norm=True, **kwargs):
        super().__init__(vocab_sizes, embedding_dim, **kwargs)
        check_range("dropout", dropout, 0.0, 1.0, high_inclusive=False)
        self.dropout = float(dropout)
        self.batch_norm = bool(batch_norm)

    def build(self, input_shape=None) -> None:
        super().build(input_shape)
        width = self.num_fields * self.embedding_dim
        self.gate = MLPBlock(
            [max(1, width // 4)],
            dropout=self.dropout,
            batch_norm=self.batch_norm,
            output_dim=1,
            seed=derive_seed(self.seed, 2),
            dtype="float32",
            name="gate",
        )
        self.gate.build((None, width))

    def call(self, inputs, training=None):
        embedded = self.embedding(inputs)  # (batch, fields, dim)
        gate = ops.sigmoid(self.gate(ops.cast(embedded, "float32"), training=training))
        gate = ops.cast(gate, embedded.dtype)[:, :, None]  # (batch, 1, 1)
        return gate * embedded, (1.0 - gate) * embedded

    def get_config(self) -> dict:
        return {**super().get_config(), "dropout": self.dropout, "batch_norm": self.batch_norm}


@register
class MMoESampleSelector(_SampleSelector):
    """Multi-gate mixture of experts (MMoE in TF4CTR section 3.3), one gate per encoder.

    Experts are MLPs ``D -> [D // 2, D]``; each of the two gates is ``MLP(D -> [D // 4]) -> Dense
    (num_experts)`` followed by a float32 softmax. ``e_k = sum_i g_k,i * expert_i(h)`` for
    k in {simple, complex}, reshaped back to ``(batch, fields, dim)``.

    Args:
        vocab_sizes, embedding_dim, sequence_fields, numeric_fields, embedding_l2, seed: as the
            other selectors.
        num_experts: number of experts. Default 2 (the reference).
        dropout: dropout of the experts' and gates' hidden layers.
        batch_norm: BatchNorm in experts and gates. Default True.
    """

    def __init__(
        self, vocab_sizes, embedding_dim=16, num_experts=2, dropout=0.0, batch_norm=True, **kwargs
    ):
        super().__init__(vocab_sizes, embedding_dim, **kwargs)
        if not isinstance(num_experts, int) or num_experts < 2:
            raise ValueError(f"`num_experts` must be >= 2. Received: `num_experts={num_experts!r}`")
        check_range("dropout", dropout, 0.0, 1.0, high_inclusive=False)
        self.num_experts = num_experts
        self.dropout = float(dropout)
        self.batch_norm = bool(batch_norm)

    def build(self, input_shape=None) -> None:
        super().build(input_shape)
        width = self.num_fields * self.embedding_dim
        self.experts = [
            MLPBlock(
                [max(1, width // 2), width],
                dropout=self.dropout,
                batch_norm=self.batch_norm,
                seed=derive_seed(self.seed, 10 + i),
                dtype=self.dtype_policy,
                name=f"expert_{i}",
            )
            for i in range(self.num_experts)
        ]
        self.gates = [
            MLPBlock(
                [max(1, width // 4)],
                dropout=self.dropout,
                batch_norm=self.batch_norm,
                output_dim=self.num_experts,
                seed=derive_seed(self.seed, 20 + i),
                dtype="float32",
                name=f"gate_{i}",
            )
            for i in range(2)
        ]
        for layer in [*self.experts, *self.gates]:
            layer.build((None, width))

    def call(self, inputs, training=None):
        embedded = self.embedding(inputs)
        flat = ops.reshape(embedded, (-1, self.num_fields * self.embedding_dim))
        experts = ops.stack(
            [ops.cast(e(flat, training=training), "float32") for e in self.experts], axis=1
        )  # (batch, experts, D)
        outputs = []
        for gate in self.gates:
            weights = ops.softmax(gate(ops.cast(flat, "float32"), training=training), axis=-1)
            mixed = ops.sum(experts * weights[:, :, None], axis=1)  # (batch, D)
            mixed = ops.reshape(mixed, (-1, self.num_fields, self.embedding_dim))
            outputs.append(ops.cast(mixed, self.compute_dtype))
        return outputs[0], outputs[1]

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_experts": self.num_experts,
            "dropout": self.dropout,
            "batch_norm": self.batch_norm,
        }


def _common(context: BuildContext) -> dict:
    """Constructor arguments every selector takes from the model's context."""
    return dict(
        embedding_dim=context.embedding_dim,
        sequence_fields=context.sequence_fields,
        numeric_fields=context.numeric_fields,
        embedding_l2=context.embedding_l2,
        seed=context.derive_seed(SELECTOR_SEED),
        name="selector",
    )


def build_separate(context: BuildContext, simple_embedding_dim=None) -> SeparateEmbeddingSelector:
    return SeparateEmbeddingSelector(
        context.vocab_sizes, simple_embedding_dim=simple_embedding_dim, **_common(context)
    )


def build_shared(context: BuildContext) -> SharedEmbeddingSelector:
    return SharedEmbeddingSelector(context.vocab_sizes, **_common(context))


def build_gated(context: BuildContext) -> GatedSampleSelector:
    return GatedSampleSelector(
        context.vocab_sizes,
        dropout=context.dropout,
        batch_norm=context.batch_norm,
        **_common(context),
    )


def build_mmoe(context: BuildContext, num_experts=2) -> MMoESampleSelector:
    return MMoESampleSelector(
        context.vocab_sizes,
        num_experts=num_experts,
        dropout=context.dropout,
        batch_norm=context.batch_norm,
        **_common(context),
    )


#: Builders are called ``builder(context: BuildContext, **hyperparameters) -> selector``.
SELECTORS = Registry("sample selector", namespace=PART_HYPERPARAMETERS)
SELECTORS.add("ser", build_separate, defaults={"simple_embedding_dim": None}, aliases=["separate"])
SELECTORS.add("gate", build_gated, aliases=["gm"])
SELECTORS.add("mmoe", build_mmoe, defaults={"num_experts": 2}, aliases=["moe"])
SELECTORS.add("shared", build_shared, aliases=["share", "none"])
