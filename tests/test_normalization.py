"""FusedBatchNormalization: the Keras layer's results, gradients and statistics, in fewer ops."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf4ctr_keras.layers import FusedBatchNormalization, MLPBlock


def _pair(momentum=0.9, epsilon=1e-5):
    fused = FusedBatchNormalization(momentum=momentum, epsilon=epsilon)
    plain = keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon)
    for layer in (fused, plain):
        layer.build((None, 6))
    rng = np.random.default_rng(0)
    gamma, beta = rng.normal(1, 0.2, 6), rng.normal(0, 0.2, 6)
    for layer in (fused, plain):
        layer.gamma.assign(gamma)
        layer.beta.assign(beta)
    return fused, plain


def test_training_step_matches_keras_outputs_gradients_and_moving_statistics():
    fused, plain = _pair(epsilon=1.001e-5)  # the fused wrapper's epsilon floor
    x = tf.constant(np.random.default_rng(1).normal(2.0, 3.0, (32, 6)), tf.float32)
    grads = []
    for layer in (fused, plain):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.sin(y))  # a non-trivial upstream gradient
        grads.append(tape.gradient(loss, [x, layer.gamma, layer.beta]))
        grads[-1].append(y)
    for a, b in zip(*grads, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
    # Moving statistics: Keras' biased batch variance, momentum 0.9 (PyTorch 0.1).
    xn = np.asarray(x)
    np.testing.assert_allclose(np.asarray(fused.moving_mean), 0.1 * xn.mean(0), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(fused.moving_variance), 0.9 + 0.1 * xn.var(0), rtol=1e-5)
    np.testing.assert_allclose(
        np.asarray(fused.moving_variance), np.asarray(plain.moving_variance), rtol=1e-5
    )


def test_inference_is_the_keras_path():
    fused, plain = _pair()
    x = np.random.default_rng(2).normal(size=(5, 6)).astype("float32")
    np.testing.assert_array_equal(np.asarray(fused(x)), np.asarray(plain(x)))


def test_mixed_precision_and_xla_step():
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    layer = FusedBatchNormalization(momentum=0.9, epsilon=1e-5)
    layer.build((None, 4))
    x = tf.constant(np.random.default_rng(3).normal(size=(16, 4)), tf.bfloat16)

    @tf.function(jit_compile=True)
    def step(inputs):
        return layer(inputs, training=True)

    y = step(x)
    assert y.dtype == tf.bfloat16 and layer.moving_mean.dtype == "float32"
    xf = np.asarray(tf.cast(x, tf.float32))
    expected = (xf - xf.mean(0)) / np.sqrt(xf.var(0) + 1.001e-5)
    np.testing.assert_allclose(np.asarray(tf.cast(y, tf.float32)), expected, atol=0.05)


def test_mlp_block_option_round_trips_and_loads_keras_bn_weights(tmp_path):
    x = np.random.default_rng(4).normal(size=(8, 5)).astype("float32")
    plain = MLPBlock([3, 2], seed=3)
    fused = MLPBlock([3, 2], seed=3, fused_batch_norm=True)
    assert isinstance(fused.norm_layers[0], FusedBatchNormalization)
    plain(x, training=True)
    fused.build(x.shape)
    fused.set_weights(plain.get_weights())  # same variables, same order
    np.testing.assert_array_equal(np.asarray(fused(x)), np.asarray(plain(x)))
    clone = MLPBlock.from_config(fused.get_config())
    assert clone.fused_batch_norm and isinstance(clone.norm_layers[1], FusedBatchNormalization)


@pytest.mark.parametrize("kwargs", [{"renorm": True}, {"axis": 0}])
def test_unsupported_settings_fall_back_to_keras(kwargs):
    fused = FusedBatchNormalization(momentum=0.9, epsilon=1e-5, **kwargs)
    plain = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, **kwargs)
    x = np.random.default_rng(5).normal(size=(8, 3)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(fused(x, training=True)), np.asarray(plain(x, training=True)), rtol=1e-6
    )
