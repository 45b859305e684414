import numpy as np
import pytest

from tests.layer_checks import run_layer_test
from tf4ctr_keras.layers import (
    FUSIONS,
    ConcatFusion,
    GumbelVotingFusion,
    MoEFusion,
    SumFusion,
    WeightedSumFusion,
)
from tf4ctr_keras.registry import BuildContext

RNG = np.random.default_rng(0)
H_S = RNG.normal(size=(4, 3)).astype("float32")
H_C = RNG.normal(size=(4, 5)).astype("float32")
Z_S = RNG.normal(size=(4, 1)).astype("float32")
Z_C = RNG.normal(size=(4, 1)).astype("float32")
INPUTS = [H_S, H_C, Z_S, Z_C]


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_weighted_sum_starts_at_half_and_is_unconstrained():
    layer = WeightedSumFusion()
    np.testing.assert_allclose(layer(INPUTS), 0.5 * Z_S + 0.5 * Z_C, rtol=1e-6)
    layer.fusion_weights.assign([2.0, -1.0])  # no softmax, no positivity constraint
    np.testing.assert_allclose(layer(INPUTS), 2 * Z_S - Z_C, rtol=1e-6)


def test_voting_is_deterministic_softmax_over_tau_at_inference():
    layer = GumbelVotingFusion(temperature=0.8)
    out = np.asarray(layer(INPUTS, training=False))
    pi = np.concatenate(
        [
            H_S @ np.asarray(layer.simple_vote.kernel) + np.asarray(layer.simple_vote.bias),
            H_C @ np.asarray(layer.complex_vote.kernel) + np.asarray(layer.complex_vote.bias),
        ],
        -1,
    )
    p = _softmax(pi / 0.8)
    np.testing.assert_allclose(out, p[:, :1] * Z_S + p[:, 1:] * Z_C, rtol=1e-5)
    np.testing.assert_array_equal(out, np.asarray(layer(INPUTS, training=False)))


def test_voting_noise_is_gumbel_so_hard_votes_follow_softmax_of_pi():
    n = 20000
    layer = GumbelVotingFusion(temperature=0.01, seed=3)
    h_s, h_c = np.zeros((n, 3), "float32"), np.zeros((n, 5), "float32")
    layer([h_s, h_c, np.zeros((n, 1)), np.zeros((n, 1))])
    layer.simple_vote.bias.assign([1.0])  # pi = [1, 0]: P(simple wins) = e / (e + 1)
    p = np.asarray(layer.voting_probabilities(h_s, h_c, training=True))
    assert abs((p[:, 0] > 0.5).mean() - np.e / (np.e + 1)) < 0.015


def test_voting_can_keep_the_reference_noise_at_inference():
    layer = GumbelVotingFusion(noisy_inference=True, seed=1)
    a, b = np.asarray(layer(INPUTS)), np.asarray(layer(INPUTS))
    assert not np.allclose(a, b)


def test_concat_fusion_is_linear_on_concatenation():
    layer = ConcatFusion()
    out = np.asarray(layer(INPUTS))
    dense = layer.output_layer
    expected = np.concatenate([H_S, H_C], -1) @ np.asarray(dense.kernel) + np.asarray(dense.bias)
    np.testing.assert_allclose(out, expected, rtol=1e-5)


def test_moe_fusion_mixes_linear_experts_with_softmax_gate():
    layer = MoEFusion()
    out = np.asarray(layer(INPUTS))
    both = np.concatenate([H_S, H_C], -1)
    gates = _softmax(both @ np.asarray(layer.gate.kernel) + np.asarray(layer.gate.bias))
    experts = both @ np.asarray(layer.experts.kernel) + np.asarray(layer.experts.bias)
    np.testing.assert_allclose(out[:, 0], (gates * experts).sum(-1), rtol=1e-5)


def test_sum_fusion():
    np.testing.assert_allclose(SumFusion()(INPUTS), Z_S + Z_C)


def test_registry_names():
    assert FUSIONS.names() == ["wsf", "vf", "cf", "moef", "sum"]  # registration order
    assert FUSIONS.canonical("none") == "sum"
    fusion = FUSIONS.get("none").builder(BuildContext({"a": 2}, seed=1))
    assert isinstance(fusion, SumFusion) and fusion.name == "fusion"
    with pytest.raises(ValueError, match="Valid choices: cf, moef, sum, vf, wsf"):
        FUSIONS.get("wfs")


def test_registered_defaults_are_the_layers_defaults():
    import inspect

    for variant in FUSIONS.variants():
        layer_cls = type(variant.builder(BuildContext({"a": 2})))
        params = inspect.signature(layer_cls.__init__).parameters
        for key, default in variant.defaults.items():
            assert params[key].default == default, (variant.name, key)


# Literal outputs with `ones` initializers: h_s = [1, 2], h_c = [3], z_s = 1, z_c = 3.
HAND = [np.array([[1.0, 2.0]]), np.array([[3.0]]), np.array([[1.0]]), np.array([[3.0]])]


@pytest.mark.parametrize(
    "layer, expected",
    [
        (WeightedSumFusion(), 2.0),  # 0.5 * 1 + 0.5 * 3
        (SumFusion(), 4.0),  # 1 + 3
        (ConcatFusion(kernel_initializer="ones"), 6.0),  # 1 + 2 + 3
        (ConcatFusion(kernel_initializer="ones", bias_initializer="ones"), 7.0),
        (GumbelVotingFusion(kernel_initializer="ones"), 2.0),  # pi = [3, 3]: p = [.5, .5]
        (MoEFusion(kernel_initializer="ones"), 6.0),  # equal gates, each expert sum(c) = 6
    ],
)
def test_literal_values_with_ones(layer, expected):
    np.testing.assert_allclose(layer(HAND, training=False), [[expected]], rtol=1e-6)


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda: GumbelVotingFusion(temperature=0.0), "temperature"),
        (lambda: MoEFusion(num_experts=1), "num_experts"),
    ],
)
def test_invalid_arguments(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_wrong_input_structure_is_explained():
    with pytest.raises(ValueError, match="h_simple, h_complex, z_simple, z_complex"):
        SumFusion()([Z_S, Z_C])


@pytest.mark.parametrize(
    "cls, count, fit",
    [
        (WeightedSumFusion, 2, True),
        (GumbelVotingFusion, 4 + 6, True),
        (ConcatFusion, 9, True),
        (MoEFusion, 2 * 18, True),
        (SumFusion, 0, False),
    ],
)
def test_standard_checks(tmp_path, cls, count, fit):
    run_layer_test(
        cls,
        {},
        INPUTS,
        tmp_path,
        expected_output_shape=(4, 1),
        expected_num_trainable_params=count,
        float32_output=True,
        run_training_check=fit,
    )
