"""SavedModel export for TF Serving: ``python -m export --run-dir DIR --model-base-path OUT``.

The public names are imported on first use (module ``__getattr__``), so that ``python -m
export --help`` and ``import export.raw_rows`` do not load TensorFlow through this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "EXAMPLES_SIGNATURE": "export.serving_module",
    "OUTPUT_NAME": "export.serving_module",
    "SERVING_SIGNATURE": "export.serving_module",
    "RawFeatureServer": "export.serving_module",
    "export_run": "export.exporter",
    "next_version": "export.exporter",
}

__all__ = [
    "EXAMPLES_SIGNATURE",
    "OUTPUT_NAME",
    "SERVING_SIGNATURE",
    "RawFeatureServer",
    "export_run",
    "next_version",
]

if TYPE_CHECKING:
    from export.exporter import export_run, next_version
    from export.serving_module import (
        EXAMPLES_SIGNATURE,
        OUTPUT_NAME,
        SERVING_SIGNATURE,
        RawFeatureServer,
    )


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'export' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
