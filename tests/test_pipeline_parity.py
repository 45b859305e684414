"""Parity: the ids the pipeline writes equal Keras lookup layers' ids over the written vocabularies.

This is the contract export relies on: the serving graph maps raw values with
``StringLookup``/``IntegerLookup`` built from ``vocab/<field>.txt`` and must reproduce the
training ids exactly, unseen values included.
"""

from __future__ import annotations

import csv
import gzip
import io

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines.data import load_manifest
from pipelines.data.prepare import hash_split, prepare
from pipelines.data.transforms import LOG_SQUARED
from tests.pipeline_fixtures import CRITEO_SAMPLE, read_split, require_shared
from tests.test_pipeline_kkbox import TEST, TRAIN, VALID, _csv, write_text

INTEGER_FIELDS = tuple(f"I{i}" for i in range(1, 14))
CATEGORICAL_FIELDS = tuple(f"C{i}" for i in range(1, 27))


def log_squared_tf(values):
    return tf.cast(LOG_SQUARED.apply_tf(values), tf.int64)


@pytest.fixture(scope="module")
def criteo(tmp_path_factory):
    raw = require_shared(CRITEO_SAMPLE)
    lines = gzip.decompress(raw.read_bytes()).decode().splitlines()
    return prepare("criteo", str(raw), str(tmp_path_factory.mktemp("parity"))), lines


@pytest.mark.parametrize("split", ["valid", "test"])
def test_criteo_ids_equal_string_lookup_on_raw_values(criteo, split):
    data_dir, lines = criteo
    manifest = load_manifest(data_dir)
    rows = [
        ln.split("\t")
        for ln, s in zip(lines, hash_split(np.arange(1, len(lines) + 1), 2018), strict=True)
        if s == ("train", "valid", "test").index(split)
    ]
    got = read_split(data_dir, split)
    unseen = 0
    for j, name in enumerate(INTEGER_FIELDS + CATEGORICAL_FIELDS, start=1):
        raw = tf.constant([r[j] for r in rows])
        lookup = keras.layers.StringLookup(
            vocabulary=manifest.vocabulary(name), num_oov_indices=1, mask_token=None
        )
        if name in INTEGER_FIELDS:  # raw number -> in-graph log_squared -> string token
            numbers = tf.strings.to_number(tf.where(raw == "", "0", raw), tf.float64)
            tokens = tf.where(raw == "", "", tf.strings.as_string(log_squared_tf(numbers)))
        else:
            tokens = raw
        ids = lookup(tokens).numpy()
        np.testing.assert_array_equal(ids, got[name], err_msg=name)
        unseen += int(((ids == 0) & (raw.numpy() != b"")).sum())
    assert unseen > 100  # the comparison covers plenty of values unseen in train


def test_criteo_numeric_ids_equal_integer_lookup(criteo):
    data_dir, lines = criteo
    manifest = load_manifest(data_dir)
    rows = [
        ln.split("\t")
        for ln, s in zip(lines, hash_split(np.arange(1, len(lines) + 1), 2018), strict=True)
        if s == 2
    ]
    got = read_split(data_dir, "test")
    for j, name in enumerate(INTEGER_FIELDS, start=1):
        present = np.array([r[j] != "" for r in rows])
        values = tf.constant([float(r[j]) for r in rows if r[j] != ""], tf.float64)
        vocab = [int(t) for t in manifest.vocabulary(name)]
        lookup = keras.layers.IntegerLookup(vocabulary=vocab, num_oov_indices=1, mask_token=None)
        np.testing.assert_array_equal(
            lookup(log_squared_tf(values)).numpy(), got[name][present], err_msg=name
        )
        assert (got[name][~present] == 0).all()  # missing -> 0 (OOV)


def test_kkbox_sequence_ids_equal_string_lookup_with_mask(tmp_path):
    raw = tmp_path / "raw"
    write_text(raw / "train.csv", _csv(TRAIN))
    write_text(raw / "valid.csv", _csv(VALID))
    write_text(raw / "test.csv", _csv(TEST))
    data_dir = prepare("kkbox", str(raw), str(tmp_path / "out"), max_bad_fraction=0.5)
    manifest = load_manifest(data_dir)
    for split, text in (("train", _csv(TRAIN)), ("test", _csv(TEST))):
        records = list(csv.DictReader(io.StringIO(text)))
        got = read_split(data_dir, split)
        for name in ("genre_ids", "artist_name"):
            lookup = keras.layers.StringLookup(
                vocabulary=manifest.vocabulary(name), mask_token="", num_oov_indices=1
            )
            padded = []
            for r in records:
                tokens = [t.strip() for t in r[name].split("|") if t.strip()][:3]
                padded.append(tokens + [""] * (3 - len(tokens)))
            ids = lookup(tf.constant(padded)).numpy()
            if split == "train":  # permuted within the block: compare as multisets
                assert sorted(ids.tolist()) == sorted(got[name].tolist())
            else:
                np.testing.assert_array_equal(ids, got[name])
        lookup = keras.layers.StringLookup(
            vocabulary=manifest.vocabulary("msno"), num_oov_indices=1, mask_token=None
        )
        assert sorted(lookup(tf.constant([r["msno"] for r in records])).numpy().tolist()) == sorted(
            got["msno"].tolist()
        )
    # The manifest's embedding input dims are the lookup layers' output ranges.
    for name in ("genre_ids", "artist_name"):
        seq = keras.layers.StringLookup(
            vocabulary=manifest.vocabulary(name), mask_token="", num_oov_indices=1
        )
        assert manifest.field(name).vocab_size == seq.vocabulary_size()
    cat = keras.layers.StringLookup(
        vocabulary=manifest.vocabulary("msno"), num_oov_indices=1, mask_token=None
    )
    assert manifest.field("msno").vocab_size == cat.vocabulary_size()
