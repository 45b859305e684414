"""Typed run configuration: frozen dataclasses loaded from YAML, overridable from the CLI.

A run's configuration is layered: the dataset's reference config (``pipelines/configs/<dataset>
.yaml``), then an optional user YAML (``--config``), then command-line overrides. Unknown keys
and out-of-range values are refused before any work, with the valid choices listed. Configs
stop at the builder: :meth:`RunConfig.model_kwargs` turns the model section into the builder's
keyword arguments.

The model and loss sections derive from the variant registries (:mod:`tf4ctr_keras.variants`):
every hyperparameter a selector or fusion declares is a key of ``model`` with the registered
default, every hyperparameter a loss declares a key of ``loss``, and the valid names are the
registered ones; registering a variant adds its keys here without editing this module.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipelines.data.errors import DataError
from pipelines.data.schema import bundled_names, load_schema
from pipelines.training.choices import MONITORS, PRECISIONS, STRATEGIES
from tf4ctr_keras.registry import check_choice, check_range, check_units
from tf4ctr_keras.variants import (
    ENCODERS,
    FUSIONS,
    MODELS,
    SELECTORS,
    TWIN_OUTPUT,
    hyperparameters,
    output_losses,
)
from tf4ctr_keras.variants import LOSSES as LOSS_VARIANTS

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
# The bundled datasets (``--dataset NAME``); any other is described by a schema (``--schema``).
DATASETS = tuple(bundled_names())
LOSSES = ("auto", *LOSS_VARIANTS.names())


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the key and the valid values."""


def _section(name: str, doc: str, fields: list[tuple]) -> type:
    """A frozen dataclass ``name`` with ``(key, type, default)`` fields (a callable default is a
    default factory)."""
    spec = [
        (key, kind, field(default_factory=default) if callable(default) else field(default=default))
        for key, kind, default in fields
    ]
    return dataclasses.make_dataclass(
        name, spec, frozen=True, namespace={"__doc__": doc, "__module__": __name__}
    )


# Model architecture; the defaults are the reference's Frappe best run. After the core keys come
# the hyperparameters the registered selectors and fusions declare (simple_embedding_dim,
# num_experts, temperature, noisy_inference, ...), then the encoders' options.
ModelConfig = _section(
    "ModelConfig",
    "Model architecture; the defaults are the reference's Frappe best run.",
    [
        ("name", str, "tf4ctr"),
        ("selector", str, "ser"),
        ("fusion", str, "wsf"),
        ("simple_encoder", str, "mlp"),
        ("simple_units", tuple[int, ...], (400, 400)),
        ("complex_units", tuple[int, ...], (400, 400, 400)),
        ("embedding_dim", int, 16),
        ("embedding_l2", float, 0.0),
        ("dropout", float, 0.0),
        ("batch_norm", bool, True),
        *((key, Any, default) for key, default in hyperparameters().items()),
        ("encoder_options", Mapping[str, Any], dict),
    ],
)

LossConfig = _section(
    "LossConfig",
    "``name: auto`` is the Twin Focus loss for TF4CTR and log loss for the baselines; the other "
    "keys are the hyperparameters the registered losses declare.",
    [("name", str, "auto"), *((k, Any, d) for k, d in LOSS_VARIANTS.hyperparameters().items())],
)


@dataclass(frozen=True)
class TrainConfig:
    """The reference schedule (FuxiCTR 2.0.1): Adam 1e-3, clip-norm 10, LR x0.1 on every
    non-improving epoch (floor 1e-6), stop after 2 in a row, restore the best weights."""

    batch_size: int = 10000
    eval_batch_size: int = 50000
    learning_rate: float = 1e-3
    adam_epsilon: float = 1e-8
    clipnorm: float = 10.0
    max_epochs: int = 100
    patience: int = 2
    lr_factor: float = 0.1
    min_lr: float = 1e-6
    min_delta: float = 1e-6
    monitor: str = "auc+gauc"
    seed: int = 2023
    precision: str = "float32"
    jit: bool = False
    strategy: str = "default"


@dataclass(frozen=True)
class DataConfig:
    """Where data comes from: ``path`` is raw input (prepared into ``data_dir``) or a prepared
    dataset directory (holding ``manifest.json``)."""

    path: str | None = None
    schema: str | None = None
    data_dir: str = "data"
    generated_rows: int = 200000
    min_count: int | None = None
    max_bad_fraction: float = 0.01
    # How raw data is prepared: None = in process; "beam" or a Beam runner's name = as an
    # Apache Beam pipeline with ``beam_options`` ("--direct_num_workers=2 ..."); the output
    # is the same dataset either way.
    runner: str | None = None
    beam_options: str | None = None


# Keys added after runs were archived: left out of the config (and so of its fingerprint and
# the experiments' cache keys) while unset, so existing run directories keep their names.
OMIT_AT_DEFAULT = (("data", "schema"), ("data", "runner"), ("data", "beam_options"))

SECTIONS = {"model": ModelConfig, "loss": LossConfig, "train": TrainConfig, "data": DataConfig}


@dataclass(frozen=True)
class RunConfig:
    dataset: str
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RunConfig:
        raw = dict(raw)
        unknown = sorted(set(raw) - {"dataset", *SECTIONS})
        if unknown:
            raise ConfigError(
                f"Unknown config section(s) {unknown}. Valid: dataset, {', '.join(SECTIONS)}."
            )
        if "dataset" not in raw:
            raise ConfigError("The config names no `dataset`.")
        sections = {}
        for name, section_cls in SECTIONS.items():
            values = dict(raw.get(name) or {})
            valid = [f.name for f in dataclasses.fields(section_cls)]
            bad = sorted(set(values) - set(valid))
            if bad:
                raise ConfigError(
                    f"Unknown key(s) {[f'{name}.{k}' for k in bad]}. "
                    f"Valid keys of `{name}`: {', '.join(valid)}."
                )
            for key in ("simple_units", "complex_units"):
                if key in values and isinstance(values[key], list):
                    values[key] = tuple(values[key])
            sections[name] = section_cls(**values)
        config = cls(dataset=raw["dataset"], **sections)
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for section, key in OMIT_AT_DEFAULT:
            if out[section][key] is None:
                del out[section][key]
        for key in ("simple_units", "complex_units"):
            out["model"][key] = list(out["model"][key])
        out["model"]["encoder_options"] = dict(out["model"]["encoder_options"])
        return out

    def replace(self, overrides: Mapping[str, Any]) -> RunConfig:
        """A copy with dotted-key overrides applied (``{"loss.alpha": 0.3}``), re-validated."""
        raw = self.to_dict()
        for dotted, value in overrides.items():
            apply_override(raw, dotted, value)
        return RunConfig.from_dict(raw)

    def fingerprint(self) -> str:
        """A short hash of everything that changes results (for run directory names)."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    # -- meaning ------------------------------------------------------------------------------
    @property
    def loss_name(self) -> str:
        if self.loss.name != "auto":
            return self.loss.name
        return "tf" if self.model.name == "tf4ctr" else "bce"

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``tf4ctr_keras.build_model(self.model.name, vocab, **kw)``:
        the model section's keys that the model's registered builder accepts, the seed, the
        encoder options, and ``twin_output`` where the loss needs the towers' logits."""
        accepted = MODELS.get(self.model.name).defaults
        values = {f.name: getattr(self.model, f.name) for f in dataclasses.fields(self.model)}
        for key in ("simple_units", "complex_units"):
            values[key] = list(values[key])
        kwargs = {k: v for k, v in values.items() if k in accepted}
        kwargs.update(seed=self.train.seed, **dict(self.model.encoder_options))
        if "twin_output" in accepted and self.needs_twin_logits:
            kwargs["twin_output"] = True
        return kwargs

    def loss_hyperparameters(self) -> dict[str, Any]:
        """The loss section's hyperparameters (every registered loss's keys)."""
        return {k: getattr(self.loss, k) for k in LOSS_VARIANTS.hyperparameters()}

    def output_losses(self) -> dict:
        """The Keras loss per model output (``ctr``, and ``twin_logits`` for the TF loss)."""
        return output_losses(self.loss_name, **self.loss_hyperparameters())

    @property
    def needs_twin_logits(self) -> bool:
        return TWIN_OUTPUT in self.output_losses()

    def validate(self) -> None:
        """Raises :class:`ConfigError` naming the key and the valid values."""
        try:
            if self.data.schema is None:
                check_choice("dataset", self.dataset, DATASETS)
            MODELS.canonical(self.model.name)
            SELECTORS.canonical(self.model.selector)
            FUSIONS.canonical(self.model.fusion)
            ENCODERS.canonical(self.model.simple_encoder)
            check_units("model.simple_units", self.model.simple_units)
            check_units("model.complex_units", self.model.complex_units)
            check_units("model.embedding_dim", [self.model.embedding_dim])
            check_range("model.embedding_l2", self.model.embedding_l2, 0.0)
            check_range("model.dropout", self.model.dropout, 0.0, 1.0, high_inclusive=False)
            check_choice("loss.name", self.loss.name, LOSSES)
            check_range("loss.alpha", self.loss.alpha, 0.0, 1.0)
            check_range("loss.c", self.loss.c, 0.0, 1.0)
            check_range("loss.gamma", self.loss.gamma, 0.0)
            check_range("loss.focal_gamma", self.loss.focal_gamma, 0.0)
            check_range("loss.rce_gamma", self.loss.rce_gamma, 0.0)
            t = self.train
            check_units("train.batch_size", [t.batch_size])
            check_units("train.eval_batch_size", [t.eval_batch_size])
            check_units("train.max_epochs", [t.max_epochs])
            check_units("train.patience", [t.patience])
            check_range("train.learning_rate", t.learning_rate, 0.0, low_inclusive=False)
            check_range("train.clipnorm", t.clipnorm, 0.0, low_inclusive=False)
            check_range("train.lr_factor", t.lr_factor, 0.0, 1.0, low_inclusive=False)
            check_range("train.min_lr", t.min_lr, 0.0)
            check_range("train.min_delta", t.min_delta, 0.0)
            check_choice("train.monitor", t.monitor, MONITORS)
            check_choice("train.precision", t.precision, PRECISIONS)
            check_choice("train.strategy", t.strategy, STRATEGIES)
            check_units("data.generated_rows", [self.data.generated_rows])
            check_range("data.max_bad_fraction", self.data.max_bad_fraction, 0.0, 1.0)
            # Every constructor check (encoder options, widths, ...) on a one-field vocabulary.
            from tf4ctr_keras import build_model

            probe = build_model(self.model.name, {"probe": 2}, **self.model_kwargs())
            if self.needs_twin_logits and not probe.twin_output:
                single = [n for n in LOSSES[1:] if n != self.loss_name]
                names = [f"`{n}`" for n in single]
                raise ValueError(
                    f"loss `{self.loss_name}` needs two towers with logits; `{self.model.name}` "
                    f"has none. Use loss {', '.join(names[:-1])} or {names[-1]}."
                )
        except (ValueError, TypeError) as error:
            raise ConfigError(str(error)) from None


def apply_override(raw: dict, dotted: str, value: Any) -> None:
    """Sets ``raw[section][key] = value`` for ``dotted = "section.key"`` (or ``"dataset"``)."""
    if dotted == "dataset":
        raw["dataset"] = value
        return
    section, _, key = dotted.partition(".")
    if section not in SECTIONS or not key:
        raise ConfigError(
            f"Override `{dotted}` must look like `section.key` with section one of "
            f"{', '.join(SECTIONS)}."
        )
    if key.startswith("encoder_options."):
        raw.setdefault(section, {}).setdefault("encoder_options", {})[key.split(".", 1)[1]] = value
        return
    raw.setdefault(section, {})[key] = value


def parse_override(text: str) -> tuple[str, Any]:
    """``"loss.alpha=0.3"`` -> ``("loss.alpha", 0.3)``; values are parsed as YAML scalars/lists."""
    if "=" not in text:
        raise ConfigError(f"`--set {text}` must look like section.key=value.")
    key, _, value = text.partition("=")
    return key.strip(), yaml.safe_load(value)


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist.")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections.")
    return data


def merge(base: Mapping, update: Mapping) -> dict:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def reference_config(dataset: str) -> dict[str, Any]:
    """The dataset's reference configuration (``pipelines/configs/<dataset>.yaml``)."""
    if dataset not in DATASETS:
        raise ConfigError(
            f"Unknown dataset `{dataset}`. Bundled datasets: {', '.join(DATASETS)}; describe "
            "another one with a schema file (--schema PATH)."
        )
    return load_yaml(CONFIG_DIR / f"{dataset}.yaml")


def schema_config(schema_path: str) -> tuple[str, dict[str, Any]]:
    """The dataset name and base configuration of a user schema: the bundled reference config
    when the schema is one of the bundled datasets' name, else the defaults (the reference's
    Frappe architecture and schedule), monitoring AUC + gAUC when the schema has a group key
    and AUC alone otherwise."""
    try:
        schema = load_schema(schema_path)
    except DataError as error:
        raise ConfigError(str(error)) from None
    if (CONFIG_DIR / f"{schema.name}.yaml").is_file():
        return schema.name, load_yaml(CONFIG_DIR / f"{schema.name}.yaml")
    return schema.name, {"train": {"monitor": "auc+gauc" if schema.group_key else "auc"}}


def resolve_config(
    dataset: str | None,
    config_path: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> RunConfig:
    """Reference config of the dataset <- user YAML <- overrides, validated."""
    return RunConfig.from_dict(raw_config(dataset, config_path, overrides))


def raw_config(
    dataset: str | None,
    config_path: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The layered configuration as a plain dict, not yet validated (validation builds a probe
    model, which multi-worker training must not do before its strategy exists)."""
    user = load_yaml(config_path) if config_path else {}
    schema = (overrides or {}).get("data.schema") or (user.get("data") or {}).get("schema")
    if schema is not None:
        name, base = schema_config(str(schema))
        if dataset not in (None, name):
            raise ConfigError(f"--dataset {dataset} disagrees with the schema's name `{name}`.")
        dataset = name
    dataset = dataset or user.get("dataset")
    if dataset is None:
        raise ConfigError(
            "No dataset given: pass --dataset NAME, --schema PATH or set `dataset:` in the config."
        )
    if user.get("dataset") not in (None, dataset):
        raise ConfigError(
            f"--dataset {dataset} disagrees with `dataset: {user['dataset']}` in {config_path}."
        )
    if schema is None:
        base = reference_config(dataset)
    raw = merge(base, user)
    raw["dataset"] = dataset
    for dotted, value in (overrides or {}).items():
        apply_override(raw, dotted, value)
    schema = (raw.get("data") or {}).get("schema")
    if schema is not None and Path(str(schema)).is_file():
        raw["data"]["schema"] = str(Path(str(schema)).resolve())  # runs from any directory
    return raw
