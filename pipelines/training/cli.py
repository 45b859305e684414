"""Train a CTR model with the reference schedule: ``python -m pipelines.train``.

Examples::

    python -m pipelines.train --dataset criteo                 # generated Criteo-format data
    python -m pipelines.train --dataset frappe --data ../shared/data/frappe
    python -m pipelines.train --dataset frappe --data ../shared/data/frappe --model dualmlp
    python -m pipelines.train --dataset frappe --data ... --alpha 0.3 --set model.dropout=0.1
    python -m pipelines.train --schema my_data.yaml --data /path/to/raw   # your own dataset

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
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.training.choices import PRECISIONS, STRATEGIES, add_dataset_arguments

if TYPE_CHECKING:
    from pipelines.training.config import RunConfig

# Building the parser (and so ``--help``) imports neither TensorFlow nor Keras: the config, the
# registries and the data pipeline are imported once the arguments are parsed. Options whose valid
# values come from a registry or from the bundled schemas (--dataset, --model, --loss, ...) take
# no argparse choices; the config validation refuses an unknown name, listing the valid ones.

log = logging.getLogger("pipelines.train")

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
    "schema": "data.schema",
    "data_dir": "data.data_dir",
    "rows": "data.generated_rows",
    "runner": "data.runner",
    "beam_options": "data.beam_options",
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
    add_dataset_arguments(p)
    p.add_argument(
        "--data",
        help="raw data (file or directory) or a prepared dataset directory; "
        "without it, --dataset criteo trains on generated data",
    )
    p.add_argument(
        "--model", help="tf4ctr (default) or a baseline; an unknown name lists the valid ones"
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
    p.add_argument(
        "--runner",
        help="prepare raw --data in process (default) or as an Apache Beam pipeline: `beam` "
        "(local worker processes) or a Beam runner (DataflowRunner, FlinkRunner, ...)",
    )
    p.add_argument(
        "--beam-options",
        metavar="'--opt=value ...'",
        help="Beam pipeline options for --runner, one string after '=' (e.g. "
        "--beam-options='--direct_num_workers=2 --direct_running_mode=multi_processing')",
    )
    g = p.add_argument_group("hyperparameters")
    g.add_argument("--loss", help="auto (default) or a registered loss")
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
    from pipelines.training.config import resolve_config

    return resolve_config(args.dataset, args.config, overrides_from_args(args))


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    from pipelines.training.config import parse_override

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
    from pipelines.training.config import ConfigError, raw_config

    raw = raw_config(args.dataset, args.config, overrides_from_args(args))
    if raw.get("train", {}).get("strategy") != "multi_worker":
        return None
    from pipelines.training.multi_worker import cluster_role, multi_worker_strategy

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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from pipelines.training.startup import keras_without_extras

    with keras_without_extras():  # about 2.5 s less start-up (see its docstring)
        from pipelines.training.config import ConfigError
    from pipelines.training.rundir import RunDir, default_run_dir

    try:
        role = start_multi_worker(args)
        config = config_from_args(args)
        run_dir = Path(args.run_dir) if args.run_dir else default_run_dir(config)
        from pipelines.training.inputs import resolve_dataset  # heavy imports after argument checks

        dataset_dir = resolve_dataset(config)
        write = role is None or role.is_chief
        finished = RunDir(run_dir).prepare(config, args.overwrite and write, write)
        RunDir(run_dir).bind_data(dataset_dir, write)  # a changed input is not the old run
    except (ConfigError, OSError) as error:  # OSError: a missing file, a read-only directory
        log.error("%s", error)
        return 2
    except ValueError as error:  # bad data (pipelines.data.errors.DataError is a ValueError)
        log.error("%s", error)
        return 2
    if finished:
        metrics = RunDir(run_dir).read_metrics()
        log.info("%s already finished: test %s", run_dir, metrics["test"])
        print(json.dumps(metrics["test"]))
        return 0
    from pipelines.training.run import train

    verbose = 0 if args.quiet else (1 if sys.stderr.isatty() else 2)
    start = time.time()
    try:
        metrics = train(config, dataset_dir, run_dir, verbose=verbose)
    except ConfigError as error:
        log.error("%s", error)
        return 2
    except OSError as error:  # a full disk or a read-only directory while writing the run
        from pipelines.training.schedule import CheckpointError

        log.error("%s", error)
        if not isinstance(error, CheckpointError):  # (its message says so already)
            log.error("%s keeps its last complete checkpoint: fix this and run again.", run_dir)
        return 2
    except RuntimeError as error:
        from pipelines.training.multi_worker import WorkerFailure

        if not isinstance(error, WorkerFailure):
            raise
        log.error("%s", error)
        return 3
    log.info(
        "done in %.0fs: valid %s, test %s -> %s",
        time.time() - start,
        metrics["valid"],
        metrics["test"],
        RunDir(run_dir).metrics_path,
    )
    print(json.dumps(metrics["test"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
