"""Hyperparameter search with keras-tuner: ``python -m pipelines.tune``.

The search space is the one the paper studies, declared once in :data:`SPACE`: alpha, c, gamma,
the sample selector, the fusion, the simple tower (the paper's structures A-E), dropout,
embedding L2 and learning rate. A YAML file narrows it (``--space``)::

    alpha: {min: 0.15, max: 0.65, step: 0.1}   # a range
    gamma: [1, 2]                               # a choice
    fusion: wsf                                 # a fixed value

Every trial is a full training run with the reference schedule (the same trainer as
``pipelines.train``); the objective is the exact validation monitor (AUC, + gAUC where the
dataset has a user key). Trial runs live in ``<tune-dir>/runs/<id>/``, keras-tuner's state in
``oracle.json`` and ``trial_<id>/``. An interrupted search, started again with the same
command, reloads the oracle, resumes the unfinished trial from its checkpoint and never repeats
a finished one; ``search.yaml`` records what defines the search, and a restart with other
settings is refused. At the end ``best.yaml`` (accepted unchanged by ``python -m
pipelines.training.cli --config``) and ``results.md`` (trial, params, valid metrics) are written.

    python -m pipelines.tune --dataset frappe --data ../shared/data/frappe --max-trials 12
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

import yaml

from pipelines.data.fileio import remove_stale_temporaries, write_atomic
from pipelines.training.config import (
    ConfigError,
    RunConfig,
    load_yaml,
    parse_override,
    resolve_config,
)
from pipelines.training.rundir import RunDir
from tf4ctr_keras.variants import FUSIONS, LOSSES, SELECTORS

log = logging.getLogger("pipelines.tune")

# The paper's simple-encoder structures (section 4.3, Figure 9).
SIMPLE_TOWERS = {"A": [400], "B": [800], "C": [200, 200], "D": [400, 400], "E": [800, 800]}


def _registered_space(section: str, registries) -> dict[str, tuple[str, Any]]:
    """The tuning domains the registered variants declare, as config keys of ``section``."""
    return {
        hparam: (f"{section}.{hparam}", domain)
        for registry in registries
        for variant in registry.variants()
        for hparam, domain in variant.space.items()
    }


# name -> (config key, default search domain). The loss's and the parts' hyperparameters and
# the names to choose from come from the registries (tf4ctr_keras.variants); the rest are the
# training-side dimensions the paper studies.
SPACE: dict[str, tuple[str, Any]] = {
    **_registered_space("loss", [LOSSES]),
    "selector": ("model.selector", SELECTORS.names()),
    "fusion": ("model.fusion", FUSIONS.names()),
    **_registered_space("model", [SELECTORS, FUSIONS]),
    "simple_tower": ("model.simple_units", list(SIMPLE_TOWERS)),
    "dropout": ("model.dropout", {"min": 0.0, "max": 0.3, "step": 0.1}),
    "embedding_l2": ("model.embedding_l2", {"min": 1e-3, "max": 0.3, "sampling": "log"}),
    "learning_rate": ("train.learning_rate", [5e-4, 1e-3, 2e-3]),
}
OBJECTIVE = "val_monitor"


def atomic_tuner_state() -> None:
    """Makes keras-tuner write its JSON state (``oracle.json``, ``trial.json``,
    ``build_config.json``) to a temporary file that is renamed into place.

    keras-tuner 1.4.8 writes them in place (open for writing, then write): a search killed
    between the two leaves an empty file, and the next start cannot reload the oracle
    (JSONDecodeError), so the search could not resume. The library has no option for this;
    every one of its writers calls ``keras_tuner.src.utils.save_json``, which this replaces.
    """
    from keras_tuner.src import utils as kt_utils

    if getattr(kt_utils.save_json, "atomic", False):
        return

    def save_json(path, obj):
        text = json.dumps(obj)
        write_atomic(path, text)
        return text

    save_json.atomic = True
    kt_utils.save_json = save_json


def check_tuner_state(tune_dir: Path) -> None:
    """Refuses, naming the file, a search directory whose saved state cannot be read (left
    by a search killed while writing it before :func:`atomic_tuner_state` existed)."""
    for path in sorted([*tune_dir.glob("oracle.json"), *tune_dir.glob("trial_*/trial.json")]):
        try:
            json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as error:
            raise ConfigError(
                f"{path}: the saved search state is not valid JSON ({error}), so the search "
                f"cannot resume; start a new one with another --tune-dir or remove {tune_dir}."
            ) from None


SEARCH_FILE = "search.yaml"


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def check_search_identity(tune_dir: Path, identity: dict[str, Any]) -> None:
    """Records what defines the search (tuner, seed, space, base config) in ``search.yaml``
    at its first start and refuses, naming the keys, a restart that changes any of it: the
    oracle's saved state and the trials' checkpoints belong to the first definition.
    ``--max-trials`` is not part of it, so a finished search can be extended."""
    path = tune_dir / SEARCH_FILE
    if path.is_file():
        saved, now = _flatten(yaml.safe_load(path.read_text())), _flatten(identity)
        changed = sorted(k for k in saved.keys() | now.keys() if saved.get(k) != now.get(k))
        if changed:
            raise ConfigError(
                f"{path}: this search was started with other settings; changed: "
                + ", ".join(f"{k} ({saved.get(k)!r} -> {now.get(k)!r})" for k in changed)
                + ". Resume it with the same arguments, or pass another --tune-dir."
            )
        return
    tune_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(path, yaml.safe_dump(identity, sort_keys=False))


def settle_reloaded_trials(oracle) -> dict[str, list[str]]:
    """Repairs the two states a kill leaves in a reloaded keras-tuner 1.4.8 oracle; returns
    the ids of the trials it kept from running again and of those it sent to run.

    - ``end_trial`` saves ``oracle.json`` before it removes the trial from ``ongoing_trials``,
      and the file is saved again only when the next trial starts (or never, after the last).
      Killed in between, the COMPLETED trial reloads as "ongoing", ``reload`` sends it for
      retry and it would be trained again. It is taken out of the retry queue (and put in
      ``end_order`` if the kill also came before that was saved).
    - ``create_trial`` writes the new trial's ``trial.json`` (RUNNING) before ``oracle.json``.
      Killed in between, the trial reloads from its file but the oracle does not know it: it
      counts towards ``max_trials`` and never runs, so the search ends a trial short. It is
      sent for retry, as ``reload`` does with the trials it knows were running.
    """
    from keras_tuner.src.engine.trial import TrialStatus

    finished = (TrialStatus.COMPLETED, TrialStatus.FAILED)
    done = [t for t in oracle._retry_queue if oracle.trials[t].status in finished]
    oracle._retry_queue = [t for t in oracle._retry_queue if t not in done]
    for trial_id in done:
        if trial_id not in oracle.end_order:
            oracle.end_order.append(trial_id)
        log.info("trial %s had finished before the restart; not run again", trial_id)
    orphans = [
        trial_id
        for trial_id, trial in sorted(oracle.trials.items())
        if trial.status == TrialStatus.RUNNING and trial_id not in oracle._retry_queue
    ]
    for trial_id in orphans:
        oracle._record_values(oracle.trials[trial_id])
        if trial_id not in oracle.start_order:
            oracle.start_order.append(trial_id)
        oracle._retry_queue.append(trial_id)
        log.info("trial %s had started before the restart; running it", trial_id)
    return {"not_run_again": done, "run": orphans}


def load_space(path: str | None) -> dict[str, Any]:
    """The default space narrowed by a YAML of ``name: domain`` (unknown names refused)."""
    space = {name: domain for name, (_, domain) in SPACE.items()}
    if path:
        user = load_yaml(path)
        unknown = sorted(set(user) - set(SPACE))
        if unknown:
            raise ConfigError(
                f"{path}: unknown search dimension(s) {unknown}. Valid: {', '.join(SPACE)}."
            )
        space.update(user)
    return space


def declare(hp, space: dict[str, Any]) -> dict[str, Any]:
    """Declares every dimension on a ``keras_tuner.HyperParameters`` and returns the values."""
    values = {}
    for name, domain in space.items():
        if isinstance(domain, list):
            if not domain:
                raise ConfigError(f"search dimension `{name}` has an empty choice list.")
            values[name] = hp.Choice(name, domain) if len(domain) > 1 else hp.Fixed(name, domain[0])
        elif isinstance(domain, dict):
            bad = sorted(set(domain) - {"min", "max", "step", "sampling"})
            if bad or "min" not in domain or "max" not in domain:
                raise ConfigError(
                    f"search dimension `{name}`: a range needs `min` and `max` "
                    f"(optional `step`, `sampling`); got {domain}."
                )
            values[name] = hp.Float(
                name,
                float(domain["min"]),
                float(domain["max"]),
                step=domain.get("step"),
                sampling=domain.get("sampling", "linear"),
            )
        else:
            values[name] = hp.Fixed(name, domain)
    return values


def overrides_for(values: dict[str, Any]) -> dict[str, Any]:
    """Trial values -> dotted config overrides."""
    out = {}
    for name, value in values.items():
        key = SPACE[name][0]
        if name == "simple_tower":
            if value not in SIMPLE_TOWERS:
                raise ConfigError(
                    f"simple_tower must be one of {list(SIMPLE_TOWERS)}; got {value!r}."
                )
            value = SIMPLE_TOWERS[value]
        elif isinstance(value, float):
            value = round(value, 10)  # keep YAML and fingerprints free of float noise
        out[key] = value
    return out


def make_tuner(
    kind: str,
    base: RunConfig,
    dataset_dir: Path,
    tune_dir: Path,
    space: dict[str, Any],
    max_trials: int,
    seed: int,
):
    import keras_tuner

    from pipelines.training.evaluation import monitor_value
    from pipelines.training.run import train

    class ReferenceScheduleTuner(keras_tuner.Tuner):
        """Runs each trial as a full ``pipelines.training.cli`` run and reports its valid monitor."""

        def run_trial(self, trial, *args, **kwargs):
            values = declare(trial.hyperparameters, space)
            overrides = overrides_for(values)
            if "tuner/epochs" in trial.hyperparameters.values:  # Hyperband's budget
                overrides["train.max_epochs"] = int(trial.hyperparameters["tuner/epochs"])
            config = base.replace(overrides)
            run_dir = Path(self.project_dir) / "runs" / trial.trial_id
            if RunDir(run_dir).prepare(config):
                # Killed after the run wrote metrics.json, before keras-tuner recorded the
                # trial: report the finished run instead of evaluating it again.
                metrics = RunDir(run_dir).read_metrics()
                log.info("trial %s had finished before the restart: %s", trial.trial_id, values)
            else:  # a new run, or one resumed from its last checkpoint
                metrics = train(config, dataset_dir, run_dir, verbose=0)
                log.info(
                    "trial %s finished: %s -> valid %s", trial.trial_id, values, metrics["valid"]
                )
            score = monitor_value(metrics["valid"], config.train.monitor)
            return {OBJECTIVE: score, **{f"val_{k}": v for k, v in metrics["valid"].items()}}

    objective = keras_tuner.Objective(OBJECTIVE, direction="max")
    common = dict(objective=objective, seed=seed)
    if kind == "bayesian":
        oracle = keras_tuner.oracles.BayesianOptimizationOracle(max_trials=max_trials, **common)
    elif kind == "random":
        oracle = keras_tuner.oracles.RandomSearchOracle(max_trials=max_trials, **common)
    else:
        oracle = keras_tuner.oracles.HyperbandOracle(
            max_epochs=base.train.max_epochs, factor=3, hyperband_iterations=1, **common
        )
    # Declare the space up front so the oracle samples every dimension from the first trial.
    declare(oracle.hyperparameters, space)
    tuner = ReferenceScheduleTuner(
        oracle=oracle, directory=str(tune_dir.parent), project_name=tune_dir.name, overwrite=False
    )  # reloads the oracle of an interrupted search
    settle_reloaded_trials(tuner.oracle)
    return tuner


def trial_rows(tuner) -> list[dict]:
    rows = []
    for trial in tuner.oracle.trials.values():
        if trial.status != "COMPLETED":
            continue
        metrics = {name: h.get_best_value() for name, h in trial.metrics.metrics.items()}
        values = {k: v for k, v in trial.hyperparameters.values.items() if k in SPACE}
        rows.append({"trial": trial.trial_id, "params": values, **metrics})
    return sorted(rows, key=lambda r: -r[OBJECTIVE])


def write_results(tuner, base: RunConfig, tune_dir: Path) -> dict:
    rows = trial_rows(tuner)
    if not rows:
        raise RuntimeError(f"No trial of {tune_dir} completed.")
    best = rows[0]
    config = base.replace(overrides_for(best["params"])).to_dict()
    data = config.pop("data")  # machine-specific; pass --data to pipelines.training.cli
    if data.get("schema"):  # a user dataset: `dataset:` alone would not resolve
        config["data"] = {"schema": data["schema"]}
    header = (
        f"# best of {len(rows)} trial(s) in {tune_dir} (trial {best['trial']}, valid "
        f"{base.train.monitor} {best[OBJECTIVE]:.6f}).\n"
        f"# Train: python -m pipelines.train --config {tune_dir / 'best.yaml'} --data ...\n"
    )
    write_atomic(tune_dir / "best.yaml", header + yaml.safe_dump(config, sort_keys=False))
    names = [n for n in SPACE if any(n in r["params"] for r in rows)]
    metric_names = [k for k in ("val_auc", "val_gauc", "val_logloss") if k in best]
    lines = [
        f"| trial | {' | '.join(names)} | {' | '.join(metric_names)} | {OBJECTIVE} |",
        "|" + "---|" * (len(names) + len(metric_names) + 2),
    ]
    for r in rows:
        cells = [
            f"{r['params'][n]:.4g}"
            if isinstance(r["params"].get(n), float)
            else str(r["params"].get(n, ""))
            for n in names
        ]
        lines.append(
            f"| {r['trial']} | {' | '.join(cells)} | "
            f"{' | '.join(f'{r[m]:.6f}' for m in metric_names)} | {r[OBJECTIVE]:.6f} |"
        )
    write_atomic(tune_dir / "results.md", "\n".join(lines) + "\n")
    return best


def run(args: argparse.Namespace) -> int:
    """Runs (or resumes) the search that the parsed arguments describe; returns the exit code."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        if args.max_trials < 1:
            raise ConfigError(f"--max-trials must be >= 1. Received: {args.max_trials}")
        overrides = dict(parse_override(item) for item in args.set)
        overrides["train.seed"] = args.seed
        if args.data:
            overrides["data.path"] = args.data
        if args.schema:
            overrides["data.schema"] = args.schema
        base = resolve_config(args.dataset, args.config, overrides)
        space = load_space(args.space)
        import keras_tuner

        declare(keras_tuner.HyperParameters(), space)  # validate the space before any work
        from pipelines.training.inputs import resolve_dataset

        dataset_dir = resolve_dataset(base)
        # The dataset's name: --dataset, the schema's `name` or the config's `dataset:`.
        tune_dir = Path(args.tune_dir or Path("tune") / f"{base.dataset}-{args.tuner}").resolve()
        for directory in [tune_dir, *sorted(tune_dir.glob("trial_*"))]:
            remove_stale_temporaries(directory)  # what a killed search left (process gone)
        check_tuner_state(tune_dir)
        check_search_identity(
            tune_dir,
            {"tuner": args.tuner, "seed": args.seed, "space": space, "config": base.to_dict()},
        )
    except (ConfigError, FileNotFoundError, ValueError) as error:
        log.error("%s", error)
        return 2
    tune_dir.parent.mkdir(parents=True, exist_ok=True)
    atomic_tuner_state()
    tuner = make_tuner(args.tuner, base, dataset_dir, tune_dir, space, args.max_trials, args.seed)
    tuner.search()
    best = write_results(tuner, base, tune_dir)
    log.info(
        "best trial %s: %s (valid %s %.6f); wrote %s and %s",
        best["trial"],
        best["params"],
        base.train.monitor,
        best[OBJECTIVE],
        tune_dir / "best.yaml",
        tune_dir / "results.md",
    )
    print(
        json.dumps(
            {"best_trial": best["trial"], "params": best["params"], OBJECTIVE: best[OBJECTIVE]}
        )
    )
    return 0
