"""The vectorized tf.train.Example writer against TensorFlow's own protobuf and parser."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from pipelines.data.example_codec import ExampleEncoder

# Values at every varint length boundary (1 byte up to 127, 2 bytes from 128, ...), and the top.
BOUNDARIES = [0, 1, 127, 128, 16383, 16384, 2**21 - 1, 2**21, 2**35, 2**56 - 1, 2**63 - 1]


def _example(values: dict[str, list[int]]) -> tf.train.Example:
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                k: tf.train.Feature(int64_list=tf.train.Int64List(value=v))
                for k, v in values.items()
            }
        )
    )


def test_a_one_feature_record_is_byte_identical_to_protobuf():
    # one map entry: protobuf's serialization has no ordering freedom, so the bytes must agree
    enc = ExampleEncoder([("user", 1)])
    records = enc.encode({"user": np.array(BOUNDARIES, dtype=np.int64)})
    assert records == [_example({"user": [v]}).SerializeToString() for v in BOUNDARIES]


def test_list_features_are_packed_like_protobuf():
    enc = ExampleEncoder([("genres", 3)])
    rows = np.array([[0, 1, 2], [127, 128, 16384], [2**63 - 1, 5, 0]], dtype=np.int64)
    records = enc.encode({"genres": rows})
    assert records == [_example({"genres": list(r)}).SerializeToString() for r in rows.tolist()]


def test_many_features_parse_back_to_the_same_values():
    rng = np.random.default_rng(7)
    n = 200
    columns = {
        "label": rng.integers(0, 2, n),
        "user": rng.choice(BOUNDARIES, n),
        "a_longer_feature_name": rng.integers(0, 2**40, n),
        "seq": rng.integers(0, 300, (n, 4)),
    }
    enc = ExampleEncoder([("label", 1), ("user", 1), ("a_longer_feature_name", 1), ("seq", 4)])
    records = enc.encode(columns)
    assert len(records) == n
    for i in (0, 1, n // 2, n - 1):
        parsed = tf.train.Example.FromString(records[i]).features.feature
        assert sorted(parsed) == sorted(columns)
        for name, values in columns.items():
            expected = np.atleast_1d(values[i]).tolist()
            assert list(parsed[name].int64_list.value) == expected
    spec = {
        "label": tf.io.FixedLenFeature([], tf.int64),
        "user": tf.io.FixedLenFeature([], tf.int64),
        "a_longer_feature_name": tf.io.FixedLenFeature([], tf.int64),
        "seq": tf.io.FixedLenFeature([4], tf.int64),
    }
    batch = tf.io.parse_example(tf.constant(records), spec)
    for name, values in columns.items():
        np.testing.assert_array_equal(batch[name].numpy(), values)


def test_max_values_only_narrow_the_slots():
    # slots sized for values < 300 (2 varint bytes) give the same bytes as the default width
    columns = {"item": np.array([0, 127, 128, 299]), "seq": np.array([[1, 299], [0, 128]] * 2)}
    features = [("item", 1), ("seq", 2)]
    narrow = ExampleEncoder(features, max_values={"item": 300, "seq": 300}).encode(columns)
    assert narrow == ExampleEncoder(features).encode(columns)


def test_bad_input_names_the_feature():
    with pytest.raises(ValueError, match="`user` holds negative ids"):
        ExampleEncoder([("user", 1)]).encode({"user": np.array([3, -1])})
    with pytest.raises(ValueError, match="<= 100 bytes"):
        ExampleEncoder([("x" * 101, 1)])
    with pytest.raises(ValueError, match=r"length must be in \[1, 8\]. Received: `seq`=9"):
        ExampleEncoder([("seq", 9)])
