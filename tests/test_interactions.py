import numpy as np
import pytest

from tests.layer_checks import run_layer_checks
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
    x = X
    for proj in layer.projections:
        q, k, v, r = (x @ np.asarray(proj[p].kernel) for p in ("query", "key", "value", "residual"))
        heads = []
        for h in range(2):
            s = slice(2 * h, 2 * h + 2)
            scores = q[..., s] @ np.swapaxes(k[..., s], 1, 2) / np.sqrt(2)
            weights = np.exp(scores - scores.max(-1, keepdims=True))
            weights /= weights.sum(-1, keepdims=True)
            heads.append(weights @ v[..., s])
        x = np.maximum(np.concatenate(heads, -1) + r, 0)
    np.testing.assert_allclose(out, x.reshape(4, -1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda: CompressedInteractionNetwork([]), "layer_sizes"),
        (lambda: CrossNetwork(0), "num_layers"),
        (lambda: CrossNetworkV2(2, projection_dim=0), "projection_dim"),
        (lambda: MultiHeadSelfAttention(attention_dim=5, num_heads=2), "divisible"),
    ],
)
def test_invalid_arguments(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


@pytest.mark.parametrize(
    "factory, shape, count, float32_output, fit",
    [
        (FactorizationMachine, (4, 1), 0, True, False),
        # 3 layers of (6 kernel + 6 bias)
        (lambda: CrossNetwork(3), (4, 6), 36, False, True),
        # 2 layers of (6x6 + 6)
        (lambda: CrossNetworkV2(2), (4, 6), 84, False, True),
        # (3*3) * 3 + 3, (3*3) * 2 + 2, output 5*4 + 4
        (
            lambda: CompressedInteractionNetwork([3, 2], output_dim=4),
            (4, 4),
            30 + 20 + 24,
            False,
            True,
        ),
        # layer 1: 4 projections of 2x4; layer 2: 4 of 4x4
        (lambda: MultiHeadSelfAttention(4, 2, 2), (4, 12), 32 + 64, False, True),
    ],
)
def test_standard_checks(tmp_path, factory, shape, count, float32_output, fit):
    run_layer_checks(
        factory,
        X,
        tmp_path,
        expected_shape=shape,
        expected_trainable=count,
        float32_output=float32_output,
        fit=fit,
    )


def test_linear_logit_standard_checks(tmp_path):
    ids = {"a": np.array([2, 0, 1, 1]), "b": np.array([1, 1, 0, 0])}
    run_layer_checks(
        lambda: LinearLogit({"a": 3, "b": 2}, embedding_l2=0.1),
        ids,
        tmp_path,
        expected_shape=(4, 1),
        expected_trainable=6,
        float32_output=True,
    )
