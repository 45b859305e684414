"""The Table IV baselines beyond the parallel ones: AFN+, EDCN, CL4CTR and EulerNet.

Parameter counts equal FuxiCTR's structure on the same vocabulary (each formula below is read
off the layer shapes of ``model_zoo/<Model>/src/<Model>.py``; PyTorch counts BatchNorm's gamma
and beta only, as the trainable weights here); each layer's maths equals a direct NumPy
transcription on tiny inputs; every model round-trips through ``.keras`` and fits a step."""

import math

import keras
import numpy as np
import pytest

from tests.layer_checks import run_layer_test
from tests.test_models import FRAPPE
from tf4ctr_keras import TF4CTR, TwinFocusLoss, build_model
from tf4ctr_keras.layers import (
    AdaptiveFactorizationNetwork,
    ContrastiveRegularization,
    EnhancedCrossNetwork,
    EulerInteraction,
)
from tf4ctr_keras.layers.contrastive_regularization import contrastive_losses
from tf4ctr_keras.variants import MODELS

V, F, D = sum(FRAPPE.values()), len(FRAPPE), 16  # 5,383 ids, 10 fields, d = 16
NEW = ["afn", "edcn", "cl4ctr", "eulernet"]
SMALL = dict(a=7, b=5, c=11)
RNG = np.random.default_rng(0)


def count(model) -> int:
    model.build()
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def mlp(widths: list[int], batch_norm: bool = True) -> int:
    """FuxiCTR ``MLP_Block`` over ``widths = [input, hidden..., output]``: Linear(bias) per
    layer, BatchNorm1d (gamma, beta) after every hidden one."""
    hidden = widths[1:-1] if len(widths) > 2 else []
    linear = sum(a * b + b for a, b in zip(widths[:-1], widths[1:], strict=True))
    return linear + (2 * sum(hidden) if batch_norm else 0)


# -- parameter counts: FuxiCTR's structure, the study's Frappe settings -------------------------
def test_afn_plus_count_equals_fuxictr_afn_with_its_dnn_ensemble():
    neurons, afn, dnn = 1200, [400, 400, 400], [400, 400, 400]
    expected = (
        2 * V * D  # embedding_layer and embedding_layer2
        + F * neurons  # coefficient_W: Linear(F, L, bias=False)
        + 2 * F  # log_batch_norm: BatchNorm1d(F)
        + 2 * neurons  # exp_batch_norm: BatchNorm1d(L)
        + mlp([D * neurons, *afn, 1])  # dense_layer: MLP_Block(d L -> afn -> 1)
        + mlp([F * D, *dnn, 1])  # dnn: MLP_Block(F d -> dnn -> 1)
        + 2 * 1
        + 1  # fc: Linear(2, 1)
    )
    assert expected == 8_578_681
    assert count(build_model("afn", FRAPPE)) == expected
    assert count(build_model("afn+", FRAPPE, twin_output=True)) == expected  # same weights


@pytest.mark.parametrize("batch_norm", [True, False])
def test_edcn_count_equals_fuxictr_edcn(batch_norm):
    h, layers = F * D, 3
    expected = (
        V * D
        + layers * (h * h + h)  # dense_layers: MLP_Block(h -> [h]), no BatchNorm
        + layers * (h + h)  # cross_layers: CrossInteraction(h): Linear(h, 1, no bias) + bias
        + layers * 2 * F  # regulation_modules: g1, g2 (one per layer, the last unused)
        + (layers * 2 * 2 * h if batch_norm else 0)  # their bn1, bn2: BatchNorm1d(h)
        + 3 * h
        + 1  # fc: Linear(3 h, 1)
    )
    assert count(build_model("edcn", FRAPPE, batch_norm=batch_norm)) == expected
    if batch_norm:
        assert expected == 166_829


def test_cl4ctr_count_equals_the_authors_fuxictr_cl4ctr():
    # salmon1802/CETN CL4CTR_torch/src/CL4CTR.py (FuxiCTR has none)
    h, hidden, fi = F * D, [400, 400, 400], [400, 400, 400]
    expected = (
        V * D
        + mlp([h, *hidden, 1])  # mlp_prediction
        + mlp([h, *fi, h])  # FI_encoder: MLP_Block(h -> FI_encode_units -> h)
        + 2 * (h * D + D)  # projector1, projector2: Linear(h, d)
    )
    assert expected == 931_041
    assert count(build_model("cl4ctr", FRAPPE)) == expected


@pytest.mark.parametrize("orders", [[20], [10, 10, 10]])
def test_eulernet_count_equals_fuxictr_eulernet(orders):
    def layer(f_in, f_out):
        return (
            f_in * f_out  # inter_orders
            + (f_in * D) * (f_out * D)
            + f_out * D  # im: Linear(f_in d, f_out d)
            + 2 * D * f_out  # bias_lam, bias_theta: (1, d, f_out)
            + 2 * 2 * D  # norm_r, norm_p: LayerNorm(d), built whether used or not
        )

    fields = [F, *orders]
    expected = (
        V * D
        + F  # mu: (1, F, 1)
        + sum(layer(a, b) for a, b in zip(fields[:-1], fields[1:], strict=True))
        + orders[-1] * D
        + 1  # reg: Linear(shape_list[-1], 1)
    )
    if orders == [20]:  # FuxiCTR's EulerNet_default
        assert expected == 138_883
    assert count(build_model("eulernet", FRAPPE, euler_orders=orders)) == expected


# -- the layers' maths --------------------------------------------------------------------------
X = RNG.normal(size=(4, 3, 2)).astype("float32")  # (batch, fields, dim)


S = math.sqrt(1.0 + 1e-5)  # an inference BatchNorm at its initial state divides by this


def test_afn_is_exp_of_weighted_logs_of_the_absolute_embedding():
    layer = AdaptiveFactorizationNetwork(4, [5], batch_norm=False, seed=1)
    out = np.asarray(layer(X, training=False))
    w = np.asarray(layer.coefficients)  # (fields, neurons)
    logs = np.log(np.maximum(np.abs(X), 1e-5)) / S
    crossed = np.exp(np.einsum("bfd,fn->bnd", logs, w)) / S
    dense = layer.mlp.dense_layers[0]
    expected = np.maximum(crossed.reshape(4, -1) @ np.asarray(dense.kernel) + dense.bias, 0)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-6)


def test_afn_neuron_with_unit_weights_multiplies_the_fields_magnitudes():
    # y = prod_f |e_f|^w_f: with w = 1, per dimension |2 * 3 * 0.5| = 3 and |1 * -0.5 * 4| = 2
    # (each BatchNorm at its initial state divides by S: the exponent 1 / S, then 1 / S).
    layer = AdaptiveFactorizationNetwork(1, [2], batch_norm=False, kernel_initializer="ones")
    x = np.array([[[2.0, 1.0], [3.0, -0.5], [0.5, 4.0]]], "float32")
    out = np.asarray(layer(x, training=False))
    crossed = np.array([[3.0 ** (1 / S) / S, 2.0 ** (1 / S) / S]])
    dense = layer.mlp.dense_layers[0]
    expected = np.maximum(crossed @ np.asarray(dense.kernel) + np.asarray(dense.bias), 0)
    np.testing.assert_allclose(out, expected, rtol=1e-5)


def _regulate(gates, x, dim):
    g = np.exp(gates) / np.exp(gates).sum(-1, keepdims=True)
    return [x * np.repeat(g[k], dim)[None, :] for k in range(2)]


def test_edcn_matches_a_direct_transcription():
    layer = EnhancedCrossNetwork(2, seed=3)
    out = np.asarray(layer(X))
    x = X.reshape(4, -1)
    cross, deep = _regulate(np.asarray(layer.gates[0]), x, 2)
    cross_0 = cross
    for i in range(2):
        w, b = np.asarray(layer.cross_kernels[i]), np.asarray(layer.cross_biases[i])
        cross = cross_0 * (cross @ w) + b  # no "+ cross": FuxiCTR's CrossInteraction
        dense = layer.deep_layers[i]
        deep = np.maximum(deep @ np.asarray(dense.kernel) + np.asarray(dense.bias), 0)
        bridge = cross * deep
        if i == 0:
            cross, deep = _regulate(np.asarray(layer.gates[1]), bridge, 2)
    np.testing.assert_allclose(out, np.concatenate([cross, deep, bridge], -1), rtol=1e-5)


def test_edcn_regulation_starts_uniform_over_the_fields():
    layer = EnhancedCrossNetwork(1, bridge_type="pointwise_addition")
    layer.build((None, 3, 2))
    np.testing.assert_allclose(_regulate(np.asarray(layer.gates[0]), np.ones((1, 6)), 2)[0], 1 / 3)


def test_eulernet_matches_a_direct_transcription():
    layer = EulerInteraction([3, 2], layer_norm=False, seed=4)
    out = np.asarray(layer(X))
    r, p = np.cos(X), np.sin(X)  # mu starts at 1
    for lay in layer.interaction_layers:
        lam = 0.5 * np.log(r**2 + p**2 + 1e-8)
        theta = np.arctan2(p, r)
        orders = np.asarray(lay["orders"])
        lam = np.exp(np.einsum("bfd,fg->bdg", lam, orders) + np.asarray(lay["bias_lam"]))
        theta = np.einsum("bfd,fg->bdg", theta, orders) + np.asarray(lay["bias_theta"])
        lam, theta = lam.transpose(0, 2, 1), theta.transpose(0, 2, 1)
        dense = lay["implicit"]
        k, b = np.asarray(dense.kernel), np.asarray(dense.bias)
        ri = np.maximum(r.reshape(4, -1) @ k + b, 0).reshape(lam.shape)
        pi = np.maximum(p.reshape(4, -1) @ k + b, 0).reshape(lam.shape)
        r, p = ri + lam * np.cos(theta), pi + lam * np.sin(theta)
    np.testing.assert_allclose(out, r.reshape(4, -1) + p.reshape(4, -1), rtol=1e-4, atol=1e-5)


def test_eulernet_orders_start_as_identity_or_a_softmax_over_input_fields():
    layer = EulerInteraction([3, 5])
    layer.build((None, 3, 2))
    np.testing.assert_allclose(layer.interaction_layers[0]["orders"], np.eye(3))
    second = np.asarray(layer.interaction_layers[1]["orders"])  # (3 -> 5): columns sum to 1
    np.testing.assert_allclose(second.sum(axis=0), np.ones(5), rtol=1e-5)


def test_contrastive_losses_by_hand():
    e1 = np.array([[[1.0, 0.0], [0.0, 2.0]]], "float32")  # one sample, two fields
    e2 = np.array([[[1.0, 1.0], [0.0, 2.0]]], "float32")
    h1, h2 = np.array([[1.0, 2.0]], "float32"), np.array([[0.0, 0.0]], "float32")
    contrastive, alignment, uniformity = (float(v) for v in contrastive_losses(e1, e2, h1, h2))
    assert contrastive == pytest.approx(5.0)  # ||(1, 2)||^2
    assert alignment == pytest.approx((1.0 + 0.0) / 2)  # field 0 moved by (0, 1), field 1 not
    # cos(e1_0, e2_1) = 0; cos(e1_1, e2_0) = 2 / (2 sqrt 2)
    assert uniformity == pytest.approx((0.0 + 1 / math.sqrt(2)) / 2, rel=1e-6)


def test_contrastive_regularization_adds_its_loss_in_training_only():
    layer = ContrastiveRegularization([4], seed=1)
    out = layer(X, training=False)
    np.testing.assert_array_equal(out, X)
    assert not layer.losses
    out = layer(X, training=True)
    np.testing.assert_array_equal(out, X)  # the prediction sees the unmasked embeddings
    assert len(layer.losses) == 1 and float(layer.losses[0]) > 0


@pytest.mark.parametrize(
    "cls, kwargs, shape, count",
    [
        # W 3x4, BN 2x3 + 2x4, MLP 8 -> 5 (+ BN 2x5)
        (AdaptiveFactorizationNetwork, {"logarithmic_neurons": 4, "hidden_units": [5]}, (4, 5),
         12 + 6 + 8 + 45 + 10),
        # 2 x (deep 6x6 + 6, cross 6 + 6, gates 2x3)
        (EnhancedCrossNetwork, {"num_layers": 2}, (4, 18), 2 * (42 + 12 + 6)),
        # mu 3; orders 3x3; im 6x6 + 6; biases 2 x 2x3; norms 2 x 2x2
        (EulerInteraction, {"orders": [3]}, (4, 6), 3 + 9 + 42 + 12 + 8),
        # FI 6 -> [4] -> 6 with BN (28 + 8 + 30); projectors 2 x (6x2 + 2)
        (ContrastiveRegularization, {"encoder_units": [4]}, (4, 3, 2), 66 + 28),
    ],
)  # fmt: skip
def test_standard_checks(tmp_path, cls, kwargs, shape, count):
    run_layer_test(
        cls,
        kwargs,
        X,
        tmp_path,
        expected_output_shape=shape,
        expected_num_trainable_params=count,
        float32_output=cls is EulerInteraction,
        run_training_check=cls is not ContrastiveRegularization,
    )


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda: AdaptiveFactorizationNetwork(0), "logarithmic_neurons"),
        (lambda: EnhancedCrossNetwork(2, bridge_type="product"), "bridge_type"),
        (lambda: EnhancedCrossNetwork(2, temperature=0.0), "temperature"),
        (lambda: EulerInteraction([]), "orders"),
        (lambda: ContrastiveRegularization([4], mask_rate=1.0), "mask_rate"),
    ],
)
def test_invalid_arguments_are_rejected_with_the_value(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


# -- the models ---------------------------------------------------------------------------------
def _ids(vocab, n, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.integers(0, v, size=n).astype("int64") for k, v in vocab.items()}


TINY = dict(
    embedding_dim=4,
    complex_units=[8],
    afn_units=[8],
    logarithmic_neurons=6,
    contrastive_units=[8],
    euler_orders=[4, 4],
    cross_layers=2,
)


def _tiny(name, **kw):
    defaults = MODELS.get(name).defaults
    return build_model(
        name, SMALL, seed=3, **{k: v for k, v in TINY.items() if k in defaults}, **kw
    )


def test_the_baselines_are_registered_once_each_with_their_paper_names():
    assert MODELS.names()[-4:] == NEW
    assert MODELS.canonical("AFN+") == "afn"


@pytest.mark.parametrize("name", NEW)
def test_round_trips_through_config_and_keras_file(name, tmp_path):
    model = _tiny(name)
    x = _ids(SMALL, 8)
    expected = model(x, training=False)
    assert set(expected) == {"ctr"}
    clone = TF4CTR.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    got = loaded(x, training=False)
    np.testing.assert_allclose(got["ctr"], expected["ctr"], atol=1e-6)


@pytest.mark.parametrize("name", NEW)
def test_learns_a_deterministic_label_in_a_few_steps(name):
    model = _tiny(name)
    x = _ids(SMALL, 512, seed=1)
    y = (x["a"] >= 4).astype("float32")
    model.compile(keras.optimizers.Adam(1e-2), loss={"ctr": "binary_crossentropy"})
    model.fit(x, {"ctr": y}, batch_size=64, epochs=15, verbose=0)
    p = np.asarray(model.predict(x, verbose=0)["ctr"])[:, 0]
    assert np.mean((p > 0.5) == (y > 0.5)) > 0.95


def test_cl4ctr_training_loss_holds_the_contrastive_terms():
    model = _tiny("cl4ctr")
    x, y = _ids(SMALL, 64), np.zeros(64, "float32")
    model.compile("adam", loss={"ctr": "binary_crossentropy"})
    evaluated = model.evaluate(x, {"ctr": y}, batch_size=64, verbose=0)
    model(x, training=True)
    assert len(model.losses) == 1  # ContrastiveRegularization's, added in training only
    p = np.clip(np.asarray(model(x, training=False)["ctr"])[:, 0], 1e-7, 1 - 1e-7)
    np.testing.assert_allclose(evaluated, -np.mean(np.log(1 - p)), rtol=1e-5)


def test_afn_plus_gives_both_logits_to_the_tf_loss():
    model = _tiny("afn", twin_output=True)
    x = _ids(SMALL, 16)
    out = model(x, training=False)
    z = np.asarray(out["twin_logits"])
    w, b = np.asarray(model.fusion.fusion_weights), np.asarray(model.fusion.bias)
    np.testing.assert_allclose(
        out["ctr"], 1 / (1 + np.exp(-(z @ w[:, None] + b))), rtol=1e-5, atol=1e-7
    )
    model.compile("adam", loss={"ctr": "binary_crossentropy", "twin_logits": TwinFocusLoss()})
    y = (x["a"] > 3).astype("float32")
    assert np.isfinite(model.fit(x, {"ctr": y, "twin_logits": y}, verbose=0).history["loss"][0])
