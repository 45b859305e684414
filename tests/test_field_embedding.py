import keras
import numpy as np
import pytest

from tests.layer_checks import run_layer_test
from tf4ctr_keras.layers import FieldEmbedding

VOCAB = {"a": 3, "s": 4, "b": 2}


def _inputs():
    return {
        "a": np.array([0, 2, 1], dtype="int64"),
        "s": np.array([[2, 3, 0], [0, 0, 0], [1, 2, 2]], dtype="int64"),
        "b": np.array([1, 0, 1], dtype="int64"),
    }


def _layer(combiner="mean", **kwargs):
    layer = FieldEmbedding(VOCAB, 2, sequence_fields={"s": combiner}, **kwargs)
    layer.build()
    layer.embeddings.assign(np.arange(18, dtype="float32").reshape(9, 2))
    return layer


def test_lookup_uses_per_field_offsets_and_keeps_field_order():
    out = np.asarray(_layer()(_inputs()))
    table = np.arange(18, dtype="float32").reshape(9, 2)
    # field a: rows 0..2, field s: rows 3..6, field b: rows 7..8
    np.testing.assert_allclose(out[:, 0], table[[0, 2, 1]])
    np.testing.assert_allclose(out[:, 2], table[[7 + 1, 7 + 0, 7 + 1]])


def test_sequence_mean_pooling_masks_padding_id_zero():
    out = np.asarray(_layer("mean")(_inputs()))
    table = np.arange(18, dtype="float32").reshape(9, 2)
    np.testing.assert_allclose(out[0, 1], (table[3 + 2] + table[3 + 3]) / 2)
    np.testing.assert_allclose(out[1, 1], [0.0, 0.0])  # all padding -> zero vector
    np.testing.assert_allclose(out[2, 1], (table[4] + 2 * table[5]) / 3)


def test_sequence_sum_pooling():
    out = np.asarray(_layer("sum")(_inputs()))
    table = np.arange(18, dtype="float32").reshape(9, 2)
    np.testing.assert_allclose(out[2, 1], table[4] + 2 * table[5])


def test_l2_penalty_is_half_lambda_times_squared_norm_of_whole_table():
    layer = _layer(embedding_l2=0.1)
    layer(_inputs())
    expected = 0.05 * np.sum(np.arange(18, dtype="float64") ** 2)
    np.testing.assert_allclose(float(sum(layer.losses)), expected, rtol=1e-6)


def test_initializer_is_normal_with_std_1e4():
    layer = FieldEmbedding({"x": 20000}, 16, seed=3)
    layer.build()
    values = np.asarray(layer.embeddings)
    assert abs(values.std() - 1e-4) < 2e-6
    assert abs(values.mean()) < 2e-6


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"vocab_sizes": {}, "embedding_dim": 4}, "non-empty mapping"),
        ({"vocab_sizes": {"a": 0}, "embedding_dim": 4}, "vocab_sizes\\['a'\\]"),
        ({"vocab_sizes": {"a": 3}, "embedding_dim": 0}, "embedding_dim"),
        ({"vocab_sizes": {"a": 3}, "embedding_dim": 4, "sequence_fields": {"z": "mean"}}, "'z'"),
        ({"vocab_sizes": {"a": 3}, "embedding_dim": 4, "sequence_fields": {"a": "max"}}, "max"),
        ({"vocab_sizes": {"a": 3}, "embedding_dim": 4, "embedding_l2": -1.0}, "embedding_l2"),
    ],
)
def test_invalid_arguments_are_rejected_with_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FieldEmbedding(**kwargs)


def test_missing_field_names_the_field():
    layer = FieldEmbedding({"a": 3, "b": 2}, 2)
    with pytest.raises(KeyError, match="'b'"):
        layer({"a": np.array([1])})


def test_literal_values_with_ones_initializer():
    layer = FieldEmbedding(VOCAB, 2, sequence_fields={"s": "sum"}, embeddings_initializer="ones")
    out = np.asarray(layer(_inputs()))
    # categorical fields: one row of ones; s sums its non-padding ids: 2, 0 and 3 of them
    np.testing.assert_array_equal(out[:, 0], np.ones((3, 2)))
    np.testing.assert_array_equal(out[:, 1], [[2, 2], [0, 0], [3, 3]])
    np.testing.assert_array_equal(out[:, 2], np.ones((3, 2)))


def test_standard_checks(tmp_path):
    run_layer_test(
        FieldEmbedding,
        {
            "vocab_sizes": VOCAB,
            "embedding_dim": 2,
            "sequence_fields": {"s": "mean"},
            "embedding_l2": 0.01,
        },
        _inputs(),
        tmp_path,
        expected_output_shape=(3, 3, 2),
        expected_num_trainable_params=18,
        expected_num_trainable_weights=1,
        expected_num_non_trainable_weights=0,
    )


def test_weights_are_float32_and_output_follows_the_policy():
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    layer = FieldEmbedding(VOCAB, 2, sequence_fields={"s": "mean"})
    assert layer(_inputs()).dtype == "bfloat16"
    assert layer.embeddings.dtype == "float32"


@pytest.mark.parametrize(
    "shape_dtype",
    [
        ("rank1", "int64", "int64"),  # one stack, one cast
        ("rank2", "int64", "int64"),  # one concatenation, one cast
        ("rank2", "int32", "int64"),  # mixed dtypes: a cast and a reshape per field
        ("mixed", "int64", "int64"),  # (batch,) beside (batch, 1): per field
    ],
)
def test_every_input_layout_reads_the_same_rows(shape_dtype):
    layout, dtype_a, dtype_b = shape_dtype
    a, b = np.array([0, 2, 1], dtype=dtype_a), np.array([1, 0, 1], dtype=dtype_b)
    if layout in ("rank2", "mixed"):
        a = a[:, None]
    if layout == "rank2":
        b = b[:, None]
    layer = FieldEmbedding({"a": 3, "b": 2}, 2)
    layer.build()
    layer.embeddings.assign(np.arange(10, dtype="float32").reshape(5, 2))
    out = np.asarray(layer({"a": a, "b": b}))
    table = np.arange(10, dtype="float32").reshape(5, 2)
    np.testing.assert_array_equal(out[:, 0], table[[0, 2, 1]])
    np.testing.assert_array_equal(out[:, 1], table[[3 + 1, 3 + 0, 3 + 1]])


def test_the_ids_of_many_fields_take_two_ops_in_a_graph():
    import tensorflow as tf

    vocab = {f"f{i}": 5 for i in range(39)}
    layer = FieldEmbedding(vocab, 4)
    layer.build()
    spec = {n: tf.TensorSpec((None, 1), tf.int64, name=n) for n in vocab}
    graph = tf.function(layer._categorical_ids).get_concrete_function(spec).graph
    kinds = [op.type for op in graph.get_operations() if op.type not in ("Placeholder", "Identity")]
    assert sorted(kinds) == ["Cast", "ConcatV2", "Const"]  # the Const is the concat axis
