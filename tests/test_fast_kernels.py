"""The fused BatchNorm and the 16-bit dropout of the MLP towers: hand-computed values, parity of
values and gradients with Keras' own layers, the bit layout of the dropout mask."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf4ctr_keras.layers import MLPBlock
from tf4ctr_keras.layers.fast_kernels import TowerBatchNormalization, TowerDropout

X = np.array([[1.0, 10.0], [3.0, 20.0], [8.0, 60.0]], "float32")


def _pair(shape=X.shape, **kwargs):
    """A TowerBatchNormalization and a Keras BatchNormalization with the same weights."""
    ours = TowerBatchNormalization(momentum=0.9, epsilon=1e-5, **kwargs)
    stock = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, **kwargs)
    ours.build(shape)
    stock.build(shape)
    for layer in (ours, stock):
        layer.gamma.assign([2.0, 0.5])
        layer.beta.assign([1.0, -1.0])
        layer.moving_mean.assign([0.5, 4.0])
        layer.moving_variance.assign([2.0, 9.0])
    return ours, stock


def test_training_normalises_with_the_biased_batch_variance_by_hand():
    ours, _ = _pair()
    out = np.asarray(ours(X, training=True))
    mean = X.mean(0)  # [4, 30]
    biased = ((X - mean) ** 2).mean(0)  # [26/3, 1400/3]
    expected = (X - mean) / np.sqrt(biased + 1e-5) * [2.0, 0.5] + [1.0, -1.0]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_moving_statistics_take_pytorchs_unbiased_variance():
    ours, stock = _pair()
    ours(X, training=True)
    stock(X, training=True)
    mean, unbiased = X.mean(0), X.var(0, ddof=1)  # [4, 30], [13, 700]
    np.testing.assert_allclose(
        np.asarray(ours.moving_mean), 0.9 * np.array([0.5, 4.0]) + 0.1 * mean
    )
    np.testing.assert_allclose(
        np.asarray(ours.moving_variance), 0.9 * np.array([2.0, 9.0]) + 0.1 * unbiased, rtol=1e-6
    )
    # Keras keeps the biased one: the only difference between the two layers
    np.testing.assert_allclose(
        np.asarray(stock.moving_variance), 0.9 * np.array([2.0, 9.0]) + 0.1 * X.var(0), rtol=1e-6
    )
    np.testing.assert_allclose(np.asarray(ours.moving_mean), np.asarray(stock.moving_mean))


def test_a_one_row_batch_updates_the_moving_variance_with_zero():
    ours, _ = _pair()
    ours(X[:1], training=True)
    np.testing.assert_allclose(np.asarray(ours.moving_variance), [1.8, 8.1], rtol=1e-6)
    assert np.all(np.isfinite(np.asarray(ours.moving_mean)))


def test_inference_uses_the_moving_statistics_as_keras():
    ours, stock = _pair()
    expected = (X - [0.5, 4.0]) / np.sqrt(np.array([2.0, 9.0]) + 1e-5) * [2.0, 0.5] + [1.0, -1.0]
    np.testing.assert_allclose(np.asarray(ours(X, training=False)), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(ours(X, training=False)),
        np.asarray(stock(X, training=False)),
        rtol=1e-5,
        atol=1e-6,
    )


def test_gradients_equal_keras_batch_norms():
    ours, stock = _pair()
    x = tf.constant(X)
    upstream = tf.constant([[1.0, -2.0], [0.5, 3.0], [-1.0, 0.25]])
    grads = []
    for layer in (ours, stock):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
        grads.append(tape.gradient(y, [x, layer.gamma, layer.beta], output_gradients=upstream))
    for a, b in zip(*grads, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)


def test_other_ranks_use_keras_code():
    x = np.stack([X, 2 * X], axis=1)  # (3, 2, 2): not the fused path
    ours, stock = _pair(x.shape)
    np.testing.assert_allclose(
        np.asarray(ours(x, training=True)), np.asarray(stock(x, training=True)), rtol=1e-5
    )
    np.testing.assert_allclose(np.asarray(ours.moving_variance), np.asarray(stock.moving_variance))


def test_mixed_precision_keeps_float32_statistics():
    layer = TowerBatchNormalization(dtype="mixed_float16")
    out = layer(tf.constant(X, tf.float16), training=True)
    assert out.dtype == tf.float16 and layer.moving_mean.dtype == "float32"
    mean = X.mean(0)
    np.testing.assert_allclose(
        np.asarray(out, "float32"), (X - mean) / np.sqrt(X.var(0) + 1e-5), rtol=2e-3, atol=2e-3
    )


def test_dropout_rate_is_rounded_to_sixteen_bits():
    assert TowerDropout(0.2).applied_rate() == 13107 / 65536
    assert TowerDropout(0.5).applied_rate() == 0.5


def test_dropout_mask_is_sixteen_bit_halves_of_philox_draws():
    layer = TowerDropout(0.2, seed=11)
    x = np.arange(1, 4001, dtype="float32").reshape(40, 100)
    seed = np.asarray(layer.seed_generator.state)  # the seed this call draws
    out = np.asarray(layer(x, training=True))
    draws = np.asarray(
        tf.random.stateless_uniform(
            [2000],
            tf.constant(seed % (2**31 - 2), tf.int32),
            minval=None,
            maxval=None,
            dtype=tf.uint32,
        )
    )
    halves = np.stack([draws & 0xFFFF, draws >> 16], axis=1).reshape(40, 100)  # little endian
    keep = halves >= 13107
    np.testing.assert_array_equal(out != 0, keep)
    np.testing.assert_array_equal(out[keep], x[keep] * np.float32(65536 / (65536 - 13107)))
    assert abs((~keep).mean() - 0.2) < 4 * np.sqrt(0.2 * 0.8 / keep.size)  # 4 sigma


def test_dropout_draws_a_new_mask_per_call_and_repeats_per_seed():
    a, b = TowerDropout(0.3, seed=5), TowerDropout(0.3, seed=5)
    x = np.ones((64, 64), "float32")
    first, second = np.asarray(a(x, training=True)), np.asarray(a(x, training=True))
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, np.asarray(b(x, training=True)))
    np.testing.assert_array_equal(np.asarray(a(x, training=False)), x)


def test_odd_sizes_and_float16():
    layer = TowerDropout(0.25, seed=3, dtype="mixed_float16")
    x = tf.ones((7, 3), tf.float16)
    out = layer(x, training=True)
    assert out.dtype == tf.float16 and out.shape == (7, 3)
    assert set(np.unique(np.asarray(out, "float32"))) <= {0.0, np.float32(np.float16(4 / 3))}


def test_noise_shape_uses_keras_code():
    x = np.ones((8, 6), "float32")
    ours = TowerDropout(0.5, noise_shape=(8, 1), seed=2)(x, training=True)
    stock = keras.layers.Dropout(0.5, noise_shape=(8, 1), seed=2)(x, training=True)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(stock))


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_mlp_block_uses_the_fast_layers_and_loads_into_a_stock_structure(dropout):
    block = MLPBlock([4, 3], dropout=dropout, seed=1)
    block.build((None, 5))
    assert all(isinstance(n, TowerBatchNormalization) for n in block.norm_layers)
    assert all(isinstance(d, TowerDropout) for d in block.dropout_layers)
    assert len(block.dropout_layers) == (2 if dropout else 0)
    stock = keras.layers.BatchNormalization()
    stock.build((None, 4))
    assert [w.name for w in block.norm_layers[0].weights] == [w.name for w in stock.weights]


def test_weights_saved_with_the_stock_layers_load(tmp_path):
    """Keras' saving names a listed layer by its class name; a block written by the stock
    BatchNormalization/Dropout (the code before the fast kernels) loads into today's."""
    import tf4ctr_keras.layers.mlp_block as mlp_block

    x = np.random.default_rng(0).normal(size=(16, 5)).astype("float32")

    def model():
        inputs = keras.Input((5,))
        return keras.Model(inputs, MLPBlock([4, 3], dropout=0.2, seed=1)(inputs))

    saved = tmp_path / "stock.weights.h5"
    patched = (mlp_block.TowerBatchNormalization, mlp_block.TowerDropout)
    mlp_block.TowerBatchNormalization = keras.layers.BatchNormalization
    mlp_block.TowerDropout = keras.layers.Dropout
    try:
        stock = model()
        stock(x, training=True)  # moves the moving statistics and the seed state
        stock.save_weights(saved)
    finally:
        mlp_block.TowerBatchNormalization, mlp_block.TowerDropout = patched
    ours = model()
    ours.load_weights(saved)
    for a, b in zip(stock.weights, ours.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_allclose(
        np.asarray(ours(x, training=False)), np.asarray(stock(x, training=False)), atol=1e-5
    )
