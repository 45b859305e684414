"""``python -m export --run-dir DIR --model-base-path OUT [--model-name NAME] [--version V]``."""

from __future__ import annotations

import argparse
import logging
import os
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m export", description="Export a finished run for TF Serving."
    )
    p.add_argument("--run-dir", required=True, help="a finished `pipelines.training.cli` run")
    p.add_argument("--model-base-path", required=True, help="TF Serving's --model_base_path root")
    p.add_argument(
        "--model-name", help="default <model>_<dataset>; one path component (no `/`, no `..`)"
    )
    p.add_argument("--version", type=int, help="default: the next integer")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from export.exporter import ExportBusyError, check_model_name, export_run

    try:
        if args.model_name is not None:  # before loading anything: nothing is written
            check_model_name(args.model_name)
        path = export_run(
            args.run_dir,
            args.model_base_path,
            args.model_name,
            args.version,
        )
    except (FileNotFoundError, FileExistsError, ValueError, ExportBusyError) as error:
        logging.error("%s", error)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
