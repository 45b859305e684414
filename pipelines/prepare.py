"""Entry point: ``python -m pipelines.prepare`` runs :func:`pipelines.data.prepare.main`."""

from pipelines.data.prepare import main

if __name__ == "__main__":
    raise SystemExit(main())
