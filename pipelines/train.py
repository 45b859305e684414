"""Entry point: ``python -m pipelines.train`` runs :func:`pipelines.training.cli.main`."""

from pipelines.training.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
