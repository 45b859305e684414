"""Data side of tf4ctr-keras: dataset specs, preprocessing, reader, manifest and generator.

Public API::

    from pipelines.preprocess import prepare          # raw -> DATA_DIR/<dataset>/ (reused if unchanged)
    from pipelines.reader import make_dataset, feature_spec
    from pipelines.manifest import load_manifest
    from pipelines.generate import generate_criteo

The names below are also importable from ``pipelines`` itself (lazily, so that
``python -m pipelines.prepare`` / ``python -m pipelines.generate`` run cleanly). The package-level
name ``pipelines.prepare`` is the CLI module; the function is ``pipelines.preprocess.prepare``,
also exported here as ``prepare_dataset``.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "SPECS": "pipelines.datasets",
    "get_spec": "pipelines.datasets",
    "DataError": "pipelines.errors",
    "generate_criteo": "pipelines.generate",
    "FieldInfo": "pipelines.manifest",
    "Manifest": "pipelines.manifest",
    "load_manifest": "pipelines.manifest",
    "feature_spec": "pipelines.reader",
    "make_dataset": "pipelines.reader",
    "prepare_dataset": "pipelines.preprocess",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'pipelines' has no attribute {name!r}")
    module = importlib.import_module(_EXPORTS[name])
    return getattr(module, "prepare" if name == "prepare_dataset" else name)
