"""Entry point: ``python -m pipelines.tune`` / ``tf4ctr-tune``; the search itself is
:func:`pipelines.training.tune.run`.

The parser lives here, not in :mod:`pipelines.training.tune` (whose search space is read from
the variant registries, so importing it loads Keras and TensorFlow): building it, and so
``--help``, imports neither.
"""

from __future__ import annotations

import argparse

from pipelines.training.choices import TUNERS, add_dataset_arguments


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m pipelines.tune",
        description="Search TF4CTR hyperparameters with keras-tuner.",
    )
    add_dataset_arguments(p)
    p.add_argument("--data", help="raw or prepared data (as pipelines.training.cli)")
    p.add_argument("--tuner", choices=TUNERS, default="bayesian")
    p.add_argument("--max-trials", type=int, default=12)
    p.add_argument("--tune-dir", help="default tune/<dataset>-<tuner>")
    p.add_argument("--space", help="YAML narrowing the search space")
    p.add_argument("--config", help="YAML overriding the dataset's reference config")
    p.add_argument("--seed", type=int, default=2023, help="seed of the search and the trials")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from pipelines.training.tune import run  # TensorFlow, Keras, keras-tuner: after parsing

    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
