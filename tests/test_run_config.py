import pytest
import yaml

from pipelines.training.config import (
    DATASETS,
    ConfigError,
    RunConfig,
    parse_override,
    reference_config,
    resolve_config,
)


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_reference_config_loads_and_builds(dataset):
    config = resolve_config(dataset)
    assert config.model.name == "tf4ctr" and config.loss_name == "tf"
    assert config.model.complex_units == (400, 400, 400) and config.model.embedding_dim == 16


def test_reference_hyperparameters_of_frappe_and_criteo():
    frappe = resolve_config("frappe")
    assert (frappe.loss.alpha, frappe.loss.c, frappe.loss.gamma) == (0.25, 0.7, 1.0)
    assert (frappe.model.dropout, frappe.model.embedding_l2, frappe.train.batch_size) == (
        0.2,
        0.1,
        10000,
    )
    assert frappe.train.monitor == "auc+gauc"
    criteo = resolve_config("criteo")
    assert (criteo.loss.alpha, criteo.loss.c, criteo.train.batch_size) == (0.35, 0.9, 4096)
    assert criteo.train.monitor == "auc"


def test_baselines_drop_tf4ctr_only_keys_and_default_to_log_loss():
    config = resolve_config("frappe", overrides={"model.name": "dnn"})
    assert config.loss_name == "bce"
    kwargs = config.model_kwargs()
    assert "selector" not in kwargs and "simple_units" not in kwargs
    dual = resolve_config("frappe", overrides={"model.name": "dualmlp", "loss.name": "tf"})
    assert dual.model_kwargs()["twin_output"] is True


def test_layering_user_yaml_then_overrides(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"loss": {"alpha": 0.4}, "train": {"patience": 3}}))
    config = resolve_config("frappe", str(path), {"loss.alpha": 0.45})
    assert config.loss.alpha == 0.45 and config.train.patience == 3 and config.loss.c == 0.7


def test_round_trip_through_dict_and_stable_fingerprint():
    config = resolve_config("ml-1m")
    again = RunConfig.from_dict(config.to_dict())
    assert again == config and again.fingerprint() == config.fingerprint()
    assert config.replace({"train.seed": 1}).fingerprint() != config.fingerprint()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"loss.alpha": 1.5}, "`loss.alpha` must be in \\[0.0, 1.0\\]"),
        ({"loss.c": 1.2}, "`loss.c` must be in"),
        ({"model.dropot": 0.1}, "Unknown key\\(s\\) \\['model.dropot'\\]. Valid keys of `model`"),
        ({"model.name": "dnnn"}, "Valid choices: afn, autoint, cl4ctr, dcn"),
        ({"model.fusion": "wfs"}, "Unknown fusion"),
        ({"train.monitor": "loss"}, "train.monitor"),
        ({"train.precision": "fp16"}, "train.precision"),
        ({"train.strategy": "parameter_server"}, "`train.strategy` must be one of"),
        ({"model.name": "dnn", "loss.name": "tf"}, "two towers"),
        ({"model.encoder_options.cross_layer": 2}, "cross_layer"),
    ],
)
def test_invalid_values_are_refused_with_the_choices(overrides, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config("frappe", overrides=overrides)


def test_unknown_dataset_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="Bundled datasets: criteo, frappe"):
        reference_config("avazu")


def test_parse_override_reads_yaml_values():
    assert parse_override("model.simple_units=[200, 200]") == ("model.simple_units", [200, 200])
    assert parse_override("loss.alpha=0.3") == ("loss.alpha", 0.3)
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("loss.alpha")
