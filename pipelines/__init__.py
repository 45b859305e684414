"""Data side of tf4ctr-keras: dataset specs, preprocessing, reader, manifest and generator.

Public API::

    from pipelines import prepare, make_dataset, load_manifest, generate_criteo
    data_dir = prepare("frappe", "../shared/data/frappe", "data")
    train = make_dataset(data_dir, "train", batch_size=10_000)
"""

from pipelines.datasets import SPECS, get_spec
from pipelines.errors import DataError
from pipelines.generate import generate_criteo
from pipelines.manifest import FieldInfo, Manifest, load_manifest
from pipelines.preprocess import prepare
from pipelines.reader import feature_spec, make_dataset

__all__ = [
    "SPECS",
    "DataError",
    "FieldInfo",
    "Manifest",
    "feature_spec",
    "generate_criteo",
    "get_spec",
    "load_manifest",
    "make_dataset",
    "prepare",
]
