"""Dense numeric fields: ``e_f = x * v_f``, a missing value (NaN) ``e_f = m_f`` (FuxiCTR's
numeric embedding), in the embedding, the wide logit and every registered model."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.layer_checks import run_layer_test
from tf4ctr_keras import TF4CTR, TwinFocusLoss, build_model
from tf4ctr_keras.layers import FieldEmbedding, LinearLogit
from tf4ctr_keras.variants import MODELS

# Field order n, c, m: a numeric field before a categorical one checks the output order.
VOCAB = {"n": 2, "c": 3, "m": 2}
NUMERIC = ["n", "m"]
OFFSET = {"n": 0, "c": 2, "m": 5}
N = np.array([0.5, np.nan, -2.0, 0.0], "float32")
M = np.array([np.nan, 3.0, 1.5, np.nan], "float32")
C = np.array([0, 2, 1, 1], "int64")
TABLE = np.arange(14, dtype="float32").reshape(7, 2) - 6.0


def _inputs():
    return {"n": N.copy(), "c": C.copy(), "m": M.copy()}


def _embedding(**kwargs):
    layer = FieldEmbedding(VOCAB, 2, numeric_fields=NUMERIC, **kwargs)
    layer.build()
    layer.set_weights([TABLE])
    return layer


def _expected_numeric(values, offset, table):
    """Hand form: row ``offset`` (m_f) where missing, ``x * row offset + 1`` (x * v_f) else."""
    return np.stack([table[offset] if np.isnan(x) else x * table[offset + 1] for x in values])


# -- FieldEmbedding -----------------------------------------------------------------------------
def test_numeric_field_is_value_times_its_vector_and_missing_gets_its_own_vector():
    out = np.asarray(_embedding()(_inputs()))
    assert out.shape == (4, 3, 2)
    np.testing.assert_array_equal(out[:, 0], _expected_numeric(N, 0, TABLE))
    np.testing.assert_array_equal(out[:, 1], TABLE[2 + C])
    np.testing.assert_array_equal(out[:, 2], _expected_numeric(M, 5, TABLE))
    # Spelled out for two rows: n = 0.5 -> 0.5 * v_n; n = NaN -> m_n; m = 3 -> 3 * v_m.
    np.testing.assert_array_equal(out[0, 0], 0.5 * TABLE[1])
    np.testing.assert_array_equal(out[1, 0], TABLE[0])
    np.testing.assert_array_equal(out[1, 2], 3.0 * TABLE[6])


def test_numeric_field_takes_batch_by_one_inputs_and_float64():
    inputs = {"n": N[:, None].astype("float64"), "c": C[:, None], "m": M[:, None]}
    out = np.asarray(_embedding()(inputs))
    np.testing.assert_array_equal(out, np.asarray(_embedding()(_inputs())))


def test_embedding_gradient_is_value_on_v_upstream_on_m_and_finite_with_nan_inputs():
    layer = _embedding()
    upstream = np.random.default_rng(0).normal(size=(4, 3, 2)).astype("float32")
    with tf.GradientTape() as tape:
        out = layer(_inputs())
        loss = tf.reduce_sum(out * upstream)
    grad = np.asarray(tf.convert_to_tensor(tape.gradient(loss, layer.embeddings)))
    expected = np.zeros_like(TABLE)
    for b in range(4):
        for position, (name, values) in enumerate([("n", N), (None, None), ("m", M)]):
            if name is None:
                expected[2 + C[b]] += upstream[b, 1]
            elif np.isnan(values[b]):
                expected[OFFSET[name]] += upstream[b, position]  # d/dm = upstream
            else:
                expected[OFFSET[name] + 1] += values[b] * upstream[b, position]  # d/dv = x * up
    np.testing.assert_allclose(grad, expected, rtol=1e-6, atol=1e-6)
    assert np.isfinite(np.asarray(out)).all() and np.isfinite(grad).all()
    # A vector no row reads gets exactly zero: m_n when n is all present, v_m when m is all NaN.
    inputs = {**_inputs(), "n": np.array([0.5, 1.0, -2.0, 0.0], "float32")}
    inputs["m"] = np.full(4, np.nan, "float32")
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(inputs) * upstream)
    grad = np.asarray(tf.convert_to_tensor(tape.gradient(loss, layer.embeddings)))
    np.testing.assert_array_equal(grad[OFFSET["n"]], [0.0, 0.0])
    np.testing.assert_array_equal(grad[OFFSET["m"] + 1], [0.0, 0.0])
    np.testing.assert_allclose(grad[OFFSET["m"]], upstream[:, 2].sum(0), rtol=1e-6)


def test_numeric_value_one_equals_categorical_id_one_and_nan_equals_id_zero():
    # A numeric field is a 2-row field: x = 1 reads row 1 unscaled, NaN reads row 0.
    numeric = _embedding()
    categorical = FieldEmbedding(VOCAB, 2)
    categorical.build()
    categorical.set_weights([TABLE])
    x = np.array([1.0, np.nan, 1.0], "float32")
    got = numeric({"n": x, "c": np.array([1, 2, 0]), "m": x[::-1].copy()})
    ids = np.array([1, 0, 1])
    want = categorical({"n": ids, "c": np.array([1, 2, 0]), "m": ids[::-1].copy()})
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_embedding_l2_covers_the_numeric_rows():
    layer = _embedding(embedding_l2=0.1)
    layer(_inputs())
    assert layer.embeddings.shape == (7, 2)  # 2 + 3 + 2 rows: numeric rows are table rows
    expected = 0.05 * np.sum(TABLE.astype("float64") ** 2)
    np.testing.assert_allclose(float(sum(layer.losses)), expected, rtol=1e-6)


def test_numeric_fields_add_two_rows_of_d_parameters():
    plain = FieldEmbedding({"c": 3}, 4)
    with_numeric = FieldEmbedding({"c": 3, "n": 2}, 4, numeric_fields=["n"])
    plain.build()
    with_numeric.build()
    assert with_numeric.count_params() - plain.count_params() == 2 * 4


def test_embedding_config_round_trip_keeps_numeric_fields():
    layer = _embedding()
    config = layer.get_config()
    assert config["numeric_fields"] == NUMERIC
    clone = FieldEmbedding.from_config(config)
    clone.build()
    clone.set_weights([TABLE])
    assert clone.numeric_fields == NUMERIC
    np.testing.assert_array_equal(np.asarray(clone(_inputs())), np.asarray(layer(_inputs())))


def test_embedding_standard_checks_with_numeric_and_sequence_fields(tmp_path):
    vocab = {"c": 3, "n": 2, "s": 4}
    run_layer_test(
        FieldEmbedding,
        {
            "vocab_sizes": vocab,
            "embedding_dim": 2,
            "sequence_fields": {"s": "mean"},
            "numeric_fields": ["n"],
            "embedding_l2": 0.01,
        },
        {
            "c": np.array([0, 2, 1], "int64"),
            "n": np.array([0.5, np.nan, -1.0], "float32"),
            "s": np.array([[2, 3, 0], [0, 0, 0], [1, 2, 2]], "int64"),
        },
        tmp_path,
        expected_output_shape=(3, 3, 2),
        expected_num_trainable_params=(3 + 2 + 4) * 2,
        expected_num_trainable_weights=1,
        expected_num_non_trainable_weights=0,
    )


# -- LinearLogit --------------------------------------------------------------------------------
def test_linear_logit_is_w1_times_value_or_w0_when_missing():
    layer = LinearLogit(VOCAB, numeric_fields=NUMERIC)
    layer.build()
    w = np.array([[0.5], [2.0], [1.0], [-1.0], [3.0], [-4.0], [0.25]], "float32")
    layer.weights_embedding.embeddings.assign(w)
    layer.bias.assign([0.1])
    inputs = _inputs()
    out = np.asarray(layer(inputs))
    # Row by row, by hand: b + n-term + w_c[c] + m-term.
    expected = [
        0.1 + 0.5 * 2.0 + 1.0 + (-4.0),  # n = 0.5, c = 0, m missing
        0.1 + 0.5 + 3.0 + 3.0 * 0.25,  # n missing, c = 2, m = 3
        0.1 + (-2.0) * 2.0 + (-1.0) + 1.5 * 0.25,  # n = -2, c = 1, m = 1.5
        0.1 + 0.0 * 2.0 + (-1.0) + (-4.0),  # n = 0, c = 1, m missing
    ]
    assert out.shape == (4, 1) and out.dtype == "float32"
    np.testing.assert_allclose(out[:, 0], expected, rtol=1e-6)
    with tf.GradientTape() as tape:
        logit = tf.reduce_sum(layer(inputs))
    grad = np.asarray(
        tf.convert_to_tensor(tape.gradient(logit, layer.weights_embedding.embeddings))
    )
    # d/dw_n1 = sum of present n values = 0.5 - 2 + 0; d/dw_n0 = 1 missing row; m: 2 missing.
    np.testing.assert_allclose(grad[:, 0], [1.0, -1.5, 1.0, 2.0, 1.0, 2.0, 4.5], rtol=1e-6)


def test_linear_logit_adds_two_weights_per_numeric_field():
    plain = LinearLogit({"c": 3})
    with_numeric = LinearLogit({"c": 3, "n": 2}, numeric_fields=["n"])
    plain.build()
    with_numeric.build()
    assert with_numeric.count_params() - plain.count_params() == 2


def test_linear_logit_standard_checks_with_numeric_field(tmp_path):
    run_layer_test(
        LinearLogit,
        {"vocab_sizes": {"c": 3, "n": 2}, "numeric_fields": ["n"], "embedding_l2": 0.01},
        {"c": np.array([0, 2, 1], "int64"), "n": np.array([0.5, np.nan, -1.0], "float32")},
        tmp_path,
        expected_output_shape=(3, 1),
        expected_num_trainable_params=3 + 2 + 1,
        expected_num_trainable_weights=2,
        float32_output=True,
    )


# -- invalid arguments --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"vocab_sizes": {"c": 3, "n": 3}, "numeric_fields": ["n"]}, r"'n'.*must be 2.*3"),
        ({"vocab_sizes": {"c": 3}, "numeric_fields": ["z"]}, r"Numeric field 'z' is not in"),
        (
            {
                "vocab_sizes": {"c": 3, "n": 2},
                "numeric_fields": ["n"],
                "sequence_fields": {"n": "sum"},
            },
            r"'n' cannot be both.*'sum'",
        ),
        ({"vocab_sizes": {"c": 3, "n": 2}, "numeric_fields": "n"}, r"numeric_fields='n'"),
    ],
)
@pytest.mark.parametrize("layer_cls", [FieldEmbedding, LinearLogit])
def test_invalid_numeric_fields_are_rejected_with_the_value(layer_cls, kwargs, message):
    if layer_cls is FieldEmbedding:
        kwargs = {**kwargs, "embedding_dim": 2}
    with pytest.raises(ValueError, match=message):
        layer_cls(**kwargs)


def test_builders_reject_invalid_numeric_fields_at_build_time():
    with pytest.raises(ValueError, match=r"'n'.*must be 2.*5"):
        build_model("tf4ctr", {"c": 3, "n": 5}, numeric_fields=["n"])
    with pytest.raises(ValueError, match=r"Numeric field 'z'"):
        build_model("deepfm", {"c": 3}, numeric_fields=["z"])


# -- every model --------------------------------------------------------------------------------
MODEL_VOCAB = {"c": 5, "n": 2, "s": 4}
MODEL_FIELDS = dict(numeric_fields=["n"], sequence_fields={"s": "mean"})
TINY = dict(
    embedding_dim=4,
    simple_units=[8],
    complex_units=[8],
    cin_layer_sizes=[4],
    attention_dim=4,
    cross_layers=1,
)


def _tiny(name, vocab=MODEL_VOCAB, seed=3, **fields):
    defaults = MODELS.get(name).defaults
    kwargs = {k: v for k, v in TINY.items() if k in defaults}
    return build_model(name, vocab, seed=seed, **fields, **kwargs)


def _model_inputs(n=6, seed=0):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=n).astype("float32")
    values[::3] = np.nan
    return {
        "c": rng.integers(0, 5, n).astype("int64"),
        "n": values,
        "s": rng.integers(0, 4, (n, 3)).astype("int64"),
    }


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_takes_a_numeric_field_with_nan_and_round_trips(name, tmp_path):
    model = _tiny(name, **MODEL_FIELDS)
    x = _model_inputs()
    assert np.isnan(x["n"]).any()
    expected = model(x, training=False)
    for value in expected.values():
        assert np.isfinite(np.asarray(value)).all()
    clone = TF4CTR.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert clone.selector.numeric_fields == ["n"]
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.selector.numeric_fields == ["n"]
    got = loaded(x, training=False)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], atol=1e-6)


@pytest.mark.parametrize(
    "name, added",
    [
        # one shared table: 2 rows of d = 4; complex MLP's first kernel gains d inputs x 8 units
        ("dnn", 2 * 4 + 4 * 8),
        # plus LR's 2 weights
        ("widedeep", 2 * 4 + 4 * 8 + 2),
        ("deepfm", 2 * 4 + 4 * 8 + 2),
        # SER: tables of d = 4 and d // 2 = 2; complex kernel +4 x 8, simple kernel +2 x 8
        ("tf4ctr", 2 * 4 + 2 * 2 + 4 * 8 + 2 * 8),
    ],
)
def test_a_numeric_field_adds_exactly_its_two_rows_and_the_wider_first_kernels(name, added):
    def count(model):
        model.build()
        return int(sum(np.prod(w.shape) for w in model.trainable_weights))

    def tables(model):
        return int(
            sum(np.prod(w.shape) for w in model.trainable_weights if w.path.endswith("embeddings"))
        )

    without = _tiny(name, {"c": 5})
    with_numeric = _tiny(name, {"c": 5, "n": 2}, numeric_fields=["n"])
    assert count(with_numeric) - count(without) == added
    d_tables = {"dnn": 2 * 4, "widedeep": 2 * 4 + 2, "deepfm": 2 * 4 + 2, "tf4ctr": 2 * 4 + 2 * 2}
    assert tables(with_numeric) - tables(without) == d_tables[name]


@pytest.mark.parametrize("name", ["tf4ctr", "deepfm"])
def test_numeric_field_draws_the_same_weights_as_a_two_row_categorical_field(name):
    # Same table shape, same seeds: identical initial weights; x = 1 / NaN equal ids 1 / 0.
    numeric = _tiny(name, **MODEL_FIELDS)
    categorical = _tiny(name, sequence_fields={"s": "mean"})
    numeric.build()
    categorical.build()
    for a, b in zip(numeric.weights, categorical.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    x = _model_inputs()
    ids = np.where(np.isnan(x["n"]), 0, 1).astype("int64")
    x["n"] = np.where(np.isnan(x["n"]), np.nan, 1.0).astype("float32")
    got, want = numeric(x, training=False), categorical({**x, "n": ids}, training=False)
    for key in want:
        np.testing.assert_array_equal(np.asarray(got[key]), np.asarray(want[key]))


def _compile_and_train(model, x, jit_compile=False):
    y = (np.arange(len(x["c"])) % 2).astype("float32")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss={"ctr": "binary_crossentropy", "twin_logits": TwinFocusLoss()},
        jit_compile=jit_compile,
    )
    return model.train_on_batch(x, {"ctr": y, "twin_logits": y}, return_dict=True)


@pytest.mark.parametrize("selector", ["ser", "gate", "mmoe"])
def test_mixed_float16_model_with_numeric_field_is_finite(selector):
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        model = build_model(
            "tf4ctr", MODEL_VOCAB, selector=selector, seed=1, **MODEL_FIELDS, **TINY
        )
        x = _model_inputs(8)
        out = model(x, training=False)
        for value in out.values():
            assert value.dtype == "float32"
            assert np.isfinite(np.asarray(value)).all()
        assert model.selector.compute_dtype == "float16"
        logs = _compile_and_train(model, x)
        assert np.isfinite(logs["loss"])
        assert all(np.isfinite(np.asarray(w)).all() for w in model.trainable_weights)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert keras.mixed_precision.dtype_policy().name == "float32"


def test_jit_compiled_train_step_updates_the_numeric_rows_without_nan():
    model = build_model("tf4ctr", MODEL_VOCAB, selector="shared", seed=1, **MODEL_FIELDS, **TINY)
    model.build()
    table = model.selector.embedding.embeddings
    before = np.asarray(table).copy()
    x = _model_inputs(8)
    logs = _compile_and_train(model, x, jit_compile=True)
    assert np.isfinite(logs["loss"])
    after = np.asarray(table)
    assert np.isfinite(after).all()
    # Rows 5 (m_n) and 6 (v_n): the batch has missing and present values, so both move.
    assert not np.allclose(after[5], before[5]) and not np.allclose(after[6], before[6])
    assert all(np.isfinite(np.asarray(w)).all() for w in model.trainable_weights)
