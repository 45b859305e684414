import keras
import numpy as np
import pytest

from tests.layer_checks import run_layer_test
from tf4ctr_keras.layers import MLPBlock


def test_inference_value_dense_then_bn_then_relu_by_hand():
    block = MLPBlock([2])
    x = np.array([[1.0, 2.0, 3.0], [-1.0, -2.0, -3.0]], dtype="float32")
    block.build(x.shape)
    block.dense_layers[0].kernel.assign(np.ones((3, 2), "float32"))
    out = np.asarray(block(x, training=False))
    # moving mean 0, moving var 1, gamma 1, beta 0, eps 1e-5
    expected = np.maximum(np.array([[6.0, 6.0], [-6.0, -6.0]]) / np.sqrt(1 + 1e-5), 0)
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_training_uses_batch_statistics_and_pytorch_momentum():
    block = MLPBlock([1])
    x = np.array([[1.0], [3.0]], dtype="float32")
    block.build(x.shape)
    block.dense_layers[0].kernel.assign([[1.0]])
    out = np.asarray(block(x, training=True))
    # batch mean 2, biased variance 1 -> (+-1) / sqrt(1 + 1e-5), then ReLU
    np.testing.assert_allclose(out[:, 0], [0.0, 1 / np.sqrt(1 + 1e-5)], rtol=1e-6)
    bn = block.norm_layers[0]
    # PyTorch momentum 0.1 == Keras 0.9: new = 0.9 * old + 0.1 * batch
    np.testing.assert_allclose(np.asarray(bn.moving_mean), [0.2], rtol=1e-6)
    assert bn.epsilon == 1e-5 and bn.momentum == 0.9


def test_rank3_input_is_flattened_and_output_layer_is_linear():
    block = MLPBlock([4], output_dim=1, batch_norm=False)
    assert tuple(block(np.ones((5, 2, 3), "float32")).shape) == (5, 1)
    assert block.dense_layers[0].kernel.shape == (6, 4)


def test_same_shaped_layers_start_different_and_seed_is_reproducible():
    a = MLPBlock([4, 4, 4], seed=7)
    b = MLPBlock([4, 4, 4], seed=7)
    a.build((None, 4))
    b.build((None, 4))
    k1, k2 = np.asarray(a.dense_layers[1].kernel), np.asarray(a.dense_layers[2].kernel)
    assert not np.allclose(k1, k2)
    np.testing.assert_array_equal(k1, np.asarray(b.dense_layers[1].kernel))


def test_xavier_normal_init_scale():
    block = MLPBlock([400], seed=1)
    block.build((None, 400))
    std = np.asarray(block.dense_layers[0].kernel).std()
    assert abs(std - np.sqrt(2.0 / 800)) < 0.003  # truncated normal, std sqrt(2/(in+out))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"hidden_units": "400"}, "hidden_units"),
        ({"hidden_units": [400, 0]}, "hidden_units"),
        ({"hidden_units": [4], "dropout": 1.0}, "dropout"),
        ({"hidden_units": [4], "bn_epsilon": 0.0}, "bn_epsilon"),
        ({"hidden_units": [], "output_dim": None}, "nothing to build"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MLPBlock(**kwargs)


def test_unknown_activation_fails_at_construction():
    with pytest.raises(ValueError):
        MLPBlock([4], activation="relux")


def test_literal_value_with_ones_and_no_batch_norm():
    block = MLPBlock([2], batch_norm=False, output_dim=1, kernel_initializer="ones")
    x = np.array([[1.0, 2.0, 3.0], [-1.0, -2.0, -3.0]], "float32")
    # hidden relu([6, 6]) = [6, 6] -> output 12; relu([-6, -6]) = 0 -> 0
    np.testing.assert_allclose(block(x, training=False), [[12.0], [0.0]])


def test_literal_value_with_batch_norm_in_inference_with_known_statistics():
    block = MLPBlock([2], kernel_initializer="ones", bias_initializer="ones")
    x = np.array([[1.0, 2.0, 3.0]], "float32")
    block.build(x.shape)
    block.norm_layers[0].moving_mean.assign([1.0, 2.0])
    block.norm_layers[0].moving_variance.assign([4.0, 9.0])
    # dense = 6 + 1 = 7 per unit; BN: (7 - 1) / sqrt(4 + eps), (7 - 2) / sqrt(9 + eps)
    expected = [[6.0 / np.sqrt(4 + 1e-5), 5.0 / np.sqrt(9 + 1e-5)]]
    np.testing.assert_allclose(block(x, training=False), expected, rtol=1e-6)


def test_standard_checks(tmp_path):
    x = np.random.default_rng(0).normal(size=(8, 2, 5)).astype("float32")
    # 10*4+4 + BN(4: gamma, beta) + 4*3+3 + BN(3) = 44 + 8 + 15 + 6
    run_layer_test(
        MLPBlock,
        {"hidden_units": [4, 3], "dropout": 0.1, "seed": 2},
        x,
        tmp_path,
        expected_output_shape=(8, 3),
        expected_num_trainable_params=73,
        expected_num_trainable_weights=8,
        expected_num_non_trainable_weights=4,
    )


def test_bn_statistics_are_not_trainable_but_are_saved():
    block = MLPBlock([4])
    block.build((None, 3))
    names = {w.path.split("/")[-1] for w in block.non_trainable_weights}
    assert names == {"moving_mean", "moving_variance"}
    assert isinstance(block.norm_layers[0], keras.layers.BatchNormalization)
