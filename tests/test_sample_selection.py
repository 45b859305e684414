import numpy as np
import pytest
import tensorflow as tf

from tests.layer_checks import run_layer_test
from tf4ctr_keras.layers import (
    SELECTORS,
    GatedSampleSelector,
    MMoESampleSelector,
    SeparateEmbeddingSelector,
    SharedEmbeddingSelector,
)
from tf4ctr_keras.registry import BuildContext

VOCAB = {"a": 3, "b": 2}
IDS = {"a": np.array([0, 1, 2, 1], "int64"), "b": np.array([1, 1, 0, 0], "int64")}


def test_ser_builds_two_tables_and_simple_side_defaults_to_half_width():
    layer = SeparateEmbeddingSelector(VOCAB, embedding_dim=16)
    simple, complex_ = layer(IDS)
    assert simple.shape == (4, 2, 8) and complex_.shape == (4, 2, 16)
    assert layer.simple_embedding.embeddings.shape == (5, 8)
    assert SeparateEmbeddingSelector(VOCAB, 16, simple_embedding_dim=12)(IDS)[0].shape[-1] == 12


def test_ser_sides_do_not_share_gradients():
    layer = SeparateEmbeddingSelector(VOCAB, embedding_dim=4)
    layer(IDS)
    with tf.GradientTape() as tape:
        _, complex_ = layer(IDS)
        loss = tf.reduce_sum(complex_)
    grads = tape.gradient(loss, [layer.simple_embedding.embeddings, layer.embedding.embeddings])
    assert grads[0] is None
    assert np.abs(tf.convert_to_tensor(grads[1])).sum() > 0


def test_shared_feeds_the_same_tensor_to_both_sides():
    simple, complex_ = SharedEmbeddingSelector(VOCAB, embedding_dim=4)(IDS)
    np.testing.assert_array_equal(simple, complex_)


def test_gate_splits_embedding_into_complementary_parts_with_scalar_gate():
    layer = GatedSampleSelector(VOCAB, embedding_dim=4)
    layer(IDS)
    out_layer = layer.gate.output_layer
    out_layer.kernel.assign(np.zeros(out_layer.kernel.shape, "float32"))
    out_layer.bias.assign([0.7])
    simple, complex_ = layer(IDS, training=False)
    h = layer.embedding(IDS)
    np.testing.assert_allclose(simple + complex_, h, atol=1e-7)
    g = 1 / (1 + np.exp(-0.7))
    np.testing.assert_allclose(simple, g * np.asarray(h), rtol=1e-5)


def test_mmoe_mixes_experts_with_softmax_gates():
    layer = MMoESampleSelector(VOCAB, embedding_dim=4)
    layer(IDS)
    for gate in layer.gates:  # zero logits -> uniform 0.5 / 0.5 gates
        gate.output_layer.kernel.assign(np.zeros(gate.output_layer.kernel.shape, "float32"))
    simple, complex_ = layer(IDS, training=False)
    flat = tf.reshape(layer.embedding(IDS), (4, 8))
    mean = (layer.experts[0](flat, training=False) + layer.experts[1](flat, training=False)) / 2
    np.testing.assert_allclose(simple, tf.reshape(mean, (4, 2, 4)), atol=1e-6)
    np.testing.assert_allclose(complex_, simple, atol=1e-6)


def test_registry_resolves_reference_names_and_rejects_typos():
    context = BuildContext(VOCAB, embedding_dim=4, seed=1)
    for name, cls in [
        ("SER", SeparateEmbeddingSelector),
        ("GM", GatedSampleSelector),
        ("MoE", MMoESampleSelector),
        ("none", SharedEmbeddingSelector),
    ]:
        variant = SELECTORS.get(name)
        assert type(variant.builder(context, **variant.defaults)) is cls
    with pytest.raises(ValueError, match="Valid choices: gate, mmoe, ser, shared"):
        SELECTORS.get("sre")


def test_registry_declares_each_selectors_hyperparameters_with_the_layers_defaults():
    assert SELECTORS.names() == ["ser", "gate", "mmoe", "shared"]
    assert dict(SELECTORS.get("ser").defaults) == {"simple_embedding_dim": None}
    assert dict(SELECTORS.get("mmoe").defaults) == {"num_experts": 2}
    assert MMoESampleSelector(VOCAB, 4).num_experts == 2


def test_ones_initializer_gives_literal_tables():
    simple, complex_ = SeparateEmbeddingSelector(VOCAB, 4, embeddings_initializer="ones")(IDS)
    np.testing.assert_array_equal(simple, np.ones((4, 2, 2)))
    np.testing.assert_array_equal(complex_, np.ones((4, 2, 4)))


def test_invalid_embedding_arguments_fail_at_construction():
    with pytest.raises(ValueError, match="embedding_dim"):
        SharedEmbeddingSelector(VOCAB, embedding_dim=0)
    with pytest.raises(ValueError, match="'z'"):
        GatedSampleSelector(VOCAB, 4, sequence_fields={"z": "mean"})


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda: MMoESampleSelector(VOCAB, 4, num_experts=1), "num_experts"),
        (
            lambda: SeparateEmbeddingSelector(VOCAB, 4, simple_embedding_dim=0),
            "simple_embedding_dim",
        ),
        (lambda: GatedSampleSelector(VOCAB, 4, dropout=-0.1), "dropout"),
    ],
)
def test_invalid_arguments(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


@pytest.mark.parametrize(
    "cls, kwargs, shapes, count",
    [
        # 5 ids * (4 + 2)
        (
            SeparateEmbeddingSelector,
            {"embedding_dim": 4, "embedding_l2": 0.1},
            [(4, 2, 2), (4, 2, 4)],
            30,
        ),
        (SharedEmbeddingSelector, {"embedding_dim": 4}, [(4, 2, 4), (4, 2, 4)], 20),
        # 20 + gate D=8 -> [2] (+BN) -> 1: 18 + 4 + 3
        (GatedSampleSelector, {"embedding_dim": 4, "dropout": 0.1}, [(4, 2, 4), (4, 2, 4)], 45),
        # 20 + 2 experts (8->4->8 with BN: 36+8+40+16) + 2 gates (8->2 +BN ->2: 18+4+6)
        (MMoESampleSelector, {"embedding_dim": 4}, [(4, 2, 4), (4, 2, 4)], 276),
    ],
)
def test_standard_checks(tmp_path, cls, kwargs, shapes, count):
    run_layer_test(
        cls,
        {"vocab_sizes": VOCAB, **kwargs},
        IDS,
        tmp_path,
        expected_output_shape=shapes,
        expected_num_trainable_params=count,
    )
