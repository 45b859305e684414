"""Criteo: the real 10,000-row Kaggle sample, checked against a plain-Python re-implementation."""

from __future__ import annotations

import gzip
import math
from collections import Counter

import numpy as np
import pytest

from pipelines.data import load_manifest
from pipelines.data.prepare import hash_split, prepare
from pipelines.data.transforms import LOG_SQUARED
from tests.pipeline_fixtures import CRITEO_SAMPLE, read_split, require_shared, vocab_ids, write_text

INTEGER_FIELDS = tuple(f"I{i}" for i in range(1, 14))
CATEGORICAL_FIELDS = tuple(f"C{i}" for i in range(1, 27))
FIELDS = INTEGER_FIELDS + CATEGORICAL_FIELDS


def _token(i: int, value: str) -> str:
    """The Criteo_x4 raw token of column ``i`` (1-based field position), by hand."""
    if i > 13 or value == "":
        return value
    v = int(value)
    return str(math.floor(math.log(v) ** 2)) if v > 2 else str(v)


@pytest.fixture(scope="module")
def criteo(tmp_path_factory):
    raw = require_shared(CRITEO_SAMPLE)
    out = tmp_path_factory.mktemp("criteo")
    return prepare("criteo", str(raw), str(out)), gzip.decompress(
        raw.read_bytes()
    ).decode().splitlines()


def test_log_squared_matches_the_reference_formula():
    values = np.array([-3, -1, 0, 1, 2, 3, 15, 100, 1382, np.nan])
    got = LOG_SQUARED.apply(values)
    np.testing.assert_array_equal(got[:-1], [-3, -1, 0, 1, 2, 1, 7, 21, 52])
    assert np.isnan(got[-1])


def test_criteo_sample_rows_labels_and_splits(criteo):
    data_dir, lines = criteo
    manifest = load_manifest(data_dir)
    assert len(lines) == 10_000
    splits = hash_split(np.arange(1, 10_001), 2018)
    labels = np.array([int(ln.split("\t")[0]) for ln in lines])
    for i, split in enumerate(("train", "valid", "test")):
        assert manifest.splits[split].rows == int((splits == i).sum())
        assert manifest.splits[split].positives == int(labels[splits == i].sum())
    assert sum(s.rows for s in manifest.splits.values()) == 10_000
    assert sum(s.positives for s in manifest.splits.values()) == 2_182  # SOURCE.md: 21.82 %
    assert (
        manifest.splits["train"].rows,
        manifest.splits["valid"].rows,
        manifest.splits["test"].rows,
    ) == (
        8033,
        946,
        1021,
    )
    assert manifest.group_key is None
    assert manifest.field_names == list(FIELDS)
    assert manifest.field("I5").kind == "numeric-bucketed"
    assert manifest.field("I5").transform == "log_squared"
    assert manifest.field("C1").kind == "categorical"
    assert all(v == {} for files in manifest.raw["malformed"].values() for v in files.values())


def test_criteo_vocabularies_equal_a_hand_count(criteo):
    data_dir, lines = criteo
    manifest = load_manifest(data_dir)
    train = hash_split(np.arange(1, 10_001), 2018) == 0
    counts = {f: Counter() for f in FIELDS}
    for line, is_train in zip(lines, train, strict=True):
        if is_train:
            cols = line.split("\t")
            for i, f in enumerate(FIELDS, start=1):
                if cols[i] != "":
                    counts[f][_token(i, cols[i])] += 1
    for f in FIELDS:
        expected = sorted(
            (t for t, c in counts[f].items() if c >= 10), key=lambda t: (-counts[f][t], t)
        )
        assert manifest.vocabulary(f) == expected, f
        assert manifest.field(f).vocab_size == len(expected) + 1
        assert manifest.field(f).reference_vocab_size == len(expected) + 2
    # A few sizes pinned by hand from the sample.
    assert manifest.field("I1").num_tokens == 14
    assert manifest.field("C9").num_tokens == 2
    assert manifest.field("C3").num_tokens == 42


def test_criteo_encoded_rows_equal_hand_encoding(criteo):
    data_dir, lines = criteo
    splits = hash_split(np.arange(1, 10_001), 2018)
    vocab = {f: vocab_ids(data_dir, f) for f in FIELDS}
    expected = np.array(
        [
            [
                vocab[f].get(_token(i, c), 0)
                for i, (f, c) in enumerate(zip(FIELDS, ln.split("\t")[1:], strict=True), 1)
            ]
            for ln in lines
        ]
    )
    labels = np.array([int(ln.split("\t")[0]) for ln in lines])
    for i, split in enumerate(("train", "valid", "test")):
        got = read_split(data_dir, split)
        matrix = np.stack([got[f] for f in FIELDS], axis=1)
        want = expected[splits == i]
        if split == "train":  # train is permuted within blocks: compare as multisets of rows
            key = np.lexsort(np.column_stack([matrix, got["label"]]).T)
            want_key = np.lexsort(np.column_stack([want, labels[splits == i]]).T)
            np.testing.assert_array_equal(matrix[key], want[want_key])
        else:  # raw order
            np.testing.assert_array_equal(matrix, want)
            np.testing.assert_array_equal(got["label"], labels[splits == i])
    # First raw row, literally: I1=1 I3=5 I5=1382 I12 missing, C1=68fd1e64.
    first_valid = int(np.flatnonzero(splits == 1)[0])
    row = read_split(data_dir, "valid")
    cols = lines[first_valid].split("\t")
    assert row["I5"][0] == vocab["I5"].get(_token(5, cols[5]), 0)
    assert _token(5, "1382") == "52" and _token(3, "5") == "2" and _token(1, "2") == "2"
    assert _token(12, "") == ""  # missing -> id 0
    empty = [i for i, c in enumerate(cols[1:], 1) if c == ""]
    for i in empty:
        assert row[FIELDS[i - 1]][0] == 0


def test_criteo_directory_with_official_splits(tmp_path):
    rows = [
        "1\t5\t\t3\t" + "\t".join(["1"] * 10) + "\t" + "\t".join(f"{j:08x}" for j in range(26)),
        "0\t-1\t2\t100\t" + "\t".join([""] * 10) + "\t" + "\t".join([""] * 26),
    ]
    for split in ("train", "valid", "test"):
        write_text(tmp_path / "raw" / f"{split}.txt", "\n".join(rows * 3) + "\n")
    data_dir = prepare("criteo", str(tmp_path / "raw"), str(tmp_path / "out"), min_count=2)
    manifest = load_manifest(data_dir)
    assert [manifest.splits[s].rows for s in ("train", "valid", "test")] == [6, 6, 6]
    assert manifest.options["split"] == "official"
    # I1: 5 -> floor(ln(5)^2) = 2 and -1 -> -1, 3 times each: a tie, broken by token ("-" < "2").
    assert manifest.vocabulary("I1") == ["-1", "2"]
    assert manifest.vocabulary("I2") == ["2"]  # the empty value is missing, never a token
    assert manifest.vocabulary("I3") == ["1", "21"]  # 3 -> 1, 100 -> 21
    got = read_split(data_dir, "test")
    assert got["I1"].tolist() == [2, 1] * 3
    assert got["I2"].tolist() == [0, 1] * 3
    assert got["I3"].tolist() == [1, 2] * 3
    assert got["I4"].tolist() == [1, 0] * 3
    assert got["C1"].tolist() == [1, 0] * 3
    assert got["label"].tolist() == [1, 0] * 3


def test_raw_input_through_a_tensorflow_file_system_uri(criteo, tmp_path):
    # ram:// is TensorFlow's in-memory file system: the same code path as gs://.
    import tensorflow as tf

    data_dir, _ = criteo
    uri = "ram://pipeline-test/criteo/train.txt.gz"
    with tf.io.gfile.GFile(uri, "wb") as f:
        f.write(CRITEO_SAMPLE.read_bytes())
    from_uri = prepare("criteo", "ram://pipeline-test/criteo", str(tmp_path))
    assert load_manifest(from_uri).raw["raw_files"][0]["path"] == uri
    for split in ("valid", "test"):
        a, b = read_split(from_uri, split), read_split(data_dir, split)
        for name in FIELDS:
            np.testing.assert_array_equal(a[name], b[name])
