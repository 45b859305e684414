"""Entry point: ``python -m pipelines.generate`` runs :func:`pipelines.data.generate.main`."""

from pipelines.data.generate import main

if __name__ == "__main__":
    raise SystemExit(main())
