"""Entry point: ``python -m pipelines.prepare`` runs :func:`pipelines.data.prepare_cli.main`."""

from pipelines.data.prepare_cli import main

if __name__ == "__main__":
    raise SystemExit(main())
