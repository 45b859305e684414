"""Batch normalisation whose training step uses TensorFlow's fused kernel."""

from __future__ import annotations

import keras
from keras import ops

from tf4ctr_keras.registry import register


@register
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` with a fused training step on TensorFlow.

    Keras 3 normalises a training batch with separate element-wise ops (moments, then
    ``(x - mean) * rsqrt(var + eps) * gamma + beta``) and their separate gradients. TensorFlow's
    ``FusedBatchNormV3`` kernel does the forward and the backward pass in one op each: on
    ``(4096, 400)`` float32 on this project's 2-core CPU, forward + backward take 6 ms instead
    of 15 ms (``benchmarks/train_bench.py --ablation`` measures it inside whole models). This is
    written by hand because Keras 3 dropped the fused path Keras 2 had (``fused=True``).

    Same weights, config and results as the Keras layer, up to float rounding: the moving
    variance tracks the biased batch variance as Keras does (the kernel returns the Bessel-
    corrected one, which is rescaled by ``(n - 1) / n``). The fused path needs the TensorFlow
    backend, 2-D inputs normalised on the last axis, no mask, no renorm and no synchronisation;
    anything else, and inference, runs the Keras implementation.
    """

    def call(self, inputs, training=None, mask=None):
        if not (
            training
            and self.trainable
            and keras.backend.backend() == "tensorflow"
            and mask is None
            and not self.renorm
            and not self.synchronized
            and len(inputs.shape) == 2
            and self.axis in (-1, 1)
            and inputs.shape[-1] is not None
        ):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        x = tf.cast(inputs, "float32")  # as Keras: statistics in float32 under mixed precision
        gamma = tf.cast(self.gamma, "float32") if self.scale else tf.ones([channels])
        beta = tf.cast(self.beta, "float32") if self.center else tf.zeros([channels])
        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            tf.reshape(x, [-1, 1, 1, channels]),
            gamma,
            beta,
            epsilon=self.epsilon,  # the wrapper raises it to at least 1.001e-5 (cuDNN's floor)
            data_format="NHWC",
            is_training=True,
        )
        rows = tf.cast(tf.shape(x)[0], "float32")
        variance = variance * (rows - 1.0) / tf.maximum(rows, 1.0)  # Bessel correction undone
        momentum = self.momentum
        self.moving_mean.assign(
            self.moving_mean * momentum + ops.cast(mean, self.moving_mean.dtype) * (1 - momentum)
        )
        self.moving_variance.assign(
            self.moving_variance * momentum
            + ops.cast(variance, self.moving_variance.dtype) * (1 - momentum)
        )
        return tf.cast(tf.reshape(y, tf.shape(x)), self.compute_dtype)
