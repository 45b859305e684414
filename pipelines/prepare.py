"""CLI: prepare a dataset into ``DATA_DIR/NAME/``.

Example::

    python -m pipelines.prepare --dataset frappe --raw ../shared/data/frappe --out data
"""

from __future__ import annotations

import argparse
import logging
import sys

from pipelines.datasets import SPECS
from pipelines.errors import DataError
from pipelines.preprocess import DEFAULT_MAX_BAD_FRACTION, DEFAULT_SHARDS, prepare

logger = logging.getLogger("pipelines.prepare")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Preprocess a raw CTR dataset into TFRecord shards + manifest.json."
    )
    parser.add_argument("--dataset", required=True, choices=list(SPECS), help="dataset spec")
    parser.add_argument(
        "--raw", required=True, help="raw file or directory (local path or URI such as gs://...)"
    )
    parser.add_argument(
        "--out", required=True, help="data directory; the dataset goes to OUT/NAME/"
    )
    parser.add_argument(
        "--min-count", type=int, default=None, help="vocabulary min count (default: the spec's)"
    )
    parser.add_argument(
        "--max-bad-fraction",
        type=float,
        default=DEFAULT_MAX_BAD_FRACTION,
        help="tolerated malformed fraction per file",
    )
    parser.add_argument("--shards", type=int, default=DEFAULT_SHARDS, help="shards per split")
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of hashed splits (default: the spec's)"
    )
    parser.add_argument(
        "--sequence-sep", default=None, help="KKBox sequence separator (default '|')"
    )
    parser.add_argument(
        "--force", action="store_true", help="rebuild even if the fingerprint matches"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    extra = {"sequence_sep": args.sequence_sep} if args.sequence_sep is not None else {}
    try:
        path = prepare(
            args.dataset,
            args.raw,
            args.out,
            min_count=args.min_count,
            max_bad_fraction=args.max_bad_fraction,
            shards=args.shards,
            seed=args.seed,
            force=args.force,
            **extra,
        )
    except (DataError, ValueError) as err:
        logger.error("%s", err)
        return 2
    logger.info("Dataset ready: %s (manifest %s/manifest.json)", path, path)
    print(path, file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
