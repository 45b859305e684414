"""Dataset specs and their registry: ``get_spec(name)``."""

from __future__ import annotations

from typing import Any

from pipelines.data.datasets.base import DatasetSpec, FieldSpec, RawFile
from pipelines.data.datasets.criteo import CriteoSpec
from pipelines.data.datasets.frappe import FrappeSpec
from pipelines.data.datasets.kkbox import KKBoxSpec
from pipelines.data.datasets.ml_1m import ML1MSpec
from pipelines.data.datasets.movielenslatest import MovielensLatestSpec

SPECS: dict[str, type[DatasetSpec]] = {
    "criteo": CriteoSpec,
    "frappe": FrappeSpec,
    "movielenslatest": MovielensLatestSpec,
    "ml-1m": ML1MSpec,
    "kkbox": KKBoxSpec,
}


def get_spec(name: str, **options: Any) -> DatasetSpec:
    """Returns the spec of dataset ``name``.

    Args:
        name: one of ``criteo, frappe, movielenslatest, ml-1m, kkbox``.
        **options: spec options (KKBox: ``sequence_sep``).

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    if name not in SPECS:
        raise ValueError(f"Unknown dataset `{name}`. Valid datasets: {', '.join(SPECS)}")
    return SPECS[name](**options)


__all__ = ["SPECS", "DatasetSpec", "FieldSpec", "RawFile", "get_spec"]
