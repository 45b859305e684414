"""Datasets: one executable spec for every schema (:class:`SchemaSpec`), the generic format
readers and the named readers (libFM, MovieLens). ``get_spec(name_or_schema)``."""

from __future__ import annotations

from pipelines.data.datasets.base import Block, RawFile
from pipelines.data.datasets.spec import SchemaSpec, get_spec
from pipelines.data.schema import bundled_names

__all__ = ["Block", "RawFile", "SchemaSpec", "bundled_names", "get_spec"]
