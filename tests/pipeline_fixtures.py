"""Helpers and fixtures for the pipeline tests (import them from the test modules)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from pipelines.data.manifest import load_manifest
from pipelines.data.reader import feature_spec

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FRAPPE_DIR = SHARED_DATA / "frappe"
CRITEO_SAMPLE = SHARED_DATA / "criteo" / "kaggle_dac_train_first10000.txt.gz"


def require_shared(path: Path) -> Path:
    """Skips the test when the staged real data is not available."""
    if not path.exists():
        pytest.skip(
            f"real data not staged: {path} is absent (expected ../shared/data next to the repo)"
        )
    return path


def read_split(data_dir, split: str) -> dict[str, np.ndarray]:
    """All records of a split in shard-interleaved (deterministic) order, as numpy arrays."""
    manifest = load_manifest(data_dir)
    spec = feature_spec(manifest)
    files = manifest.shard_paths(split)
    ds = tf.data.Dataset.from_tensor_slices(files).interleave(
        lambda p: tf.data.TFRecordDataset(p, compression_type="GZIP"),
        cycle_length=len(files),
        block_length=1,
    )
    out = {k: [] for k in spec}
    for batch in ds.batch(100_000):
        parsed = tf.io.parse_example(batch, spec)
        for k, v in parsed.items():
            out[k].append(v.numpy())
    return {k: np.concatenate(v) if v else np.zeros((0,), np.int64) for k, v in out.items()}


def vocab_ids(data_dir, field: str) -> dict[str, int]:
    """token -> id for a field, straight from its vocab file (line i -> i + 1, sequences i + 2)."""
    manifest = load_manifest(data_dir)
    offset = 2 if manifest.field(field).is_sequence else 1
    return {tok: i + offset for i, tok in enumerate(manifest.vocabulary(field))}


def write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    """Writes a raw file, gzip-compressed when the name ends with .gz."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode(encoding)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data, mtime=0))
    else:
        path.write_bytes(data)
    return path


@pytest.fixture(scope="session")
def generated_criteo(tmp_path_factory) -> Path:
    """20,000 generated Criteo rows (seed 3), gzip."""
    from pipelines.data.generate import generate_criteo

    path = tmp_path_factory.mktemp("gen") / "train.txt.gz"
    generate_criteo(str(path), 20_000, seed=3)
    return path
