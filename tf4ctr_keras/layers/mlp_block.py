"""The MLP tower used by every encoder, gate and expert of the framework."""

from __future__ import annotations

import math

import keras
from keras import ops

from tf4ctr_keras.layers.fast_kernels import TowerBatchNormalization, TowerDropout
from tf4ctr_keras.layers.utils import (
    clone_initializer,
    get_initializer,
    kernel_initializer_for,
    serialize_initializer,
)
from tf4ctr_keras.registry import check_range, check_units, derive_seed, register


@register
class MLPBlock(keras.layers.Layer):
    """Stack of ``Dense -> BatchNorm -> activation -> Dropout`` layers (FuxiCTR ``MLP_Block``).

    ``h_{l+1} = Dropout(act(BN(W_l h_l + b_l)))``. Kernels are Xavier-normal and biases zero, as
    the reference's ``reset_parameters``; BatchNorm uses PyTorch's defaults expressed in Keras
    terms (PyTorch momentum 0.1 == Keras momentum 0.9, epsilon 1e-5). With Keras' defaults
    (momentum 0.99, epsilon 1e-3) the inference statistics lag far behind the weights when an
    epoch has few steps (21 on Frappe) and validation AUC collapses (reference section 9).
    BatchNorm and Dropout run TensorFlow's fused BatchNorm kernel and a 16-bit dropout mask
    (:mod:`tf4ctr_keras.layers.fast_kernels`: the moving variance is the unbiased one, as
    PyTorch's, and the dropout rate is rounded to a multiple of 2**-16).

    Inputs of rank > 2 are flattened to ``(batch, features)`` first, so a tower takes the
    ``(batch, fields, dim)`` embedding directly.

    Args:
        hidden_units: widths of the hidden layers, e.g. ``[400, 400, 400]``.
        dropout: dropout rate after every hidden layer. Default 0.
        activation: hidden activation. Default ``"relu"``.
        batch_norm: whether to normalise before the activation. Default True.
        bn_momentum: Keras BatchNorm momentum. Default 0.9.
        bn_epsilon: BatchNorm epsilon. Default 1e-5.
        output_dim: optional width of a final linear layer (no BN/activation). Default None:
            the block ends after the last hidden layer, including its BN/activation/dropout.
        output_activation: activation of the output layer, if any. Default None (linear).
        seed: optional int; each Dense and Dropout gets a distinct seed derived from it.
        kernel_initializer: initializer of every kernel. Default None: Xavier-normal seeded
            per layer from ``seed`` (an explicit one is copied to every layer as given).
        bias_initializer: initializer of every bias. Default ``"zeros"``.

    Input: ``(batch, ...)`` float. Output: ``(batch, hidden_units[-1])`` or
    ``(batch, output_dim)``.

    Example:
        >>> MLPBlock([400, 400], dropout=0.2)(np.zeros((8, 10, 16))).shape
        (8, 400)
    """

    def __init__(
        self,
        hidden_units: list[int],
        dropout: float = 0.0,
        activation: str = "relu",
        batch_norm: bool = True,
        bn_momentum: float = 0.9,
        bn_epsilon: float = 1e-5,
        output_dim: int | None = None,
        output_activation: str | None = None,
        seed: int | None = None,
        kernel_initializer=None,
        bias_initializer="zeros",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.hidden_units = check_units("hidden_units", hidden_units)
        check_range("dropout", dropout, 0.0, 1.0, high_inclusive=False)
        check_range("bn_momentum", bn_momentum, 0.0, 1.0)
        check_range("bn_epsilon", bn_epsilon, 0.0, low_inclusive=False)
        if output_dim is not None:
            check_units("output_dim", [output_dim])
        if not self.hidden_units and output_dim is None:
            raise ValueError("`hidden_units` is empty and `output_dim` is None: nothing to build.")
        keras.activations.get(activation)  # fail now on an unknown name
        self.dropout = float(dropout)
        self.activation = activation
        self.batch_norm = bool(batch_norm)
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(bn_epsilon)
        self.output_dim = output_dim
        self.output_activation = output_activation
        self.seed = seed

        self.kernel_initializer = get_initializer(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self._activation_fn = keras.activations.get(activation)

    def build(self, input_shape) -> None:
        shape = (input_shape[0], math.prod(input_shape[1:]))
        self.dense_layers = []
        self.norm_layers = []
        self.dropout_layers = []
        for i, units in enumerate(self.hidden_units):
            dense = keras.layers.Dense(
                units,
                kernel_initializer=kernel_initializer_for(self.kernel_initializer, self.seed, i),
                bias_initializer=clone_initializer(self.bias_initializer),
                dtype=self.dtype_policy,
                name=f"dense_{i}",
            )
            self.dense_layers.append(dense)
            dense.build(shape)
            shape = (input_shape[0], units)
            if self.batch_norm:
                norm = TowerBatchNormalization(
                    momentum=self.bn_momentum,
                    epsilon=self.bn_epsilon,
                    dtype=self.dtype_policy,
                    name=f"batch_norm_{i}",
                )
                self.norm_layers.append(norm)
                norm.build(shape)
            if self.dropout > 0:
                self.dropout_layers.append(
                    TowerDropout(
                        self.dropout, seed=derive_seed(self.seed, 500 + i), name=f"dropout_{i}"
                    )
                )
        self.output_layer = None
        if self.output_dim is not None:
            self.output_layer = keras.layers.Dense(
                self.output_dim,
                activation=self.output_activation,
                kernel_initializer=kernel_initializer_for(self.kernel_initializer, self.seed, 999),
                bias_initializer=clone_initializer(self.bias_initializer),
                dtype=self.dtype_policy,
                name="output",
            )
            self.output_layer.build(shape)

    def call(self, inputs, training=None):
        x = inputs
        if len(x.shape) > 2:
            x = ops.reshape(x, (-1, math.prod(x.shape[1:])))
        for i, dense in enumerate(self.dense_layers):
            x = dense(x)
            if self.batch_norm:
                x = self.norm_layers[i](x, training=training)
            x = self._activation_fn(x)
            if self.dropout > 0:
                x = self.dropout_layers[i](x, training=training)
        if self.output_layer is not None:
            x = self.output_layer(x)
        return x

    def compute_output_shape(self, input_shape):
        width = self.output_dim if self.output_dim is not None else self.hidden_units[-1]
        return (input_shape[0], width)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            hidden_units=self.hidden_units,
            dropout=self.dropout,
            activation=self.activation,
            batch_norm=self.batch_norm,
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
            output_dim=self.output_dim,
            output_activation=self.output_activation,
            seed=self.seed,
            kernel_initializer=serialize_initializer(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config
