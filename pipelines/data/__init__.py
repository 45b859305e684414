"""The data side: dataset schemas and their specs, transforms, preprocessing, file I/O, example codec, manifest, reader and
generator. Nothing here imports :mod:`pipelines.training` or :mod:`tf4ctr_keras`.

Public API (imported lazily, so that light modules such as :mod:`pipelines.data.errors` do not
pull in TensorFlow)::

    from pipelines.data import prepare, make_dataset, feature_spec, load_manifest, generate_criteo
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "get_spec": "pipelines.data.datasets",
    "load_schema": "pipelines.data.schema",
    "encode_file": "pipelines.data.prepare",
    "DataError": "pipelines.data.errors",
    "generate_criteo": "pipelines.data.generate",
    "FieldInfo": "pipelines.data.manifest",
    "Manifest": "pipelines.data.manifest",
    "load_manifest": "pipelines.data.manifest",
    "feature_spec": "pipelines.data.reader",
    "make_dataset": "pipelines.data.reader",
    "prepare": "pipelines.data.prepare",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'pipelines.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
