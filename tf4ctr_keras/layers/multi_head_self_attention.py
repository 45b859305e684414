"""AutoInt's interacting layers: multi-head self-attention over fields."""

from __future__ import annotations

import math

import keras
from keras import ops

from tf4ctr_keras.layers.cross_network import flatten
from tf4ctr_keras.layers.utils import get_initializer, kernel_initializer_for, serialize_initializer
from tf4ctr_keras.registry import check_range, check_units, register


@register
class MultiHeadSelfAttention(keras.layers.Layer):
    """AutoInt's interacting layers: multi-head self-attention over fields, stacked.

    Per layer: ``Q, K, V = X W_q, X W_k, X W_v`` (no bias), split in ``num_heads`` heads,
    ``A = dropout(softmax(Q K^T [/ sqrt(d_h)])) V``, heads concatenated, plus the residual when
    ``use_residual``, then ReLU (FuxiCTR ``MultiHeadSelfAttention``). The residual is ``X``
    itself when the layer's input is already ``attention_dim`` wide and ``X W_res`` (a learned
    projection) otherwise, as FuxiCTR's (which builds ``W_res`` only when the widths differ);
    the dropout acts on the attention weights (FuxiCTR's ``ScaledDotProductAttention``, which
    AutoInt gives the model's ``net_dropout``). Hand-written because
    ``keras.layers.MultiHeadAttention`` always adds an output projection and no residual
    projection, which is not AutoInt's layer. Softmax runs in float32.

    Args:
        attention_dim: total width of all heads. Default 64.
        num_heads: number of heads; must divide ``attention_dim``. Default 2.
        num_layers: interacting layers stacked. Default 3.
        use_residual: add the projected input. Default True.
        use_scale: divide scores by sqrt(head dim). Default False (FuxiCTR default).
        dropout: dropout rate of the attention weights (training only). Default 0.
        seed: optional int seed.
        kernel_initializer: initializer of every projection. Default None: Xavier-normal
            seeded per projection from ``seed``.

    Input: ``(batch, fields, dim)``. Output: ``(batch, fields * attention_dim)``.

    Example:
        >>> MultiHeadSelfAttention(attention_dim=4, num_heads=2)(np.ones((8, 3, 5))).shape
        (8, 12)
    """

    def __init__(
        self,
        attention_dim: int = 64,
        num_heads: int = 2,
        num_layers: int = 3,
        use_residual: bool = True,
        use_scale: bool = False,
        dropout: float = 0.0,
        seed: int | None = None,
        kernel_initializer=None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        check_range("dropout", dropout, 0.0, 1.0, high_inclusive=False)
        check_units("attention_dim", [attention_dim])
        check_units("num_heads", [num_heads])
        check_units("num_layers", [num_layers])
        if attention_dim % num_heads:
            raise ValueError(
                "`attention_dim` must be divisible by `num_heads`. "
                f"Received: `attention_dim={attention_dim}`, `num_heads={num_heads}`"
            )
        self.attention_dim = attention_dim
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.use_residual = bool(use_residual)
        self.use_scale = bool(use_scale)
        self.dropout = float(dropout)
        self.seed = seed
        self.kernel_initializer = get_initializer(kernel_initializer)

    def build(self, input_shape) -> None:
        if len(input_shape) != 3:
            raise ValueError(
                "MultiHeadSelfAttention needs a (batch, fields, dim) input. "
                f"Received shape: {tuple(input_shape)}"
            )
        width = input_shape[-1]
        self.projections = []
        for layer in range(self.num_layers):
            # A learned residual projection only where the widths differ (FuxiCTR's W_res).
            project = self.use_residual and width != self.attention_dim
            names = ("query", "key", "value") + (("residual",) if project else ())
            projections = {}
            for j, name in enumerate(names):
                dense = keras.layers.Dense(
                    self.attention_dim,
                    use_bias=False,
                    kernel_initializer=kernel_initializer_for(
                        self.kernel_initializer, self.seed, 10 * layer + j
                    ),
                    dtype=self.dtype_policy,
                    name=f"{name}_{layer}",
                )
                dense.build((None, input_shape[1], width))
                projections[name] = dense
            self.projections.append(projections)
            width = self.attention_dim
        self.attention_dropout = (
            keras.layers.Dropout(self.dropout, seed=self.seed, name="attention_dropout")
            if self.dropout > 0
            else None
        )

    def _split(self, x):
        fields = x.shape[1]
        head_dim = self.attention_dim // self.num_heads
        x = ops.reshape(x, (-1, fields, self.num_heads, head_dim))
        return ops.transpose(x, (0, 2, 1, 3))  # (batch, heads, fields, head_dim)

    def call(self, inputs, training=None):
        x = inputs
        fields = x.shape[1]
        head_dim = self.attention_dim // self.num_heads
        for layer in self.projections:
            q, k, v = (self._split(layer[p](x)) for p in ("query", "key", "value"))
            scores = ops.matmul(
                ops.cast(q, "float32"), ops.cast(ops.swapaxes(k, -1, -2), "float32")
            )
            if self.use_scale:
                scores = scores / math.sqrt(head_dim)
            weights = ops.softmax(scores, axis=-1)
            if self.attention_dropout is not None:
                weights = self.attention_dropout(weights, training=training)
            weights = ops.cast(weights, v.dtype)
            out = ops.matmul(weights, v)  # (batch, heads, fields, head_dim)
            out = ops.reshape(ops.transpose(out, (0, 2, 1, 3)), (-1, fields, self.attention_dim))
            if self.use_residual:
                out = out + (layer["residual"](x) if "residual" in layer else x)
            x = ops.relu(out)
        return flatten(x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1] * self.attention_dim)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            attention_dim=self.attention_dim,
            num_heads=self.num_heads,
            num_layers=self.num_layers,
            use_residual=self.use_residual,
            use_scale=self.use_scale,
            dropout=self.dropout,
            seed=self.seed,
            kernel_initializer=serialize_initializer(self.kernel_initializer),
        )
        return config
