"""``python -m pipelines.prepare`` / ``tf4ctr-prepare``: raw files -> prepared dataset.

The parser imports nothing heavy, so ``--help`` answers without loading TensorFlow.

``--runner beam`` (or a Beam runner's name) runs the two passes as an Apache Beam pipeline;
the arguments the parser does not know are Beam's pipeline options::

    python -m pipelines.prepare --dataset criteo --raw day_0.gz --out data \
        --runner beam --direct_num_workers=2
    python -m pipelines.prepare --dataset criteo --raw "gs://b/criteo/day_*.gz" \
        --out gs://b/data --runner DataflowRunner --project P --region R \
        --temp_location gs://b/tmp --extra_package dist/tf4ctr_keras-0.1.0-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger("pipelines.prepare")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pipelines.prepare",
        description="Preprocess raw CTR data into TFRecord shards + manifest.json.",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--dataset", help="a bundled dataset: criteo, frappe, kkbox, ml-1m, movielenslatest"
    )
    which.add_argument("--schema", help="a dataset schema YAML (README: Train on your own data)")
    p.add_argument(
        "--raw",
        "--data",
        dest="raw",
        required=True,
        help="raw file, directory or glob (local path or URI such as gs://...)",
    )
    p.add_argument("--out", required=True, help="data directory; the dataset goes to OUT/NAME/")
    p.add_argument(
        "--min-count", type=int, default=None, help="vocabulary min count (default: the schema's)"
    )
    p.add_argument(
        "--max-bad-fraction",
        type=float,
        help="tolerated malformed fraction per file (default 0.01)",
    )
    p.add_argument("--shards", type=int, help="shards per split (default 8)")
    p.add_argument(
        "--seed", type=int, default=None, help="seed of hashed splits (default: the schema's)"
    )
    p.add_argument(
        "--runner",
        default="in-process",
        help="in-process (default), beam (Apache Beam's local DirectRunner) or a Beam runner "
        "(DirectRunner, DataflowRunner, FlinkRunner, SparkRunner, ...); with a Beam runner, "
        "the options this parser does not know are Beam pipeline options "
        "(e.g. --direct_num_workers=2; README: Preprocessing at scale)",
    )
    p.add_argument("--force", action="store_true", help="rebuild even if the fingerprint matches")
    p.add_argument(
        "--verify",
        action="store_true",
        help="on reuse, check every shard's sha256 (sizes are always checked)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, beam_args = parser.parse_known_args(argv)
    if beam_args and args.runner == "in-process":
        parser.error(
            f"unrecognized arguments: {' '.join(beam_args)} (Beam pipeline options need "
            "--runner beam or a Beam runner)"
        )
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from pipelines.data.beam import prepare
    from pipelines.data.errors import DataError

    options = {"max_bad_fraction": args.max_bad_fraction, "shards": args.shards}
    try:
        path = prepare(
            args.schema or args.dataset,
            args.raw,
            args.out,
            min_count=args.min_count,
            seed=args.seed,
            force=args.force,
            verify=args.verify,
            runner=args.runner,
            pipeline_args=beam_args,
            **{k: v for k, v in options.items() if v is not None},
        )
    except (DataError, ValueError, OSError) as err:  # OSError: e.g. a read-only --out
        log.error("%s", err)
        return 2
    except ImportError as err:  # a Beam runner without Beam installed
        log.error("%s: --runner %s needs Apache Beam: pip install .[beam]", err, args.runner)
        return 2
    log.info("Dataset ready: %s (manifest %s/manifest.json)", path, path)
    print(path, file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
