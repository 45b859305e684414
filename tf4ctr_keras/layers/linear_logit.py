"""Logistic-regression (wide) logit on the id dict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
from keras import ops

from tf4ctr_keras.layers.field_embedding import (
    FieldEmbedding,
    check_fields,
    numeric_field_list,
)
from tf4ctr_keras.layers.utils import clone_initializer, get_initializer, serialize_initializer
from tf4ctr_keras.registry import register


@register
class LinearLogit(keras.layers.Layer):
    """Logistic-regression (wide) logit: ``y = b + sum_f w_f[x_f]``.

    The reference's ``LogisticRegression``: one 1-dim embedding per field, summed, plus an
    optional bias. The table takes the same embedding L2 as the other tables (FuxiCTR 2.0.1
    regularises every parameter named ``embedding_layer``, including this one). A numeric field
    contributes ``w_f[1] * x`` for a present value and ``w_f[0]`` when it is missing (NaN).

    Args:
        vocab_sizes: ordered mapping field -> number of ids.
        use_bias: whether to add a scalar bias. Default True.
        sequence_fields, embedding_l2, seed: as :class:`FieldEmbedding`. FuxiCTR's LR
            sum-pools every sequence field (``MaskedSumPooling`` on its 1-dim embeddings,
            whatever the model's pooling): the model builders pass ``"sum"`` for each.
        embeddings_initializer: as :class:`FieldEmbedding` (default: normal, std 1e-4).
        bias_initializer: initializer of the bias. Default ``"zeros"``.
        numeric_fields: as :class:`FieldEmbedding` (each a 2-row field). Default none.

    Input: the id dict (numeric fields: float values, NaN = missing, as
        :class:`FieldEmbedding`). Output: ``(batch, 1)`` float32.

    Example:
        >>> LinearLogit({"a": 3, "b": 2})({"a": np.array([2, 0]), "b": np.array([1, 1])}).shape
        (2, 1)
    """

    def __init__(
        self,
        vocab_sizes: Mapping[str, int],
        use_bias: bool = True,
        sequence_fields: Mapping[str, str] | None = None,
        embedding_l2: float = 0.0,
        seed: int | None = None,
        embeddings_initializer=None,
        bias_initializer="zeros",
        numeric_fields: Sequence[str] | None = None,
        **kwargs,
    ) -> None:
        # A logit: float32 under any mixed-precision policy, like the output heads.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.vocab_sizes = dict(vocab_sizes)
        self.use_bias = bool(use_bias)
        self.sequence_fields = dict(sequence_fields or {})
        self.numeric_fields = numeric_field_list(numeric_fields)
        self.embedding_l2 = embedding_l2
        check_fields(self.vocab_sizes, 1, self.sequence_fields, embedding_l2, self.numeric_fields)
        self.seed = seed
        self.embeddings_initializer = get_initializer(embeddings_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape=None) -> None:
        self.weights_embedding = FieldEmbedding(
            self.vocab_sizes,
            1,
            sequence_fields=self.sequence_fields,
            numeric_fields=self.numeric_fields,
            embedding_l2=self.embedding_l2,
            seed=self.seed,
            embeddings_initializer=self.embeddings_initializer,
            dtype="float32",
            name="linear_embedding",
        )
        self.weights_embedding.build()
        self.bias = (
            self.add_weight(
                name="bias",
                shape=(1,),
                initializer=clone_initializer(self.bias_initializer),
                dtype="float32",
            )
            if self.use_bias
            else None
        )

    def call(self, inputs):
        logit = ops.sum(self.weights_embedding(inputs), axis=1)  # (batch, 1)
        if self.bias is not None:
            logit = logit + self.bias
        return logit

    def compute_output_shape(self, input_shape=None):
        return (None, 1)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            vocab_sizes=self.vocab_sizes,
            use_bias=self.use_bias,
            sequence_fields=self.sequence_fields,
            numeric_fields=self.numeric_fields,
            embedding_l2=self.embedding_l2,
            seed=self.seed,
            embeddings_initializer=serialize_initializer(self.embeddings_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config
