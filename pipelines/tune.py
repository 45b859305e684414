"""Entry point: ``python -m pipelines.tune`` runs :func:`pipelines.training.tune.main`."""

from pipelines.training.tune import main

if __name__ == "__main__":
    raise SystemExit(main())
