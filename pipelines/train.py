"""Train a CTR model with the reference schedule: ``python -m pipelines.train``.

Examples::

    python -m pipelines.train --dataset criteo                 # generated Criteo-format data
    python -m pipelines.train --dataset frappe --data ../shared/data/frappe
    python -m pipelines.train --dataset frappe --data ../shared/data/frappe --model dualmlp
    python -m pipelines.train --dataset frappe --data ... --alpha 0.3 --set model.dropout=0.1

A run directory (default ``runs/<dataset>/<model>-<config hash>``) receives the resolved
config, per-epoch checkpoints, TensorBoard logs, ``history.csv`` and ``metrics.json``. Running
the same command again after a crash resumes from the last checkpoint; after a finished run it
reports the stored metrics.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from pipelines.run_config import (
    DATASETS,
    LOSSES,
    PRECISIONS,
    STRATEGIES,
    ConfigError,
    RunConfig,
    parse_override,
    raw_config,
    resolve_config,
)

log = logging.getLogger("pipelines.train")

METRICS_FILE = "metrics.json"
CONFIG_FILE = "config.yaml"
RUN_FILE = "run.json"

# CLI flag -> dotted config key, for the hyperparameters users tune most.
FLAG_KEYS = {
    "model": "model.name",
    "epochs": "train.max_epochs",
    "seed": "train.seed",
    "precision": "train.precision",
    "strategy": "train.strategy",
    "batch_size": "train.batch_size",
    "learning_rate": "train.learning_rate",
    "loss": "loss.name",
    "alpha": "loss.alpha",
    "c": "loss.c",
    "gamma": "loss.gamma",
    "selector": "model.selector",
    "fusion": "model.fusion",
    "simple_encoder": "model.simple_encoder",
    "simple_units": "model.simple_units",
    "complex_units": "model.complex_units",
    "embedding_dim": "model.embedding_dim",
    "embedding_l2": "model.embedding_l2",
    "dropout": "model.dropout",
    "data": "data.path",
    "data_dir": "data.data_dir",
    "rows": "data.generated_rows",
}


def _units(text: str) -> list[int]:
    try:
        return [int(u) for u in text.split(",") if u.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pipelines.train",
        description="Train TF4CTR or a baseline with the reference schedule.",
    )
    p.add_argument(
        "--dataset", choices=DATASETS, help="dataset spec (required unless --config names one)"
    )
    p.add_argument(
        "--data",
        help="raw data (file or directory) or a prepared dataset directory; "
        "without it, --dataset criteo trains on generated data",
    )
    p.add_argument(
        "--model", help="tf4ctr, dnn, dualmlp, deepfm, widedeep, dcn, dcnv2, xdeepfm, autoint"
    )
    p.add_argument("--config", help="YAML overriding the dataset's reference config")
    p.add_argument("--epochs", type=int, help="maximum epochs (early stopping still applies)")
    p.add_argument("--seed", type=int)
    p.add_argument("--run-dir", help="run directory (default runs/<dataset>/<model>-<hash>)")
    p.add_argument("--precision", choices=PRECISIONS)
    p.add_argument("--jit", action="store_true", help="compile the train step with XLA")
    p.add_argument(
        "--strategy",
        choices=STRATEGIES,
        help="default (one device), mirrored (all devices of this host) or multi_worker "
        "(several hosts, configured by TF_CONFIG; see README)",
    )
    p.add_argument("--quiet", action="store_true", help="logs only, no progress bar")
    p.add_argument("--overwrite", action="store_true", help="delete an existing run directory")
    p.add_argument("--data-dir", help="where raw data is prepared (default data/)")
    p.add_argument("--rows", type=int, help="rows of generated Criteo data (no --data)")
    g = p.add_argument_group("hyperparameters")
    g.add_argument("--loss", choices=LOSSES)
    g.add_argument("--alpha", type=float)
    g.add_argument("--c", type=float)
    g.add_argument("--gamma", type=float)
    g.add_argument("--selector")
    g.add_argument("--fusion")
    g.add_argument("--simple-encoder")
    g.add_argument("--simple-units", type=_units, help="e.g. 400,400")
    g.add_argument("--complex-units", type=_units, help="e.g. 400,400,400")
    g.add_argument("--embedding-dim", type=int)
    g.add_argument("--embedding-l2", type=float)
    g.add_argument("--dropout", type=float)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--learning-rate", type=float)
    g.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="any config key, e.g. --set train.patience=3 (repeatable)",
    )
    return p


def config_from_args(args: argparse.Namespace) -> RunConfig:
    return resolve_config(args.dataset, args.config, overrides_from_args(args))


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for flag, key in FLAG_KEYS.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides[key] = value
    if args.jit:
        overrides["train.jit"] = True
    for item in args.set:
        key, value = parse_override(item)
        overrides[key] = value
    return overrides


def start_multi_worker(args: argparse.Namespace):
    """Creates MultiWorkerMirroredStrategy when the run asks for it, before anything else runs
    TensorFlow (collective ops are configured at program start); returns the cluster role or
    None."""
    raw = raw_config(args.dataset, args.config, overrides_from_args(args))
    if raw.get("train", {}).get("strategy") != "multi_worker":
        return None
    from pipelines.distributed import cluster_role, multi_worker_strategy

    role = cluster_role()
    data = raw.get("data", {}).get("path")
    if not data or not (Path(data) / "manifest.json").is_file():
        raise ConfigError(
            "--strategy multi_worker trains on a prepared dataset directory (with "
            "manifest.json) on storage every worker reads; prepare it once with "
            f"`python -m pipelines.prepare` and pass it as --data (got {data!r})."
        )
    multi_worker_strategy()
    return role


def default_run_dir(config: RunConfig) -> Path:
    return Path("runs") / config.dataset / f"{config.model.name}-{config.fingerprint()}"


def write_atomic(path: Path, text: str) -> None:
    """Writes ``text`` to a temporary file beside ``path`` and renames it into place."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def prepare_run_dir(run_dir: Path, config: RunConfig, overwrite: bool, write: bool = True) -> bool:
    """Creates or checks the run directory; returns True when the run already finished.
    With ``write=False`` (a non-chief worker) it only reads: the chief creates the directory."""
    if not write:
        return (run_dir / METRICS_FILE).exists()
    if overwrite and run_dir.exists():
        shutil.rmtree(run_dir)
    resolved = yaml.safe_dump(config.to_dict(), sort_keys=False)
    config_path = run_dir / CONFIG_FILE
    if config_path.exists():
        if config_path.read_text() != resolved:
            raise ConfigError(
                f"{run_dir} holds a run with another configuration ({config_path}). "
                "Pass another --run-dir, or --overwrite to discard it."
            )
        if (run_dir / METRICS_FILE).exists():
            return True
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(config_path, resolved)
    return False


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        role = start_multi_worker(args)
        config = config_from_args(args)
        run_dir = Path(args.run_dir) if args.run_dir else default_run_dir(config)
        from pipelines.data import resolve_dataset  # heavy imports after argument checks

        dataset_dir = resolve_dataset(config)
        write = role is None or role.is_chief
        finished = prepare_run_dir(run_dir, config, args.overwrite and write, write)
    except (ConfigError, FileNotFoundError) as error:
        log.error("%s", error)
        return 2
    except ValueError as error:  # bad data (pipelines.errors.DataError is a ValueError)
        log.error("%s", error)
        return 2
    if finished:
        metrics = json.loads((run_dir / METRICS_FILE).read_text())
        log.info("%s already finished: test %s", run_dir, metrics["test"])
        print(json.dumps(metrics["test"]))
        return 0
    from pipelines.trainer import train

    verbose = 0 if args.quiet else (1 if sys.stderr.isatty() else 2)
    start = time.time()
    try:
        metrics = train(config, dataset_dir, run_dir, verbose=verbose)
    except ConfigError as error:
        log.error("%s", error)
        return 2
    except RuntimeError as error:
        from pipelines.distributed import WorkerFailure

        if not isinstance(error, WorkerFailure):
            raise
        log.error("%s", error)
        return 3
    log.info(
        "done in %.0fs: valid %s, test %s -> %s",
        time.time() - start,
        metrics["valid"],
        metrics["test"],
        run_dir / METRICS_FILE,
    )
    print(json.dumps(metrics["test"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
