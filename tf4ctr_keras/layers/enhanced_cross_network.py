"""EDCN: a cross network and an MLP that share information layer by layer."""

from __future__ import annotations

import math

import keras
from keras import ops

from tf4ctr_keras.layers.utils import get_initializer, kernel_initializer_for, serialize_initializer
from tf4ctr_keras.registry import check_choice, check_range, derive_seed, register

BRIDGE_TYPES = ("hadamard_product", "pointwise_addition", "concatenation", "attention_pooling")


@register
class EnhancedCrossNetwork(keras.layers.Layer):
    """EDCN's interaction stack (Chen et al. CIKM 2021 / DLP-KDD; FuxiCTR ``EDCN``).

    A cross tower and a deep tower of ``num_layers`` layers each, ``h = fields * dim`` wide,
    joined after every layer by a bridge and split again by a regulation module::

        c, d = regulate_0(flatten(e));  c_0 = c
        for l in 0 .. L-1:
            c = c_0 * (c . w_l) + b_l              # cross layer (FuxiCTR CrossInteraction)
            d = Dropout(ReLU(W_l d + a_l))         # deep layer, no BatchNorm
            x = bridge(c, d)                       # hadamard: c * d
            if l < L - 1: c, d = regulate_{l+1}(x)
        output = [c, d, x]                         # (batch, 3 h)

    ``regulate(x) = (g_1 * x, g_2 * x)`` with ``g_k = softmax(gate_k / temperature)`` over the
    fields, each field's gate repeated over its ``dim`` elements (gates start at 1: uniform),
    then a BatchNorm per branch when ``batch_norm``. The model's logit head is FuxiCTR's
    ``fc`` on the concatenation. As FuxiCTR, every layer gets a regulation module, the last one
    unused (it is built and counted), and the cross layer has no ``+ c`` residual term (FuxiCTR's
    ``CrossInteraction`` leaves it to ``CrossNet``, which EDCN does not use).

    Bridges: ``hadamard_product`` (default), ``pointwise_addition``, ``concatenation``
    (``ReLU(W [c, d] + a)``) and ``attention_pooling`` (``a_1(c) * c + a_2(d) * d`` with
    ``a_k = softmax(V_k ReLU(U_k x + u_k))``, the paper's form: FuxiCTR builds both attention
    MLPs but applies the first to both inputs).

    Args:
        num_layers: cross / deep / bridge layers. Default 3.
        bridge_type: one of ``BRIDGE_TYPES``. Default ``"hadamard_product"``.
        temperature: of the regulation softmax. Default 1.
        dropout: of the deep layers. Default 0.
        batch_norm: BatchNorm in the regulation modules. Default False (FuxiCTR's default).
        bn_momentum, bn_epsilon: of those BatchNorms (PyTorch's defaults in Keras terms).
        seed: optional int seed.
        kernel_initializer: of every kernel. Default None: Xavier-normal from ``seed``.

    Input: ``(batch, fields, dim)``. Output: ``(batch, 3 * fields * dim)``.

    Example:
        >>> EnhancedCrossNetwork(2)(np.ones((4, 3, 2))).shape
        (4, 18)
    """

    def __init__(
        self,
        num_layers: int = 3,
        bridge_type: str = "hadamard_product",
        temperature: float = 1.0,
        dropout: float = 0.0,
        batch_norm: bool = False,
        bn_momentum: float = 0.9,
        bn_epsilon: float = 1e-5,
        seed: int | None = None,
        kernel_initializer=None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(num_layers, int) or isinstance(num_layers, bool) or num_layers < 1:
            raise ValueError(f"`num_layers` must be >= 1. Received: `num_layers={num_layers!r}`")
        check_choice("bridge_type", bridge_type, BRIDGE_TYPES)
        check_range("temperature", temperature, 0.0, low_inclusive=False)
        check_range("dropout", dropout, 0.0, 1.0, high_inclusive=False)
        self.num_layers = num_layers
        self.bridge_type = bridge_type
        self.temperature = float(temperature)
        self.dropout = float(dropout)
        self.batch_norm = bool(batch_norm)
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(bn_epsilon)
        self.seed = seed
        self.kernel_initializer = get_initializer(kernel_initializer)

    def _dense(self, units: int, offset: int, name: str, use_bias: bool = True, activation=None):
        return keras.layers.Dense(
            units,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer_for(self.kernel_initializer, self.seed, offset),
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, input_shape) -> None:
        if len(input_shape) != 3:
            raise ValueError(
                "EnhancedCrossNetwork needs a (batch, fields, dim) input. "
                f"Received shape: {tuple(input_shape)}"
            )
        _, self._fields, self._dim = input_shape
        width = self._fields * self._dim
        self.deep_layers, self.cross_kernels, self.cross_biases = [], [], []
        self.gates, self.norms, self.bridges, self.dropouts = [], [], [], []
        for i in range(self.num_layers):
            deep = self._dense(width, 10 * i, f"deep_{i}", activation="relu")
            deep.build((None, width))
            self.deep_layers.append(deep)
            self.dropouts.append(
                keras.layers.Dropout(self.dropout, seed=derive_seed(self.seed, 500 + i))
                if self.dropout > 0
                else None
            )
            self.cross_kernels.append(
                self.add_weight(
                    name=f"cross_kernel_{i}",
                    shape=(width, 1),
                    initializer=kernel_initializer_for(
                        self.kernel_initializer, self.seed, 10 * i + 1
                    ),
                )
            )
            self.cross_biases.append(
                self.add_weight(name=f"cross_bias_{i}", shape=(width,), initializer="zeros")
            )
            self.gates.append(
                self.add_weight(
                    name=f"regulation_gates_{i}",
                    shape=(2, self._fields),
                    initializer="ones",
                    dtype="float32",
                )
            )
            norms = []
            if self.batch_norm:
                for k in range(2):
                    norm = keras.layers.BatchNormalization(
                        momentum=self.bn_momentum,
                        epsilon=self.bn_epsilon,
                        dtype=self.dtype_policy,
                        name=f"regulation_norm_{i}_{k}",
                    )
                    norm.build((None, width))
                    norms.append(norm)
            self.norms.append(norms)
            self.bridges.append(self._bridge(i, width))

    def _bridge(self, i: int, width: int) -> list:
        if self.bridge_type == "concatenation":
            dense = self._dense(width, 10 * i + 2, f"bridge_{i}", activation="relu")
            dense.build((None, 2 * width))
            return [dense]
        if self.bridge_type == "attention_pooling":
            layers = []
            for k in range(2):
                hidden = self._dense(
                    width, 10 * i + 3 + 2 * k, f"attention_{i}_{k}", activation="relu"
                )
                scores = self._dense(
                    width, 10 * i + 4 + 2 * k, f"attention_{i}_{k}_out", use_bias=False
                )
                hidden.build((None, width))
                scores.build((None, width))
                layers.append((hidden, scores))
            return layers
        return []

    def _regulate(self, i: int, x, training):
        """``(g_1 * x, g_2 * x)``, each field's softmax gate repeated over its dim elements."""
        gates = ops.softmax(self.gates[i] / self.temperature, axis=-1)  # (2, fields) float32
        gates = ops.cast(ops.repeat(gates, self._dim, axis=1), x.dtype)  # (2, fields * dim)
        out = [x * gates[k][None, :] for k in range(2)]
        if self.batch_norm:
            out = [norm(o, training=training) for norm, o in zip(self.norms[i], out, strict=True)]
        return out

    def _bridge_call(self, i: int, c, d):
        if self.bridge_type == "hadamard_product":
            return c * d
        if self.bridge_type == "pointwise_addition":
            return c + d
        if self.bridge_type == "concatenation":
            return self.bridges[i][0](ops.concatenate([c, d], axis=-1))
        (h1, s1), (h2, s2) = self.bridges[i]
        return ops.softmax(s1(h1(c)), axis=-1) * c + ops.softmax(s2(h2(d)), axis=-1) * d

    def call(self, inputs, training=None):
        x = ops.reshape(inputs, (-1, math.prod(inputs.shape[1:])))  # (batch, h)
        cross, deep = self._regulate(0, x, training)
        cross_0 = cross
        for i in range(self.num_layers):
            cross = cross_0 * ops.matmul(cross, self.cross_kernels[i]) + self.cross_biases[i]
            deep = self.deep_layers[i](deep)
            if self.dropouts[i] is not None:
                deep = self.dropouts[i](deep, training=training)
            bridge = self._bridge_call(i, cross, deep)
            if i + 1 < self.num_layers:
                cross, deep = self._regulate(i + 1, bridge, training)
        return ops.concatenate([cross, deep, bridge], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 3 * math.prod(input_shape[1:]))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            num_layers=self.num_layers,
            bridge_type=self.bridge_type,
            temperature=self.temperature,
            dropout=self.dropout,
            batch_norm=self.batch_norm,
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
            seed=self.seed,
            kernel_initializer=serialize_initializer(self.kernel_initializer),
        )
        return config
