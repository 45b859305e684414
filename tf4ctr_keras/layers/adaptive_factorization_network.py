"""AFN's logarithmic transformation network and its MLP."""

from __future__ import annotations

import keras
from keras import ops

from tf4ctr_keras.layers.mlp_block import MLPBlock
from tf4ctr_keras.layers.utils import get_initializer, kernel_initializer_for, serialize_initializer
from tf4ctr_keras.registry import check_range, check_units, derive_seed, register

#: AFN's lower bound on ``|e|`` before the logarithm (FuxiCTR: 1e-5, "better than the paper's
#: 1e-7").
LOG_FLOOR = 1e-5


@register
class AdaptiveFactorizationNetwork(keras.layers.Layer):
    """Adaptive Factorization Network (AFN, Cheng et al. AAAI 2020; FuxiCTR ``AFN``).

    A logarithmic neuron ``j`` is ``y_j = exp(sum_f w_jf ln|e_f|) = prod_f |e_f|^w_jf``: a
    feature interaction of learned, arbitrary order. Per element of the embedding::

        l = BN_fields(ln(max(|e|, 1e-5)))          # (batch, fields, dim), BN over each field
        y = BN_neurons(exp(W^T l))                 # (batch, neurons, dim), W: (fields, neurons)
        h = MLP(flatten(y))                        # (batch, hidden_units[-1])

    ``W`` has no bias (Xavier-normal); both BatchNorms normalise per channel (field, neuron)
    over the batch and the embedding dimension, as PyTorch's ``BatchNorm1d`` on a 3-D tensor,
    and are always on (FuxiCTR's ``batch_norm`` switches only the MLP's). The logarithm, the
    exponent and their BatchNorms run in float32. The MLP ends after its last hidden layer; the
    model's logit head is FuxiCTR's output layer of ``dense_layer``.

    Args:
        logarithmic_neurons: number of logarithmic neurons. Default 1200 (FuxiCTR
            ``AFN_default``).
        hidden_units: MLP widths after the logarithmic layer. Default ``[400, 400, 400]``.
        dropout: MLP dropout. Default 0.
        batch_norm: BatchNorm in the MLP. Default True.
        bn_momentum, bn_epsilon: of every BatchNorm (PyTorch's defaults in Keras terms).
        seed: optional int seed.
        kernel_initializer: initializer of ``W``. Default None: Xavier-normal from ``seed``.

    Input: ``(batch, fields, dim)``. Output: ``(batch, hidden_units[-1])``.

    Example:
        >>> AdaptiveFactorizationNetwork(6, [8])(np.ones((4, 3, 2))).shape
        (4, 8)
    """

    def __init__(
        self,
        logarithmic_neurons: int = 1200,
        hidden_units=(400, 400, 400),
        dropout: float = 0.0,
        batch_norm: bool = True,
        bn_momentum: float = 0.9,
        bn_epsilon: float = 1e-5,
        seed: int | None = None,
        kernel_initializer=None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        check_units("logarithmic_neurons", [logarithmic_neurons])
        self.hidden_units = check_units("hidden_units", hidden_units)
        if not self.hidden_units:
            raise ValueError(
                "`hidden_units` must hold at least one width. "
                f"Received: `hidden_units={hidden_units!r}`"
            )
        check_range("dropout", dropout, 0.0, 1.0, high_inclusive=False)
        self.logarithmic_neurons = logarithmic_neurons
        self.dropout = float(dropout)
        self.batch_norm = bool(batch_norm)
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(bn_epsilon)
        self.seed = seed
        self.kernel_initializer = get_initializer(kernel_initializer)

    def _norm(self, name: str) -> keras.layers.BatchNormalization:
        return keras.layers.BatchNormalization(
            axis=1, momentum=self.bn_momentum, epsilon=self.bn_epsilon, dtype="float32", name=name
        )

    def build(self, input_shape) -> None:
        if len(input_shape) != 3:
            raise ValueError(
                "AdaptiveFactorizationNetwork needs a (batch, fields, dim) input. "
                f"Received shape: {tuple(input_shape)}"
            )
        _, fields, dim = input_shape
        self.coefficients = self.add_weight(
            name="coefficients",
            shape=(fields, self.logarithmic_neurons),
            initializer=kernel_initializer_for(self.kernel_initializer, self.seed, 0),
            dtype="float32",
        )
        self.log_norm = self._norm("log_batch_norm")
        self.log_norm.build((None, fields, dim))
        self.exp_norm = self._norm("exp_batch_norm")
        self.exp_norm.build((None, self.logarithmic_neurons, dim))
        self.mlp = MLPBlock(
            self.hidden_units,
            dropout=self.dropout,
            batch_norm=self.batch_norm,
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
            seed=derive_seed(self.seed, 1),
            dtype=self.dtype_policy,
            name="mlp",
        )
        self.mlp.build((None, self.logarithmic_neurons * dim))

    def call(self, inputs, training=None):
        e = ops.cast(inputs, "float32")  # (batch, fields, dim)
        logs = ops.log(ops.maximum(ops.abs(e), LOG_FLOOR))
        logs = self.log_norm(logs, training=training)
        # sum over fields: (batch, dim, fields) @ (fields, neurons) -> (batch, neurons, dim)
        mixed = ops.swapaxes(ops.matmul(ops.swapaxes(logs, 1, 2), self.coefficients), 1, 2)
        crossed = self.exp_norm(ops.exp(mixed), training=training)
        flat = ops.reshape(crossed, (-1, self.logarithmic_neurons * e.shape[-1]))
        return self.mlp(ops.cast(flat, self.compute_dtype), training=training)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.hidden_units[-1])

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            logarithmic_neurons=self.logarithmic_neurons,
            hidden_units=self.hidden_units,
            dropout=self.dropout,
            batch_norm=self.batch_norm,
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
            seed=self.seed,
            kernel_initializer=serialize_initializer(self.kernel_initializer),
        )
        return config
