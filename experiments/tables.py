"""The paper's tables and the study's cells.

The paper's numbers live in ``experiments/paper/*.yaml`` (one file per table, plus the figures,
the authors' own numbers and the display names). The variants each table iterates are the
paper's rows and columns that the model library registers (:mod:`tf4ctr_keras.variants`), in
the paper's order: a variant the library lacks (AFN+, EDCN, ...) is dropped, never guessed.

A cell is a :class:`Spec`: a model and its overrides of the dataset's reference config; the run
cache (:mod:`experiments.runs`) turns it and a seed into a run directory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

PAPER_DIR = Path(__file__).resolve().parent / "paper"
PAPER_FILES = (
    "table2",
    "table3",
    "table4",
    "table5",
    "table6",
    "figures",
    "authors",
    "names",
    "hyperparams",
)
FIRST_SEED = 2023


def load_paper(name: str) -> dict:
    """One data file of ``experiments/paper``, e.g. ``load_paper("table4")``."""
    return yaml.safe_load((PAPER_DIR / f"{name}.yaml").read_text())


TABLE2, TABLE3, TABLE4, TABLE5, TABLE6, FIGURES, AUTHORS, _NAMES, HYPERPARAMS = map(
    load_paper, PAPER_FILES
)


# -- the registries -------------------------------------------------------------------------------
def _registries():
    """``(models, selectors, fusions, encoders, losses)`` of the model library."""
    try:
        from tf4ctr_keras.variants import ENCODERS, FUSIONS, LOSSES, MODELS, SELECTORS
    except ModuleNotFoundError as error:  # before tf4ctr_keras.variants: where they are defined
        if error.name != "tf4ctr_keras.variants":
            raise
        from pipelines.training.config import LOSSES
        from tf4ctr_keras.layers.fusion import FUSIONS
        from tf4ctr_keras.layers.sample_selection import SELECTORS
        from tf4ctr_keras.models.builders import MODELS
        from tf4ctr_keras.models.builders import SIMPLE_ENCODERS as ENCODERS
    return MODELS, SELECTORS, FUSIONS, ENCODERS, LOSSES


def _names(registry) -> list[str]:
    return list(registry.names()) if hasattr(registry, "names") else list(registry)


def registered(names, registry) -> tuple[str, ...]:
    """``names`` that ``registry`` holds, in their order."""
    known = set(_names(registry))
    return tuple(n for n in names if n in known)


MODELS, SELECTORS, FUSIONS, ENCODERS, LOSSES = _registries()

# Table II: base models x losses (the first loss, log loss, is the base); the cells trained on
# the reference's model instead of the row's, and further settings of a cell.
T2_MODELS = registered(TABLE2["models"], MODELS)
T2_LOSSES = registered(TABLE2["losses"], LOSSES)
T2_REFERENCE_CELLS = dict(TABLE2.get("reference_cells") or {})
T2_SETTINGS = dict(TABLE2.get("settings") or {})
# Table III: TF4CTR's sample selectors x fusions.
T3_SELECTORS = registered(TABLE3["selectors"], SELECTORS)
T3_FUSIONS = registered(TABLE3["fusions"], FUSIONS)
# Table IV: the paper's models that are implemented, then the registered models its Table IV
# lacks (DNN, DualMLP), then the proposed model.
PROPOSED = TABLE4["proposed"]
T4_BASELINES = tuple(m for m in registered(TABLE4["models"], MODELS) if m != PROPOSED) + tuple(
    m for m in _names(MODELS) if m not in TABLE4["models"]
)
NOT_IMPLEMENTED = tuple(m for m in TABLE4["models"] if m not in _names(MODELS))
# Table V: base model -> its explicit part as TF4CTR's simple encoder (the encoder registry
# names each encoder's base model as an alias).
T5_ENCODERS = {b: ENCODERS.canonical(b) for b in registered(TABLE5["models"], MODELS)}

# -- the paper's numbers --------------------------------------------------------------------------
NAMES = {name: text for group in _NAMES.values() for name, text in group.items()}
PAPER_COLUMN = dict(_NAMES["datasets"])
PAPER_T2 = {  # (model, loss) -> {dataset: AUC}
    (m, loss): dict(by_ds) for m, row in TABLE2["auc"].items() for loss, by_ds in row.items()
}
PAPER_T3 = {  # (selector, fusion) -> {dataset: (AUC, gAUC)}
    (sel, fus): {ds: tuple(rows[sel][i]) for ds, rows in TABLE3["auc_gauc"].items() if sel in rows}
    for sel in TABLE3["selectors"]
    for i, fus in enumerate(TABLE3["fusions"])
}
PAPER_T4 = {  # dataset -> {model: AUC}
    ds: dict(zip(TABLE4["models"], row, strict=True)) for ds, row in TABLE4["auc"].items()
}
PAPER_T4_P = dict(TABLE4["p_value"])
for _model, _loss in TABLE4["from_table2"].items():
    for _ds, _auc in PAPER_T2[(_model, _loss)].items():
        if _ds in PAPER_T4:
            PAPER_T4[_ds][_model] = _auc
PAPER_T5 = {  # (base, with TF4CTR) -> {dataset: AUC}
    (base, with_): dict(TABLE5["auc"][base]["with" if with_ else "without"])
    for base in TABLE5["models"]
    for with_ in (False, True)
}
PAPER_T6 = {  # model -> (train s, ratio, inference s, ratio), as printed
    name: (r["train_s"], r["train_ratio"], r["infer_s"], r["infer_ratio"])
    for name, r in TABLE6["rows"].items()
}


# -- cells --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Spec:
    """One table cell: a model and its overrides of the reference config (seed excluded)."""

    model: str
    overrides: tuple[tuple[str, object], ...] = ()

    @property
    def loss(self) -> str:
        return dict(self.overrides).get("loss.name", _default_loss(self.model))

    def argv(self, dataset: str, data: str, seed: int, extra: tuple[str, ...] = ()) -> list[str]:
        """Arguments of ``python -m pipelines.train`` for this cell and seed; ``extra`` are
        ``key=value`` overrides applied to every run of a study."""
        args = ["--dataset", dataset, "--data", data, "--model", self.model, "--seed", str(seed)]
        args += ["--loss", self.loss]
        for key, value in self.overrides:
            if key != "loss.name":
                # a tuple (a list in the data files) as the YAML list `--set` parses
                text = json.dumps(list(value)) if isinstance(value, tuple) else value
                args += ["--set", f"{key}={text}"]
        for item in extra:
            args += ["--set", item]
        return args


def _default_loss(model: str) -> str:
    """The proposed model trains with the TF loss, the baselines with log loss."""
    return "tf" if model == PROPOSED else TABLE2["losses"][0]


def spec(model: str, **overrides) -> Spec:
    """``spec("tf4ctr", model__fusion="sum")``: a model and dotted overrides (``__`` = ``.``);
    list values become tuples (a Spec is hashable)."""
    items = {"loss.name": _default_loss(model)}
    items.update(
        {
            k.replace("__", "."): tuple(v) if isinstance(v, list | tuple) else v
            for k, v in overrides.items()
        }
    )
    return Spec(model, tuple(sorted(items.items())))


def dotted_spec(model: str, overrides: dict | None = None) -> Spec:
    """:func:`spec` from a mapping of dotted keys, as the data files write them."""
    return spec(model, **{k.replace(".", "__"): v for k, v in (overrides or {}).items()})


def _reference_cell(cell: dict, loss: str, dataset: str | None, extra: dict | None = None):
    """A Table II cell trained on the model behind the paper's number (``reference_cells``)."""
    overrides = {**cell.get("overrides", {}), "loss.name": loss}
    units = cell.get("simple_units", {}).get(dataset)
    if units is not None:
        overrides["model.simple_units"] = units
    return dotted_spec(cell["model"], {**overrides, **(extra or {})})


def table2_specs(dataset: str | None = None) -> dict[tuple[str, str], Spec]:
    """``(model, loss) -> Spec``: the registered model with the loss, or, for a cell of
    ``reference_cells`` (DualMLP + TF loss), the reference's model with its logged tower on
    ``dataset`` (the config's tower when None or without a log)."""
    out = {}
    for m in T2_MODELS:
        for loss in T2_LOSSES:
            cell = T2_REFERENCE_CELLS.get(f"{m}+{loss}")
            out[(m, loss)] = (
                _reference_cell(cell, loss, dataset) if cell else spec(m, loss__name=loss)
            )
    return out


def table2_extra_specs(dataset: str | None = None) -> dict[tuple[str, str, str], Spec]:
    """``(model, loss, setting) -> Spec``: the further rows of ``settings`` in
    ``paper/table2.yaml``: ``logged`` (the reference cell with the logged run's own
    hyperparameters on ``dataset``; only where a log exists) and ``registered`` (the row's
    registered model with the loss, Table II's cell before issue 17)."""
    out = {}
    for name, settings in T2_SETTINGS.items():
        m, loss = name.split("+")
        if m not in T2_MODELS or loss not in T2_LOSSES:
            continue
        logged = settings.get("logged", {}).get(dataset)
        if logged is not None and name in T2_REFERENCE_CELLS:
            out[(m, loss, "logged")] = _reference_cell(
                T2_REFERENCE_CELLS[name], loss, dataset, logged
            )
        if "registered" in settings:
            out[(m, loss, "registered")] = dotted_spec(
                m, {"loss.name": loss, **(settings["registered"] or {})}
            )
    return out


def table3_specs() -> dict[tuple[str, str], Spec]:
    return {
        (s, f): spec(PROPOSED, model__selector=s, model__fusion=f)
        for s in T3_SELECTORS
        for f in T3_FUSIONS
    }


def table4_specs() -> dict[str, Spec]:
    return {m: spec(m) for m in (*T4_BASELINES, PROPOSED)}


def table5_specs() -> dict[tuple[str, bool], Spec]:
    out = {}
    for base, encoder in T5_ENCODERS.items():
        out[(base, False)] = spec(base)
        out[(base, True)] = spec(PROPOSED, model__simple_encoder=encoder)
    return out


def _variant(name: str) -> Spec:
    """A Table VI row: a registered model, or a variant the data file defines."""
    variant = dict(TABLE6["variants"].get(name, {"model": name}))
    model = variant.pop("model")
    if model not in registered([model], MODELS):
        raise ValueError(f"Table VI row {name!r}: model {model!r} is not registered")
    return dotted_spec(model, variant)


FIG10_MODELS = {m: spec(m) for m in registered(FIGURES["figure10"]["models"], MODELS)}
THRESHOLDS = tuple(FIGURES["figure10"]["thresholds"])
FIG5_SPEC = dotted_spec(FIGURES["figure5"]["model"], FIGURES["figure5"]["overrides"])
TIMING_MODELS = {name: _variant(name) for name in TABLE6["timed"]}

# -- the hyperparameter study (paper section 4.3, Figs. 6-9; experiments/paper/hyperparams.yaml)
SWEEPS = tuple(HYPERPARAMS["sweeps"])  # alpha, c, gamma, simple: Figs. 6, 7, 8, 9


def sweep_points(name: str) -> dict[str, object]:
    """``label -> value`` of a sweep's grid, in the paper's order: ``{"0.15": 0.15, ...}``, or
    the structures ``{"A": (400,), ...}`` of the simple tower. Scalars are floats, as the
    config's loss keys, so a point equal to the reference config is the reference's run."""
    grid = HYPERPARAMS["sweeps"][name]["grid"]
    if isinstance(grid, dict):
        return {label: tuple(units) for label, units in grid.items()}
    return {f"{float(v):g}": float(v) for v in grid}


def sweep_specs(name: str) -> dict[str, Spec]:
    """``label -> Spec``: the proposed model's reference config with the sweep's key set to
    each point of its grid (nothing else overridden)."""
    key = HYPERPARAMS["sweeps"][name]["key"]
    return {label: dotted_spec(PROPOSED, {key: v}) for label, v in sweep_points(name).items()}


FIG2_SPEC = spec(HYPERPARAMS["figure2"]["model"])
