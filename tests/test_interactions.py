import numpy as np
import pytest

from tests.layer_checks import run_layer_test
from tf4ctr_keras.layers import (
    CompressedInteractionNetwork,
    CrossNetwork,
    CrossNetworkV2,
    FactorizationMachine,
    LinearLogit,
    MultiHeadSelfAttention,
)

RNG = np.random.default_rng(0)
X = RNG.normal(size=(4, 3, 2)).astype("float32")  # (batch, fields, dim)


def test_fm_equals_sum_of_pairwise_inner_products_per_sample():
    out = np.asarray(FactorizationMachine()(X))
    expected = [sum(X[b, i] @ X[b, j] for i in range(3) for j in range(i + 1, 3)) for b in range(4)]
    np.testing.assert_allclose(out[:, 0], expected, rtol=1e-5)


def test_fm_is_per_sample_not_collapsed_over_the_batch():
    # The reference's DeepFM bug made the FM term one scalar per batch; ours depends only
    # on the sample itself.
    fm = FactorizationMachine()
    alone = np.asarray(fm(X[:1]))
    np.testing.assert_allclose(np.asarray(fm(X))[:1], alone, rtol=1e-6)


def test_fm_rejects_flattened_input():
    with pytest.raises(ValueError, match="batch, fields, dim"):
        FactorizationMachine()(X.reshape(4, 6))


def test_linear_logit_sums_field_weights_plus_bias():
    layer = LinearLogit({"a": 3, "b": 2})
    ids = {"a": np.array([2, 0]), "b": np.array([1, 1])}
    layer(ids)
    layer.weights_embedding.embeddings.assign(np.array([[1], [2], [3], [10], [20]], "float32"))
    layer.bias.assign([0.5])
    np.testing.assert_allclose(np.asarray(layer(ids))[:, 0], [3 + 20 + 0.5, 1 + 20 + 0.5])


def _numpy_cin(layer, x):
    x0, xk, pools = x, x, []
    for dense in layer.maps:
        w, b = np.asarray(dense.kernel), np.asarray(dense.bias)  # (h*m, units)
        h, m = xk.shape[1], x0.shape[1]
        z = np.einsum("bhd,bmd->bhmd", xk, x0).reshape(x.shape[0], h * m, x.shape[2])
        xk = np.einsum("bkd,ku->bud", z, w) + b[None, :, None]
        pools.append(xk.sum(axis=2))
    return np.concatenate(pools, axis=1)


def test_cin_matches_a_direct_transcription():
    layer = CompressedInteractionNetwork([3, 2], seed=1)
    out = np.asarray(layer(X))
    np.testing.assert_allclose(out, _numpy_cin(layer, X), rtol=1e-4, atol=1e-5)


def test_cross_network_matches_x0_times_xw_plus_b_plus_x():
    layer = CrossNetwork(2, seed=1)
    out = np.asarray(layer(X))
    x0 = X.reshape(4, 6)
    x = x0
    for k, b in zip(layer.kernels, layer.biases, strict=True):
        x = x0 * (x @ np.asarray(k)) + np.asarray(b) + x
    np.testing.assert_allclose(out, x, rtol=1e-5, atol=1e-6)


def test_cross_network_v2_matches_x0_times_wx_plus_b_plus_x():
    layer = CrossNetworkV2(2, seed=1)
    out = np.asarray(layer(X))
    x0 = X.reshape(4, 6)
    x = x0
    for cross in layer.crosses:
        w, b = np.asarray(cross.dense.kernel), np.asarray(cross.dense.bias)
        x = x0 * (x @ w + b) + x
    np.testing.assert_allclose(out, x, rtol=1e-5, atol=1e-6)


def test_self_attention_matches_a_direct_transcription():
    layer = MultiHeadSelfAttention(attention_dim=4, num_heads=2, num_layers=2, use_scale=True)
    out = np.asarray(layer(X))
    # FuxiCTR's W_res only where the widths differ: layer 1 (2 -> 4), not layer 2 (4 -> 4)
    assert "residual" in layer.projections[0] and "residual" not in layer.projections[1]
    x = X
    for proj in layer.projections:
        q, k, v = (x @ np.asarray(proj[p].kernel) for p in ("query", "key", "value"))
        r = x @ np.asarray(proj["residual"].kernel) if "residual" in proj else x
        heads = []
        for h in range(2):
            s = slice(2 * h, 2 * h + 2)
            scores = q[..., s] @ np.swapaxes(k[..., s], 1, 2) / np.sqrt(2)
            weights = np.exp(scores - scores.max(-1, keepdims=True))
            weights /= weights.sum(-1, keepdims=True)
            heads.append(weights @ v[..., s])
        x = np.maximum(np.concatenate(heads, -1) + r, 0)
    np.testing.assert_allclose(out, x.reshape(4, -1), rtol=1e-4, atol=1e-5)


def test_self_attention_drops_attention_weights_in_training_only():
    layer = MultiHeadSelfAttention(attention_dim=2, num_heads=1, num_layers=1, dropout=0.5, seed=1)
    np.testing.assert_allclose(layer(X, training=False), layer(X, training=False))
    eval_out = np.asarray(layer(X, training=False))
    assert not np.allclose(layer(X, training=True), eval_out)
    plain = MultiHeadSelfAttention(attention_dim=2, num_heads=1, num_layers=1, seed=1)
    np.testing.assert_allclose(plain(X), eval_out, rtol=1e-6)  # same seed, no dropout


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda: MultiHeadSelfAttention(dropout=1.0), "dropout"),
        (lambda: CompressedInteractionNetwork([]), "layer_sizes"),
        (lambda: CrossNetwork(0), "num_layers"),
        (lambda: CrossNetworkV2(2, projection_dim=0), "projection_dim"),
        (lambda: MultiHeadSelfAttention(attention_dim=5, num_heads=2), "divisible"),
    ],
)
def test_invalid_arguments(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


# Literal outputs with `ones` initializers, computed by hand in the comments.
X_HAND = np.array([[[1.0, 2.0]], [[0.5, -1.0]]], "float32")  # (batch 2, 1 field, dim 2)


def test_fm_literal_value():
    x = np.array([[[1, 2], [3, 4], [5, 6]], [[1, 1], [1, 1], [1, 1]]], "float32")
    # <v1,v2> + <v1,v3> + <v2,v3> = 11 + 17 + 39; three pairs of <1,1> = 6
    np.testing.assert_allclose(FactorizationMachine()(x), [[67.0], [6.0]])


def test_linear_logit_literal_value_with_ones():
    layer = LinearLogit({"a": 3, "b": 2}, embeddings_initializer="ones", bias_initializer="ones")
    ids = {"a": np.array([2, 0]), "b": np.array([1, 1])}
    np.testing.assert_allclose(layer(ids), [[3.0], [3.0]])  # w_a + w_b + b = 1 + 1 + 1


def test_cross_network_literal_value_with_ones():
    layer = CrossNetwork(2, kernel_initializer="ones", bias_initializer="ones")
    # x0 = [1, 2]: x1 = x0 * 3 + 1 + x0 = [5, 9]; x2 = x0 * 14 + 1 + x1 = [20, 38]
    # x0 = [.5, -1]: x1 = x0 * -.5 + 1 + x0 = [1.25, .5]; x2 = x0 * 1.75 + 1 + x1
    np.testing.assert_allclose(layer(X_HAND), [[20.0, 38.0], [3.125, -0.25]], rtol=1e-6)


def test_cross_network_v2_literal_value_with_ones():
    layer = CrossNetworkV2(2, kernel_initializer="ones", bias_initializer="ones")
    # W x + b = sum(x) + 1 per unit. x0 = [1, 2]: x1 = x0 * 4 + x0 = [5, 10];
    # x2 = x0 * 16 + x1 = [21, 42]. x0 = [.5, -1]: x1 = x0 * .5 + x0 = [.75, -1.5];
    # x2 = x0 * .25 + x1 = [.875, -1.75]
    np.testing.assert_allclose(layer(X_HAND), [[21.0, 42.0], [0.875, -1.75]], rtol=1e-6)


def test_cin_literal_value_with_ones():
    layer = CompressedInteractionNetwork([1, 1], kernel_initializer="ones")
    x = np.array([[[1, 2], [3, 4]]], "float32")  # fields (1, 2) and (3, 4)
    # layer 1 per dim d: (sum_h x_hd) * (sum_m x_md) = [16, 36], pooled 52;
    # layer 2: [16, 36] * [4, 6] = [64, 216], pooled 280
    np.testing.assert_allclose(layer(x), [[52.0, 280.0]])
    with_output = CompressedInteractionNetwork([1, 1], output_dim=1, kernel_initializer="ones")
    np.testing.assert_allclose(with_output(x), [[332.0]])


@pytest.mark.parametrize(
    "cls, kwargs, shape, count, float32_output, fit",
    [
        (FactorizationMachine, {}, (4, 1), 0, True, False),
        # 3 layers of (6 kernel + 6 bias)
        (CrossNetwork, {"num_layers": 3}, (4, 6), 36, False, True),
        # 2 layers of (6x6 + 6)
        (CrossNetworkV2, {"num_layers": 2}, (4, 6), 84, False, True),
        # (3*3) * 3 + 3, (3*3) * 2 + 2, output 5*4 + 4
        (
            CompressedInteractionNetwork,
            {"layer_sizes": [3, 2], "output_dim": 4},
            (4, 4),
            30 + 20 + 24,
            False,
            True,
        ),
        # layer 1: 4 projections of 2x4 (query, key, value, residual); layer 2: 3 of 4x4 (the
        # residual is the identity where the widths match, as FuxiCTR's)
        (
            MultiHeadSelfAttention,
            {"attention_dim": 4, "num_heads": 2, "num_layers": 2, "dropout": 0.5},
            (4, 12),
            32 + 48,
            False,
            True,
        ),
    ],
)
def test_standard_checks(tmp_path, cls, kwargs, shape, count, float32_output, fit):
    run_layer_test(
        cls,
        kwargs,
        X,
        tmp_path,
        expected_output_shape=shape,
        expected_num_trainable_params=count,
        float32_output=float32_output,
        run_training_check=fit,
    )


def test_linear_logit_standard_checks(tmp_path):
    ids = {"a": np.array([2, 0, 1, 1]), "b": np.array([1, 1, 0, 0])}
    run_layer_test(
        LinearLogit,
        {"vocab_sizes": {"a": 3, "b": 2}, "embedding_l2": 0.1},
        ids,
        tmp_path,
        expected_output_shape=(4, 1),
        expected_num_trainable_params=6,
        expected_num_trainable_weights=2,
        float32_output=True,
    )
