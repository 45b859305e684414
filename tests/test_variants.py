import dataclasses

import keras
import pytest

from tf4ctr_keras import FocalLoss, RCELoss, TwinFocusLoss, build_model
from tf4ctr_keras.registry import Registry
from tf4ctr_keras.variants import (
    ENCODERS,
    FUSIONS,
    LOSSES,
    MODELS,
    SELECTORS,
    build_loss,
    encoder_hyperparameters,
    hyperparameters,
    output_losses,
)


def test_registry_keeps_registration_order_defaults_space_and_aliases():
    registry = Registry("thing")
    build = registry.add("b", dict, defaults={"x": 1}, space={"x": [1, 2]}, aliases=["bee"])
    registry.add("a", list)
    assert build is dict
    assert registry.names() == ["b", "a"]
    variant = registry.get("BEE")
    assert (variant.name, variant.builder, dict(variant.defaults), dict(variant.space)) == (
        "b",
        dict,
        {"x": 1},
        {"x": [1, 2]},
    )
    assert "bee" in registry and "c" not in registry
    assert [v.name for v in registry.variants()] == ["b", "a"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        variant.name = "c"
    with pytest.raises(ValueError, match="Valid choices: a, b"):
        registry.get("c")


@pytest.mark.parametrize(
    "add, message",
    [
        (lambda r: r.add("a", dict), "registered twice"),
        (lambda r: r.add("b", dict, aliases=["a"]), "registered twice"),
        (lambda r: r.add("b", dict, defaults={"x": 2}), "one name must have one default"),
        (lambda r: r.add("b", dict, space={"y": [1]}), "does not declare"),
    ],
)
def test_registry_rejects_inconsistent_registrations(add, message):
    registry = Registry("thing")
    registry.add("a", dict, defaults={"x": 1})
    with pytest.raises(ValueError, match=message):
        add(registry)


def test_selectors_and_fusions_share_one_hyperparameter_namespace():
    assert hyperparameters() == {
        "simple_embedding_dim": None,
        "num_experts": 2,
        "temperature": 0.8,
        "noisy_inference": False,
    }
    with pytest.raises(ValueError, match="one name must have one default"):
        Registry("fusion", namespace=FUSIONS._namespace).add("x", dict, defaults={"num_experts": 4})
    assert hyperparameters("fusion") == {
        "temperature": 0.8,
        "noisy_inference": False,
        "num_experts": 2,
    }


def test_encoder_hyperparameters_are_this_projects_defaults():
    # AutoInt: FuxiCTR's AutoInt_default (3 layers, 2 heads, no scale, residual) with the
    # attention as wide as the embedding (d = 16), so that its residual is the identity.
    assert encoder_hyperparameters() == {
        "cin_layer_sizes": (64, 64),
        "cross_layers": 3,
        "attention_dim": 16,
        "attention_heads": 2,
        "attention_layers": 3,
        "attention_residual": True,
        "attention_scale": False,
    }
    assert ENCODERS.names() == ["mlp", "fm", "linear", "cin", "cross", "cross_v2", "attention"]
    assert ENCODERS.canonical("xdeepfm") == "cin"


def test_every_model_accepts_its_declared_hyperparameters():
    for variant in MODELS.variants():
        small = {"simple_units": [4], "complex_units": [4], "embedding_dim": 2}
        kwargs = {**variant.defaults, **{k: v for k, v in small.items() if k in variant.defaults}}
        model = build_model(variant.name, {"a": 3}, **kwargs)
        assert model.name == variant.name
    assert SELECTORS.names() == ["ser", "gate", "mmoe", "shared"]


def _same(a, b):
    return type(a) is type(b) and a.get_config() == b.get_config()


def test_losses_build_the_objects_the_trainer_builds():
    assert LOSSES.names() == ["tf", "bce", "focal", "rce"]
    assert _same(build_loss("tf", alpha=0.3, c=0.7, gamma=1.0), TwinFocusLoss(0.3, 0.7, 1.0))
    assert _same(build_loss("focal", focal_gamma=1.5), FocalLoss(gamma=1.5))
    assert _same(build_loss("rce"), RCELoss(gamma=0.01))
    assert _same(build_loss("bce", alpha=0.5), keras.losses.BinaryCrossentropy())
    assert dict(LOSSES.get("tf").space) == {
        "alpha": {"min": 0.15, "max": 0.65, "step": 0.1},
        "c": {"min": 0.5, "max": 1.0, "step": 0.1},
        "gamma": [1.0, 2.0, 3.0],
    }
    with pytest.raises(TypeError, match="Unknown loss options \\['alpah'\\]"):
        build_loss("tf", alpah=0.3)


def test_output_losses_put_the_tf_loss_on_the_twin_logits():
    losses = output_losses("tf", alpha=0.25, c=0.8, gamma=2.0, focal_gamma=2.0, rce_gamma=0.01)
    assert list(losses) == ["ctr", "twin_logits"]
    assert _same(losses["ctr"], keras.losses.BinaryCrossentropy())
    assert _same(losses["twin_logits"], TwinFocusLoss(0.25, 0.8, 2.0))
    assert _same(output_losses("focal", focal_gamma=3.0)["ctr"], FocalLoss(gamma=3.0))
    assert list(output_losses("bce")) == ["ctr"]
