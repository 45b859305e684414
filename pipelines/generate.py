"""Entry point: ``python -m pipelines.generate`` / ``tf4ctr-generate``; the generator is
:func:`pipelines.data.generate.generate_criteo`.

The parser lives here, not in :mod:`pipelines.data.generate` (which imports the file I/O layer,
and so TensorFlow): building it, and so ``--help``, imports neither TensorFlow nor numpy.
"""

from __future__ import annotations

import argparse
import logging
import os


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pipelines.generate",
        description="Generate Criteo-format data (label from a known model).",
    )
    p.add_argument("--rows", type=int, required=True, help="number of rows")
    p.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    p.add_argument("--out", required=True, help="output file; gzip if it ends with .gz")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from pipelines.data.generate import generate_criteo  # TensorFlow (file I/O): after parsing

    parent = os.path.dirname(args.out) or "."
    if "://" not in args.out and not os.path.isdir(parent):
        logging.error("--out %s: the directory %s does not exist", args.out, parent)
        return 2
    try:
        generate_criteo(args.out, args.rows, args.seed)
    except (ValueError, OSError) as error:
        logging.error("%s", error)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
