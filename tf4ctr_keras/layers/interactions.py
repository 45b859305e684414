"""Feature-interaction encoders: FM, logistic (wide), CIN, cross networks, self-attention.

Every encoder takes the ``(batch, fields, dim)`` embedding of one side of the Sample Selection
Module and returns a ``(batch, width)`` representation, except :class:`LinearLogit`, which
owns its own 1-dim embedding and takes the id dict (the reference's ``LogisticRegression``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import keras
import keras_rs
from keras import ops

from tf4ctr_keras.layers.field_embedding import FieldEmbedding
from tf4ctr_keras.layers.utils import build_once, derive_seed
from tf4ctr_keras.registry import check_units, register


def _flatten(x):
    return ops.reshape(x, (-1, math.prod(x.shape[1:])))


@register
class FactorizationMachine(keras.layers.Layer):
    """Second-order term of a factorization machine on ``(batch, fields, dim)``.

    ``y = 1/2 * sum_k [(sum_i v_ik)^2 - sum_i v_ik^2] = sum_{i<j} <v_i, v_j>`` per sample.

    The reference's DeepFM variant feeds this layer a flattened 2-D tensor, so its "sum over
    fields" runs over all scalars and the result collapses to one scalar for the whole batch
    (tf4ctr_reference.md section 1.7). This layer requires the 3-D input and computes the real
    per-sample interaction. Hand-written rather than ``keras_rs.layers.DotInteraction`` + sum
    because the sum-of-squares identity is O(fields * dim) instead of O(fields^2 * dim).

    Output: ``(batch, 1)``, computed in float32.
    """

    def build(self, input_shape) -> None:
        if len(input_shape) != 3:
            raise ValueError(
                "FactorizationMachine needs a (batch, fields, dim) input. "
                f"Received shape: {tuple(input_shape)}"
            )
        self.built = True

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        square_of_sum = ops.square(ops.sum(x, axis=1))  # (batch, dim)
        sum_of_square = ops.sum(ops.square(x), axis=1)  # (batch, dim)
        return 0.5 * ops.sum(square_of_sum - sum_of_square, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)


@register
class LinearLogit(keras.layers.Layer):
    """Logistic-regression (wide) logit: ``y = b + sum_f w_f[x_f]``.

    The reference's ``LogisticRegression``: one 1-dim embedding per field, summed, plus an
    optional bias. The table takes the same embedding L2 as the other tables (FuxiCTR 2.0.1
    regularises every parameter named ``embedding_layer``, including this one).

    Args:
        vocab_sizes: ordered mapping field -> number of ids.
        use_bias: whether to add a scalar bias. Default True.
        sequence_fields, embedding_l2, seed: as :class:`FieldEmbedding`.

    Input: the id dict. Output: ``(batch, 1)`` float32.
    """

    def __init__(
        self,
        vocab_sizes: Mapping[str, int],
        use_bias: bool = True,
        sequence_fields: Mapping[str, str] | None = None,
        embedding_l2: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ) -> None:
        # A logit: float32 under any mixed-precision policy, like the output heads.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.vocab_sizes = dict(vocab_sizes)
        self.use_bias = bool(use_bias)
        self.sequence_fields = dict(sequence_fields or {})
        self.embedding_l2 = embedding_l2
        self.seed = seed
        self.weights_embedding = FieldEmbedding(
            self.vocab_sizes,
            1,
            sequence_fields=self.sequence_fields,
            embedding_l2=embedding_l2,
            seed=seed,
            dtype="float32",
            name="linear_embedding",
        )

    def build(self, input_shape=None) -> None:
        build_once(self.weights_embedding)
        self.bias = (
            self.add_weight(name="bias", shape=(1,), initializer="zeros", dtype="float32")
            if self.use_bias
            else None
        )
        self.built = True

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
            embedding_l2=self.embedding_l2,
            seed=self.seed,
        )
        return config


@register
class CompressedInteractionNetwork(keras.layers.Layer):
    """Compressed Interaction Network (CIN, xDeepFM; FuxiCTR ``CompressedInteractionNet``).

    ``X^k_h = sum_{i,j} W^{k,h}_{ij} (X^{k-1}_i * X^0_j)`` (a 1x1 convolution over the outer
    product of the previous layer and the input fields), each layer sum-pooled over the
    embedding dimension and the pools concatenated.

    Args:
        layer_sizes: feature maps per CIN layer, e.g. ``[64, 64]`` (the reference's tuning).
        activation: applied to each layer's maps. Default None (linear, as FuxiCTR).
        output_dim: optional width of a final Dense layer on the concatenated pools (the
            reference's TF4CTR-xDeepFM maps to the complex tower's width, 400). Default None.
        seed: optional int seed.

    Input: ``(batch, fields, dim)``. Output: ``(batch, sum(layer_sizes))`` or
    ``(batch, output_dim)``.
    """

    def __init__(self, layer_sizes=(64, 64), activation=None, output_dim=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.layer_sizes = check_units("layer_sizes", layer_sizes)
        if not self.layer_sizes:
            raise ValueError("`layer_sizes` must not be empty. Received: `layer_sizes=[]`")
        if output_dim is not None:
            check_units("output_dim", [output_dim])
        self.activation = activation
        self._activation_fn = keras.activations.get(activation)
        self.output_dim = output_dim
        self.seed = seed
        self.maps = [
            keras.layers.Dense(
                units,
                kernel_initializer=keras.initializers.GlorotNormal(seed=derive_seed(seed, i)),
                dtype=self.dtype_policy,
                name=f"cin_{i}",
            )
            for i, units in enumerate(self.layer_sizes)
        ]
        self.output_layer = (
            keras.layers.Dense(
                output_dim,
                kernel_initializer=keras.initializers.GlorotNormal(seed=derive_seed(seed, 99)),
                dtype=self.dtype_policy,
                name="output",
            )
            if output_dim is not None
            else None
        )

    def build(self, input_shape) -> None:
        if len(input_shape) != 3:
            raise ValueError(
                "CompressedInteractionNetwork needs a (batch, fields, dim) input. "
                f"Received shape: {tuple(input_shape)}"
            )
        fields = input_shape[1]
        previous = fields
        for layer, units in zip(self.maps, self.layer_sizes, strict=True):
            build_once(layer, (None, previous * fields))
            previous = units
        if self.output_layer is not None:
            build_once(self.output_layer, (None, sum(self.layer_sizes)))
        self.built = True

    def call(self, inputs):
        x0 = inputs  # (batch, fields, dim)
        fields, dim = x0.shape[1], x0.shape[2]
        xk = x0
        pools = []
        for layer in self.maps:
            outer = ops.einsum("bhd,bmd->bdhm", xk, x0)  # (batch, dim, h, fields)
            outer = ops.reshape(outer, (-1, dim, xk.shape[1] * fields))
            xk = self._activation_fn(layer(outer))  # (batch, dim, units)
            pools.append(ops.sum(xk, axis=1))  # (batch, units)
            xk = ops.transpose(xk, (0, 2, 1))  # (batch, units, dim)
        out = ops.concatenate(pools, axis=-1)
        if self.output_layer is not None:
            out = self.output_layer(out)
        return out

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim or sum(self.layer_sizes))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            layer_sizes=self.layer_sizes,
            activation=self.activation,
            output_dim=self.output_dim,
            seed=self.seed,
        )
        return config


@register
class CrossNetwork(keras.layers.Layer):
    """Cross network of DCN: ``x_{l+1} = x_0 * (x_l . w_l) + b_l + x_l`` (rank-1 weights).

    Hand-written because keras-rs ships only the DCNv2 cross (see :class:`CrossNetworkV2`).

    Args:
        num_layers: number of cross layers. Default 3.
        seed: optional int seed.

    Input: ``(batch, ...)``, flattened to ``(batch, D)``. Output: ``(batch, D)``.
    """

    def __init__(self, num_layers: int = 3, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"`num_layers` must be >= 1. Received: `num_layers={num_layers!r}`")
        self.num_layers = num_layers
        self.seed = seed

    def build(self, input_shape) -> None:
        width = math.prod(input_shape[1:])
        self.kernels = [
            self.add_weight(
                name=f"kernel_{i}",
                shape=(width, 1),
                initializer=keras.initializers.GlorotNormal(seed=derive_seed(self.seed, i)),
            )
            for i in range(self.num_layers)
        ]
        self.biases = [
            self.add_weight(name=f"bias_{i}", shape=(width,), initializer="zeros")
            for i in range(self.num_layers)
        ]
        self.built = True

    def call(self, inputs):
        x0 = _flatten(inputs)
        x = x0
        for kernel, bias in zip(self.kernels, self.biases, strict=True):
            x = x0 * ops.matmul(x, kernel) + bias + x
        return x

    def compute_output_shape(self, input_shape):
        return (input_shape[0], math.prod(input_shape[1:]))

    def get_config(self) -> dict:
        return {**super().get_config(), "num_layers": self.num_layers, "seed": self.seed}


@register
class CrossNetworkV2(keras.layers.Layer):
    """Cross network of DCNv2: ``x_{l+1} = x_0 * (W_l x_l + b_l) + x_l``.

    A stack of ``keras_rs.layers.FeatureCross`` (the Keras 3 successor of TFRS ``Cross``).

    Args:
        num_layers: number of cross layers. Default 3.
        projection_dim: optional low-rank projection (DCN-M). Default None (full rank).
        seed: optional int seed.

    Input: ``(batch, ...)``, flattened to ``(batch, D)``. Output: ``(batch, D)``.
    """

    def __init__(self, num_layers=3, projection_dim=None, seed=None, **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"`num_layers` must be >= 1. Received: `num_layers={num_layers!r}`")
        if projection_dim is not None:
            check_units("projection_dim", [projection_dim])
        self.num_layers = num_layers
        self.projection_dim = projection_dim
        self.seed = seed
        self.crosses = [
            keras_rs.layers.FeatureCross(
                projection_dim=projection_dim,
                kernel_initializer=keras.initializers.GlorotNormal(seed=derive_seed(seed, i)),
                dtype=self.dtype_policy,
                name=f"cross_{i}",
            )
            for i in range(num_layers)
        ]

    def build(self, input_shape) -> None:
        flat = (input_shape[0], math.prod(input_shape[1:]))
        for cross in self.crosses:
            build_once(cross, flat)
            # keras-rs 0.4.0 FeatureCross.build creates its Dense sublayers without building
            # them, so `.keras` loading finds no variables to restore; build them here.
            if cross.projection_dim is not None:
                build_once(cross.down_proj_dense, flat)
                build_once(cross.dense, (flat[0], cross.projection_dim))
            else:
                build_once(cross.dense, flat)
        self.built = True

    def call(self, inputs):
        x0 = _flatten(inputs)
        x = x0
        for cross in self.crosses:
            x = cross(x0, x)
        return x

    def compute_output_shape(self, input_shape):
        return (input_shape[0], math.prod(input_shape[1:]))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            num_layers=self.num_layers, projection_dim=self.projection_dim, seed=self.seed
        )
        return config


@register
class MultiHeadSelfAttention(keras.layers.Layer):
    """AutoInt's interacting layers: multi-head self-attention over fields, stacked.

    Per layer: ``Q, K, V = X W_q, X W_k, X W_v`` (no bias), split in ``num_heads`` heads,
    ``A = softmax(Q K^T [/ sqrt(d_h)]) V``, heads concatenated, ``+ X W_res`` when
    ``use_residual``, then ReLU (FuxiCTR ``MultiHeadSelfAttention``). Hand-written because
    ``keras.layers.MultiHeadAttention`` always adds an output projection and no residual
    projection, which is not AutoInt's layer. Softmax runs in float32.

    Args:
        attention_dim: total width of all heads. Default 64.
        num_heads: number of heads; must divide ``attention_dim``. Default 2.
        num_layers: interacting layers stacked. Default 3.
        use_residual: add the projected input. Default True.
        use_scale: divide scores by sqrt(head dim). Default False (FuxiCTR default).
        seed: optional int seed.

    Input: ``(batch, fields, dim)``. Output: ``(batch, fields * attention_dim)``.
    """

    def __init__(
        self,
        attention_dim: int = 64,
        num_heads: int = 2,
        num_layers: int = 3,
        use_residual: bool = True,
        use_scale: bool = False,
        seed: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
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
        self.seed = seed
        projections = ("query", "key", "value") + (("residual",) if use_residual else ())
        self.projections = [
            {
                p: keras.layers.Dense(
                    attention_dim,
                    use_bias=False,
                    kernel_initializer=keras.initializers.GlorotNormal(
                        seed=derive_seed(seed, 10 * layer + j)
                    ),
                    dtype=self.dtype_policy,
                    name=f"{p}_{layer}",
                )
                for j, p in enumerate(projections)
            }
            for layer in range(num_layers)
        ]

    def build(self, input_shape) -> None:
        if len(input_shape) != 3:
            raise ValueError(
                "MultiHeadSelfAttention needs a (batch, fields, dim) input. "
                f"Received shape: {tuple(input_shape)}"
            )
        width = input_shape[-1]
        for layer in self.projections:
            for dense in layer.values():
                build_once(dense, (None, input_shape[1], width))
            width = self.attention_dim
        self.built = True

    def _split(self, x):
        fields = x.shape[1]
        head_dim = self.attention_dim // self.num_heads
        x = ops.reshape(x, (-1, fields, self.num_heads, head_dim))
        return ops.transpose(x, (0, 2, 1, 3))  # (batch, heads, fields, head_dim)

    def call(self, inputs):
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
            weights = ops.cast(ops.softmax(scores, axis=-1), v.dtype)
            out = ops.matmul(weights, v)  # (batch, heads, fields, head_dim)
            out = ops.reshape(ops.transpose(out, (0, 2, 1, 3)), (-1, fields, self.attention_dim))
            if self.use_residual:
                out = out + layer["residual"](x)
            x = ops.relu(out)
        return _flatten(x)

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
            seed=self.seed,
        )
        return config
