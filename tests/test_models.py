import keras
import numpy as np
import pytest

from tf4ctr_keras import TF4CTR, TwinFocusLoss, build_model, build_tf4ctr
from tf4ctr_keras.layers import SumFusion
from tf4ctr_keras.metrics import auc

FRAPPE = dict(
    user=942,
    item=4084,
    daytime=9,
    weekday=9,
    isweekend=4,
    homework=5,
    cost=4,
    weather=11,
    country=82,
    city=233,
)
ML1M = dict(UserID=6042, Gender=4, Age=9, Occupation=23, MovieID=3548)
MLTAG = dict(user_id=16362, item_id=22575, tag_id=49659)
KKBOX = dict(
    msno=29506,
    song_id=172297,
    source_system_tab=10,
    source_screen_name=22,
    source_type=14,
    city=23,
    gender=4,
    registered_via=7,
    language=12,
    genre_ids=483,
    artist_name=25369,
    isrc=97,
    bd=9,
)
KKBOX_SEQ = {"genre_ids": "mean", "artist_name": "mean"}
ALL_MODELS = [
    "tf4ctr",
    "dnn",
    "dualmlp",
    "widedeep",
    "deepfm",
    "dcn",
    "dcnv2",
    "xdeepfm",
    "autoint",
]
SMALL = dict(a=7, b=5, c=11)


def count(model) -> int:
    model.build()
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


@pytest.mark.parametrize(
    "vocab, kwargs, expected",
    [
        (FRAPPE, dict(simple_units=[400, 400]), 711_996),  # Frappe SER+WSF (log 121)
        (ML1M, dict(simple_units=[400]), 604_628),  # ML-1M SER+WSF (log 021)
        (MLTAG, dict(simple_units=[400, 400]), 2_641_908),  # ML-tag SER+WSF (log 221)
        (KKBOX, dict(fusion="moef", sequence_fields=KKBOX_SEQ), 6_083_278),  # KKBox SER+MoEF
        (FRAPPE, dict(selector="shared", simple_units=[400]), 539_732),  # v1 DualMLP+TF loss
        (FRAPPE, dict(simple_encoder="fm"), 522_581),  # TF4CTRv2_DeepFM (log 022)
    ],
)
def test_trainable_parameters_equal_the_reference_logs(vocab, kwargs, expected):
    assert count(build_tf4ctr(vocab, **kwargs)) == expected


V_FRAPPE, F_FRAPPE, D = sum(FRAPPE.values()), len(FRAPPE), 16


def _tower(widths):
    """A FuxiCTR MLP_Block's count: Linear(bias) per layer, BatchNorm gamma/beta per hidden."""
    linear = sum(a * b + b for a, b in zip(widths[:-1], widths[1:], strict=True))
    return linear + 2 * sum(widths[1:-1])


def test_tf4ctr_widedeep_has_the_reference_structure_and_no_unused_table():
    # TF4CTRv2_WideDeep.py: one d-wide table (its SSM is ignored), LR without bias as z_s under
    # WSF (no fc1), the deep tower with fc2, the 2x1 WSF weights (issue 17: SER's d/2 table was
    # built, regularised and counted for nothing: 522,578 on this vocabulary).
    expected = V_FRAPPE * D + V_FRAPPE + _tower([F_FRAPPE * D, 400, 400, 400, 1]) + 2
    assert expected == 479_514
    model = build_tf4ctr(FRAPPE, simple_encoder="linear")
    assert count(model) == expected
    assert type(model.selector).__name__ == "SharedEmbeddingSelector"
    # a selector that transforms the embedding keeps its meaning and is kept
    gated = build_tf4ctr(FRAPPE, simple_encoder="linear", selector="gate")
    assert type(gated.selector).__name__ == "GatedSampleSelector"


def test_autoint_plus_count_equals_fuxictr_autoint_with_a_dnn():
    # FuxiCTR AutoInt(use_wide=False): 3 layers of W_q, W_k, W_v (16 x 16, no W_res since the
    # widths match), fc Linear(F * 16, 1), dnn MLP_Block(F d -> [400] * 3 -> 1).
    attention = 3 * 3 * D * D
    expected = V_FRAPPE * D + attention + (F_FRAPPE * D + 1) + _tower([160, 400, 400, 400, 1])
    assert expected == 476_594
    model = build_model("autoint", FRAPPE)
    assert count(model) == expected
    assert model.simple_encoder.dropout == 0.0
    assert build_model("autoint", SMALL, dropout=0.2).simple_encoder.dropout == 0.2


def test_wide_logit_sum_pools_a_hand_made_sequence():
    # FuxiCTR's LogisticRegression: 1-dim embeddings, MaskedSumPooling on sequence fields
    # (issue 17: it mean-pooled them), while the deep tables keep the model's pooling.
    vocab = {"user": 4, "genres": 6}
    for name in ("widedeep", "deepfm", "xdeepfm"):
        model = build_model(name, vocab, embedding_dim=2, complex_units=[4],
                            sequence_fields={"genres": "mean"}, cin_layer_sizes=[2])  # fmt: skip
        model.build()
        assert model.wide.sequence_fields == {"genres": "sum"}
        assert model.selector.sequence_fields == {"genres": "mean"}
        table = model.wide.weights_embedding.embeddings
        table.assign(np.arange(10, dtype="float32")[:, None])  # rows: user 0-3, genres 4-9
        x = {"user": np.array([1]), "genres": np.array([[2, 3, 5, 0]])}  # tokens 2, 3, 5; padding
        bias = float(np.asarray(model.wide.bias)[0]) if model.wide.bias is not None else 0.0
        # user 1 -> row 1; genres -> rows 4 + 2, 4 + 3, 4 + 5 summed: 6 + 7 + 9
        np.testing.assert_allclose(np.asarray(model.wide(x)), [[1.0 + 22.0 + bias]], rtol=1e-6)


@pytest.mark.parametrize("name", ["tf4ctr", "widedeep", "dnn"])
def test_an_id_outside_its_field_is_refused_not_read_from_the_next_field(name):
    import tensorflow as tf

    model = build_model(name, SMALL, embedding_dim=4, complex_units=[4])
    x = _ids(SMALL, 4)
    model(x)
    for field, bad in (("a", 7), ("b", -1), ("c", 11)):
        with pytest.raises(tf.errors.InvalidArgumentError, match="outside \\[0, vocab_size\\)"):
            model({**x, field: np.array([bad, 0, 0, 0])})
    model.compile("adam", loss={"ctr": "binary_crossentropy", "twin_logits": TwinFocusLoss()}
                  if name == "tf4ctr" else {"ctr": "binary_crossentropy"})  # fmt: skip
    with pytest.raises(tf.errors.InvalidArgumentError, match="largest and smallest id"):
        model.predict({**x, "a": np.array([0, 9, 0, 0])}, verbose=0)


def test_criteo_parameter_count_equals_the_reference_log():
    # Criteo_x4 SER+WSF (log 026): 39 fields, 910,747 ids in total.
    sizes = [900_000 // 26] * 25 + [900_000 - 25 * (900_000 // 26)] + [827] * 13
    sizes[-1] += 910_747 - sum(sizes)
    vocab = {f"f{i}": s for i, s in enumerate(sizes)}
    assert count(build_tf4ctr(vocab)) == 22_719_132


def test_dnn_count_matches_the_authors_run_on_our_frappe():
    # tf4ctr_reference.md section 9: 473,921 with the rebuilt train's 13 fewer ids.
    vocab = dict(FRAPPE, item=FRAPPE["item"] - 13)
    assert count(build_model("dnn", vocab)) == 473_921


def _ids(vocab, n, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.integers(0, v, size=n).astype("int64") for k, v in vocab.items()}


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_outputs_are_named_and_ctr_is_the_fused_twin_logits():
    model = build_tf4ctr(SMALL, simple_units=[8], complex_units=[8], embedding_dim=4)
    out = model(_ids(SMALL, 16), training=False)
    assert set(out) == {"ctr", "twin_logits"}
    assert out["ctr"].shape == (16, 1) and out["twin_logits"].shape == (16, 2)
    z = np.asarray(out["twin_logits"])
    np.testing.assert_allclose(out["ctr"], _sigmoid(0.5 * z[:, :1] + 0.5 * z[:, 1:]), rtol=1e-5)
    model = build_tf4ctr(SMALL, fusion="sum", simple_units=[8], complex_units=[8])
    out = model(_ids(SMALL, 16), training=False)
    z = np.asarray(out["twin_logits"])
    np.testing.assert_allclose(out["ctr"], _sigmoid(z.sum(1, keepdims=True)), rtol=1e-5)


def test_compiled_objective_is_bce_plus_twin_focus_plus_embedding_l2():
    model = build_tf4ctr(
        SMALL, simple_units=[8], complex_units=[8], embedding_dim=4, embedding_l2=0.1, dropout=0.2
    )
    x = _ids(SMALL, 32)
    y = (np.arange(32) % 3 == 0).astype("float32")
    loss = TwinFocusLoss(alpha=0.25, c=0.7, gamma=1.0)
    model.compile(
        optimizer="adam", loss={"ctr": keras.losses.BinaryCrossentropy(), "twin_logits": loss}
    )
    total = model.evaluate(
        x, {"ctr": y, "twin_logits": y}, batch_size=32, verbose=0, return_dict=True
    )["loss"]
    out = model(x, training=False)
    p = np.clip(np.asarray(out["ctr"])[:, 0].astype(np.float64), 1e-7, 1 - 1e-7)
    bce = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    tf_term = float(loss(y, out["twin_logits"]))
    tables = [w for w in model.trainable_weights if w.path.endswith("embeddings")]
    reg = sum(0.05 * np.sum(np.square(np.asarray(t, np.float64))) for t in tables)
    np.testing.assert_allclose(total, bce + tf_term + reg, rtol=1e-5)


def _small(name, **kw):
    return build_model(name, SMALL, embedding_dim=4, complex_units=[8, 8], seed=3, **kw)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_model_round_trips_through_config_and_keras_file(name, tmp_path):
    model = _small(name)
    x = _ids(SMALL, 8)
    expected = model(x, training=False)
    clone = TF4CTR.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded, TF4CTR)
    got = loaded(x, training=False)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], atol=1e-6)


@pytest.mark.parametrize("selector", ["ser", "gate", "mmoe", "shared"])
@pytest.mark.parametrize("fusion", ["wsf", "vf", "cf", "moef", "sum"])
def test_every_selector_fusion_pair_fits_one_step(selector, fusion):
    model = build_tf4ctr(
        SMALL,
        selector=selector,
        fusion=fusion,
        simple_units=[8],
        complex_units=[8],
        embedding_dim=4,
        dropout=0.1,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss={"ctr": "binary_crossentropy", "twin_logits": TwinFocusLoss()},
    )
    x = _ids(SMALL, 32)
    y = (x["a"] > 3).astype("float32")
    model.build()
    before = [np.array(w) for w in model.trainable_weights]
    hist = model.fit(x, {"ctr": y, "twin_logits": y}, batch_size=32, epochs=1, verbose=0)
    assert np.isfinite(hist.history["loss"][0])
    changed = [
        not np.allclose(a, np.array(b))
        for a, b in zip(before, model.trainable_weights, strict=True)
    ]
    assert all(changed)


@pytest.mark.parametrize("encoder", ["fm", "linear", "cin", "cross", "cross_v2", "attention"])
def test_baseline_encoders_plug_into_tf4ctr_as_simple_side(encoder):
    model = build_tf4ctr(
        SMALL,
        simple_encoder=encoder,
        complex_units=[8],
        embedding_dim=4,
        cin_layer_sizes=[4],
        attention_dim=4,
    )
    out = model(_ids(SMALL, 8))
    assert out["twin_logits"].shape == (8, 2)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", ["tf4ctr", "deepfm", "xdeepfm", "dcnv2", "autoint"])
def test_mixed_precision_keeps_head_and_loss_in_float32(policy, name):
    keras.mixed_precision.set_dtype_policy(policy)
    model = _small(name, **({"twin_output": True} if name in ("deepfm", "xdeepfm") else {}))
    x = _ids(SMALL, 16)
    out = model(x, training=False)
    assert all(v.dtype == "float32" for v in out.values())
    losses = {"ctr": "binary_crossentropy"}
    if "twin_logits" in out:
        losses["twin_logits"] = TwinFocusLoss()
    model.compile(optimizer="adam", loss=losses)
    y = (x["a"] > 3).astype("float32")
    hist = model.fit(x, {k: y for k in losses}, epochs=1, verbose=0)
    assert np.isfinite(hist.history["loss"][0])
    assert all(w.dtype == "float32" for w in model.trainable_weights)


def test_unknown_names_list_the_valid_choices():
    with pytest.raises(ValueError, match="Valid choices: afn, autoint, cl4ctr, dcn, dcnv2, deepfm"):
        build_model("deepfn", SMALL)
    with pytest.raises(ValueError, match="Unknown fusion `wfs`"):
        build_tf4ctr(SMALL, fusion="wfs")
    with pytest.raises(ValueError, match="Unknown simple encoder"):
        build_tf4ctr(SMALL, simple_encoder="gbdt")
    with pytest.raises(TypeError, match="Unknown model options \\['cross_layer'\\]"):
        build_tf4ctr(SMALL, cross_layer=2)


def test_invalid_compositions_are_rejected():
    with pytest.raises(TypeError, match="Unknown model options \\['twin_output'\\]"):
        build_model("dnn", SMALL, twin_output=True)  # one tower: no twin logits
    model = build_tf4ctr(SMALL)
    with pytest.raises(ValueError, match="needs a fusion layer"):
        TF4CTR(model.selector, model.complex_encoder, simple_encoder=model.simple_encoder)
    with pytest.raises(TypeError, match="sample selection layer"):
        TF4CTR(model.complex_encoder, model.complex_encoder)


def test_dcn_twin_logits_are_aux_heads_beside_the_concat_fusion():
    """DCN + TF loss (paper Table II): z_s and z_c come from heads on each tower; the fused
    logit is still the concatenation's, so the ctr output equals the plain DCN's."""
    model = build_model("dcn", SMALL, complex_units=[4], twin_output=True, seed=3)
    x = _ids(SMALL, 5)
    out = model(x)
    e_s, e_c = model.selector(x)
    h_s = model.simple_encoder(e_s)
    h_c = model.complex_encoder(e_c)
    np.testing.assert_allclose(
        out["twin_logits"],
        np.concatenate([model.simple_logit(h_s), model.complex_logit(h_c)], axis=-1),
        rtol=1e-5,
        atol=1e-6,
    )
    fused = model.fusion.output_layer(np.concatenate([h_s, h_c], axis=-1))
    np.testing.assert_allclose(out["ctr"], 1 / (1 + np.exp(-np.asarray(fused))), rtol=1e-5)
    plain = build_model("dcn", SMALL, complex_units=[4], seed=3)
    plain(x)
    extra = sum(int(np.prod(w.shape)) for w in model.trainable_weights) - sum(
        int(np.prod(w.shape)) for w in plain.trainable_weights
    )
    assert extra == (h_s.shape[-1] + 1) + (h_c.shape[-1] + 1)  # the two Dense(1) heads


def test_missing_input_field_is_named():
    model = build_model("dnn", SMALL, complex_units=[4])
    x = _ids(SMALL, 4)
    del x["b"]
    with pytest.raises(KeyError, match="'b'"):
        model(x)


def _learnable(n, seed):
    """Labels are a known function of the ids: an additive part and one pairwise interaction."""
    rng = np.random.default_rng(seed)
    vocab = {"u": 50, "i": 40, "ctx": 6, "noise": 30}
    x = {k: rng.integers(0, v, n).astype("int64") for k, v in vocab.items()}
    table = np.random.default_rng(99)
    w_u, w_i = table.normal(size=50), table.normal(size=40)
    v_u, v_i = table.normal(size=(50, 3)), table.normal(size=(40, 3))
    score = w_u[x["u"]] + w_i[x["i"]] + 1.5 * np.sum(v_u[x["u"]] * v_i[x["i"]], 1)
    score += np.where(x["ctx"] % 2 == 0, 1.0, -1.0)
    y = (score > 0).astype("float32")
    return vocab, x, y


@pytest.mark.slow
def test_tf4ctr_learns_a_known_function_to_high_auc():
    vocab, x, y = _learnable(20000, seed=0)
    _, x_test, y_test = _learnable(4000, seed=1)
    model = build_tf4ctr(vocab, simple_units=[64], complex_units=[64, 64], embedding_dim=8, seed=0)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3, global_clipnorm=10),
        loss={
            "ctr": "binary_crossentropy",
            "twin_logits": TwinFocusLoss(alpha=0.25, c=0.8, gamma=2.0),
        },
    )
    model.fit(x, {"ctr": y, "twin_logits": y}, batch_size=256, epochs=6, verbose=0)
    pred = model.predict(x_test, batch_size=4000, verbose=0)["ctr"]
    assert auc(y_test, pred) > 0.95


class _HalfSum(keras.layers.Layer):
    """A fusion that subclasses no package class: z = (z_s + z_c) / 2."""

    def call(self, inputs):
        return (inputs[2] + inputs[3]) / 2.0


def test_tf4ctr_takes_any_layer_with_the_fusion_call():
    base = build_tf4ctr(SMALL, simple_units=[4], complex_units=[4], embedding_dim=4, seed=1)
    model = TF4CTR(
        base.selector, base.complex_encoder, simple_encoder=base.simple_encoder, fusion=_HalfSum()
    )
    out = model(_ids(SMALL, 6), training=False)
    z = np.asarray(out["twin_logits"])
    np.testing.assert_allclose(out["ctr"], _sigmoid(z.mean(1, keepdims=True)), rtol=1e-5)


def test_parts_lacking_the_contract_are_named():
    model = build_tf4ctr(SMALL)
    with pytest.raises(TypeError, match="MLPBlock lacks \\['vocab_sizes'\\]"):
        TF4CTR(model.complex_encoder, model.complex_encoder)
    with pytest.raises(TypeError, match="`wide` must be a layer"):
        TF4CTR(model.selector, model.complex_encoder, wide=lambda ids: ids, fusion=SumFusion())


def test_part_hyperparameters_reach_only_the_parts_that_declare_them():
    # SER's simple width is an error elsewhere (it would be ignored) ...
    with pytest.raises(ValueError, match="`simple_embedding_dim` applies to the SER"):
        build_tf4ctr(SMALL, selector="gate", simple_embedding_dim=4)
    # ... while shared settings with a default are ignored by the parts that do not use them.
    model = build_tf4ctr(SMALL, selector="ser", fusion="wsf", num_experts=3, temperature=0.5)
    assert model.selector.simple_embedding_dim == 8
    model = build_tf4ctr(SMALL, selector="mmoe", fusion="moef", num_experts=3)
    assert model.selector.num_experts == 3 and model.fusion.num_experts == 3
