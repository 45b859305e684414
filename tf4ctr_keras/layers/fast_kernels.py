"""Faster kernels for the two element-wise layers of every MLP tower: BatchNorm and Dropout.

A Frappe TF4CTR step (batch 10,000, towers of width 400) spent more time in these two layers
than in its matrix multiplies (profile in ``benchmarks/results/frappe_speed.md``):

* Keras' ``BatchNormalization`` on a ``(batch, units)`` input is ``moments`` and
  ``batch_normalization`` written out in element-wise ops, and autodiff writes out their gradient
  in a dozen more passes over the activations. TensorFlow's fused kernel (``FusedBatchNormV3``,
  oneDNN on CPU, cuDNN on GPU) does the forward in one op and the backward in one op, but takes
  only 4-D input: a ``(batch, 1, 1, units)`` view of the same tensor (a reshape, no copy) is
  what it gets. On this CPU one layer's forward and backward went from 27 ms to 10 ms.
* Keras' ``Dropout`` draws one float32 uniform per element (Philox, 32 random bits), compares it
  and selects. The random numbers are the cost: they took 6x an element-wise op. Here each
  32-bit draw gives two 16-bit keep decisions (a bitcast, no copy), halving the random numbers.

Both fall back to Keras' own code on other backends and in the cases the fast path does not
cover (masks, renorm, noise shapes). No library offers these; they are small wrappers of
TensorFlow's own kernels, and the layers keep Keras' variables, names and configs, so weights
and checkpoints are interchangeable with the stock layers.

Deviations, on purpose:

* **Moving variance.** ``FusedBatchNormV3`` returns the unbiased batch variance (``n / (n - 1)``
  times the biased one) for the moving average; that is what PyTorch's ``BatchNorm1d`` (the
  reference) keeps in ``running_var``, where Keras keeps the biased one. The normalisation itself
  uses the biased variance, as both do. A batch of one row updates the moving variance with 0,
  not with a division by zero.
* **Dropout rate.** The keep decision compares 16 random bits with ``round(rate * 2**16)``, so
  the rate applied is that integer over 65,536 (0.2 -> 0.1999969) and kept values are scaled by
  ``1 / (1 - applied rate)``, which keeps the expectation exact.
"""

from __future__ import annotations

import keras
from keras import ops

from tf4ctr_keras.registry import register

_BITS = 16
_LEVELS = 1 << _BITS


def _tensorflow():
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    return tf


# The classes keep Keras' class names on purpose: Keras' saving addresses a layer in a list by
# its class name in snake case (``batch_normalization``, ``dropout``), so the same names keep
# every ``model.keras``, weights file and checkpoint written with the stock layers loadable.
@register
class BatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` computed by TensorFlow's fused kernel for
    ``(batch, units)`` inputs (module docstring: why, and the moving-variance convention).

    Same arguments, variables and config as the Keras layer; inputs of another rank, a mask,
    renorm, ``axis`` other than the last, or another backend use the Keras layer's own code.
    """

    def _fast(self, inputs, mask):
        return (
            _tensorflow() is not None
            and mask is None
            and not self.renorm
            and len(inputs.shape) == 2
            and self.axis in (-1, 1)
            and self.center
            and self.scale
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fast(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        tf = _tensorflow()
        units = inputs.shape[-1]
        x = tf.reshape(inputs, (-1, 1, 1, units))
        gamma = tf.cast(self.gamma, "float32")
        beta = tf.cast(self.beta, "float32")
        if training and self.trainable:
            y, mean, unbiased = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, epsilon=self.epsilon, is_training=True, data_format="NHWC"
            )
            rows = tf.shape(inputs)[0]
            variance = tf.where(rows > 1, unbiased, tf.zeros_like(unbiased))
            m = self.momentum
            self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
            self.moving_variance.assign(self.moving_variance * m + variance * (1.0 - m))
        else:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                x,
                gamma,
                beta,
                mean=tf.cast(self.moving_mean, "float32"),
                variance=tf.cast(self.moving_variance, "float32"),
                epsilon=self.epsilon,
                is_training=False,
                data_format="NHWC",
            )
        return ops.cast(tf.reshape(y, tf.shape(inputs)), self.compute_dtype)


@register
class Dropout(keras.layers.Dropout):
    """``keras.layers.Dropout`` whose keep mask takes 16 random bits per element (module
    docstring: why, and the rate rounding). Same arguments, seed generator and config as the
    Keras layer; a ``noise_shape`` or another backend uses the Keras layer's own code."""

    def call(self, inputs, training=False):
        tf = _tensorflow()
        if not training or self.rate <= 0 or tf is None or self.noise_shape is not None:
            return super().call(inputs, training=training)
        threshold = self._threshold()
        if threshold == 0:
            return inputs
        seed = self.seed_generator.next()
        seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)  # as Keras' _cast_seed
        shape = tf.shape(inputs)
        size = tf.size(inputs)
        draws = tf.random.stateless_uniform(
            [(size + 1) // 2], seed, dtype=tf.uint32, minval=None, maxval=None
        )
        halves = tf.reshape(tf.bitcast(draws, tf.uint16), [-1])[:size]
        keep = tf.reshape(halves >= threshold, shape)
        scale = tf.cast(_LEVELS / (_LEVELS - threshold), inputs.dtype)
        return tf.where(keep, inputs * scale, tf.zeros([], inputs.dtype))

    def applied_rate(self) -> float:
        """The rate the fast path applies: ``round(rate * 2**16) / 2**16``."""
        return self._threshold() / _LEVELS

    def _threshold(self) -> int:
        """The 16-bit value below which an element is dropped: ``round(rate * 2**16)``."""
        return min(round(self.rate * _LEVELS), _LEVELS - 1)


# the names the rest of the library uses
TowerBatchNormalization = BatchNormalization
TowerDropout = Dropout
