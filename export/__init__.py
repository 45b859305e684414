"""SavedModel export for TF Serving: ``python -m export --run-dir DIR --model-base-path OUT``."""

from export.exporter import export_run, next_version
from export.serving_module import (
    EXAMPLES_SIGNATURE,
    OUTPUT_NAME,
    SERVING_SIGNATURE,
    RawFeatureServer,
)

__all__ = [
    "EXAMPLES_SIGNATURE",
    "OUTPUT_NAME",
    "SERVING_SIGNATURE",
    "RawFeatureServer",
    "export_run",
    "next_version",
]
