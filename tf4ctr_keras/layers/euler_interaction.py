"""EulerNet's interaction layers: feature interactions as rotations in the complex plane."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from tf4ctr_keras.registry import check_range, check_units, derive_seed, register

#: Added to ``r^2 + p^2`` before the logarithm (FuxiCTR).
MODULUS_EPS = 1e-8
#: The non-square order matrices start at ``softmax(N(0, 1) / 0.01)`` over their input fields.
ORDER_INIT_TEMPERATURE = 0.01


@register
class EulerInteraction(keras.layers.Layer):
    """EulerNet (Tian et al. SIGIR 2023; FuxiCTR ``EulerNet``): interactions in polar form.

    Each field vector becomes a complex vector ``mu_f e^{i e_f}`` (``r = mu cos e``,
    ``p = mu sin e``; ``mu`` learned per field, starting at 1). A layer maps ``F_in`` complex
    field vectors to ``F_out``; per element, with ``lam = ln sqrt(r^2 + p^2 + 1e-8)`` and
    ``theta = atan2(p, r)``::

        explicit:  lam' = exp(lam @ O + b_lam),  theta' = theta @ O + b_theta   # O: (F_in, F_out)
        implicit:  r', p' = ReLU(W flatten(r) + a), ReLU(W flatten(p) + a)       # W shared
        out:       r_out = r' + lam' cos(theta'),  p_out = p' + lam' sin(theta')

    (the explicit part raises the inputs to the learned orders ``O``: a product of powers of
    complex numbers is a sum in log-polar form), then ``LayerNorm`` over each field's ``dim``
    elements when ``layer_norm``. The two LayerNorms are built either way (FuxiCTR builds and
    counts them). ``O`` starts as the identity when ``F_in == F_out`` and as
    ``softmax(N(0, 1) / 0.01)`` over the input fields otherwise; ``W`` is Xavier-uniform with
    PyTorch's default bias, ``b_lam, b_theta ~ N(0, 0.01^2)``, as FuxiCTR's. The output is
    ``flatten(r) + flatten(p)`` of the last layer: FuxiCTR's shared ``reg`` layer applied to both
    and summed is the model's logit head on that sum (its bias counted once, as there). All of
    it runs in float32.

    Args:
        orders: fields ``F_out`` of each layer. Default ``[20]`` (FuxiCTR ``EulerNet_default``).
        layer_norm: apply the LayerNorms. Default True (FuxiCTR ``EulerNet_default``).
        explicit_dropout: dropout of ``lam`` and ``theta``. Default 0.
        implicit_dropout: dropout of ``r`` and ``p`` before ``W``. Default 0.
        seed: optional int seed.

    Input: ``(batch, fields, dim)``. Output: ``(batch, orders[-1] * dim)`` float32.

    Example:
        >>> EulerInteraction([4, 4])(np.zeros((2, 3, 5))).shape
        (2, 20)
    """

    def __init__(
        self,
        orders=(20,),
        layer_norm: bool = True,
        explicit_dropout: float = 0.0,
        implicit_dropout: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ) -> None:
        kwargs.setdefault("dtype", "float32")  # log, atan2 and exp
        super().__init__(**kwargs)
        self.orders = check_units("orders", orders)
        if not self.orders:
            raise ValueError(
                f"`orders` must hold at least one layer. Received: `orders={orders!r}`"
            )
        check_range("explicit_dropout", explicit_dropout, 0.0, 1.0, high_inclusive=False)
        check_range("implicit_dropout", implicit_dropout, 0.0, 1.0, high_inclusive=False)
        self.layer_norm = bool(layer_norm)
        self.explicit_dropout = float(explicit_dropout)
        self.implicit_dropout = float(implicit_dropout)
        self.seed = seed

    def _dropout(self, rate: float, offset: int):
        return keras.layers.Dropout(rate, seed=derive_seed(self.seed, offset)) if rate > 0 else None

    def build(self, input_shape) -> None:
        if len(input_shape) != 3:
            raise ValueError(
                f"EulerInteraction needs a (batch, fields, dim) input. Received shape: "
                f"{tuple(input_shape)}"
            )
        _, fields, dim = input_shape
        self._dim = dim
        self.mu = self.add_weight(name="mu", shape=(fields,), initializer="ones")
        self.interaction_layers = []
        for i, f_out in enumerate(self.orders):
            f_in = fields if i == 0 else self.orders[i - 1]
            seed = derive_seed(self.seed, 10 * i)
            orders = self.add_weight(name=f"orders_{i}", shape=(f_in, f_out), initializer="zeros")
            if f_in == f_out:
                orders.assign(np.eye(f_in, dtype="float32"))
            else:
                logits = keras.random.normal((f_in, f_out), seed=seed) / ORDER_INIT_TEMPERATURE
                orders.assign(ops.softmax(logits, axis=0))
            bound = 1.0 / math.sqrt(f_in * dim)  # PyTorch's default nn.Linear bias
            implicit = keras.layers.Dense(
                f_out * dim,
                kernel_initializer=keras.initializers.GlorotUniform(seed=derive_seed(seed, 1)),
                bias_initializer=keras.initializers.RandomUniform(
                    -bound, bound, seed=derive_seed(seed, 2)
                ),
                dtype="float32",
                name=f"implicit_{i}",
            )
            implicit.build((None, f_in * dim))
            bias_init = keras.initializers.RandomNormal(stddev=0.01, seed=derive_seed(seed, 3))
            bias_lam = self.add_weight(
                name=f"bias_lam_{i}", shape=(dim, f_out), initializer=bias_init
            )
            bias_init = keras.initializers.RandomNormal(stddev=0.01, seed=derive_seed(seed, 4))
            bias_theta = self.add_weight(
                name=f"bias_theta_{i}", shape=(dim, f_out), initializer=bias_init
            )
            norms = []
            for part in ("real", "imaginary"):
                norm = keras.layers.LayerNormalization(
                    epsilon=1e-5, dtype="float32", name=f"norm_{part}_{i}"
                )
                norm.build((None, f_out, dim))
                norms.append(norm)
            self.interaction_layers.append(
                {
                    "orders": orders,
                    "implicit": implicit,
                    "bias_lam": bias_lam,
                    "bias_theta": bias_theta,
                    "norms": norms,
                    "explicit_dropout": self._dropout(self.explicit_dropout, 100 + i),
                    "implicit_dropout": self._dropout(self.implicit_dropout, 200 + i),
                }
            )

    def call(self, inputs, training=None):
        e = ops.cast(inputs, "float32")  # (batch, fields, dim)
        mu = self.mu[None, :, None]
        r, p = mu * ops.cos(e), mu * ops.sin(e)
        for layer in self.interaction_layers:
            lam = 0.5 * ops.log(r * r + p * p + MODULUS_EPS)
            theta = ops.arctan2(p, r)
            lam, theta = ops.swapaxes(lam, 1, 2), ops.swapaxes(theta, 1, 2)  # (batch, dim, F_in)
            drop = layer["explicit_dropout"]
            if drop is not None:
                lam, theta = drop(lam, training=training), drop(theta, training=training)
            lam = ops.exp(ops.matmul(lam, layer["orders"]) + layer["bias_lam"])
            theta = ops.matmul(theta, layer["orders"]) + layer["bias_theta"]
            lam, theta = ops.swapaxes(lam, 1, 2), ops.swapaxes(theta, 1, 2)  # (batch, F_out, dim)
            width = r.shape[1] * self._dim
            r, p = ops.reshape(r, (-1, width)), ops.reshape(p, (-1, width))
            drop = layer["implicit_dropout"]
            if drop is not None:
                r, p = drop(r, training=training), drop(p, training=training)
            r, p = ops.relu(layer["implicit"](r)), ops.relu(layer["implicit"](p))
            r = ops.reshape(r, (-1, lam.shape[1], self._dim)) + lam * ops.cos(theta)
            p = ops.reshape(p, (-1, lam.shape[1], self._dim)) + lam * ops.sin(theta)
            if self.layer_norm:
                norm_r, norm_p = layer["norms"]
                r, p = norm_r(r), norm_p(p)
        width = self.orders[-1] * self._dim
        return ops.reshape(r, (-1, width)) + ops.reshape(p, (-1, width))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.orders[-1] * input_shape[-1])

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            orders=self.orders,
            layer_norm=self.layer_norm,
            explicit_dropout=self.explicit_dropout,
            implicit_dropout=self.implicit_dropout,
            seed=self.seed,
        )
        return config
