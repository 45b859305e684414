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


# float32 values: zeros of both signs, negative, the smallest subnormal, near the top, infinities
FLOATS = [0.0, -0.0, -2.5, 1.4e-45, 3e38, -3e38, np.inf, -np.inf, np.nan, 0.1]
# NaNs with other bit patterns: negative, with a payload, all-ones payload, signalling
NAN_BITS = [0xFFC00000, 0x7FC00001, 0x7FFFFFFF, 0x7F800001]


def _bits(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).view(np.uint32)


def _mixed_example(ints: dict[str, list[int]], floats: dict[str, list[float]]) -> tf.train.Example:
    example = _example(ints)
    for k, v in floats.items():
        example.features.feature[k].float_list.value.extend(v)
    return example


def test_float_features_are_byte_identical_to_protobuf():
    # one entry per record: float32 values as protobuf writes them, scalar and length 3
    values = np.array(FLOATS, dtype=np.float32)
    scalar = ExampleEncoder([("price", 1)], float_features={"price"}).encode({"price": values})
    assert scalar == [_mixed_example({}, {"price": [v]}).SerializeToString() for v in FLOATS]
    rows = np.stack([values, np.roll(values, 3), np.roll(values, 7)], axis=1)
    lists = ExampleEncoder([("dense", 3)], float_features={"dense"}).encode({"dense": rows})
    assert lists == [_mixed_example({}, {"dense": r}).SerializeToString() for r in rows.tolist()]
    for record, row in zip(lists, rows, strict=True):
        parsed = tf.train.Example.FromString(record).features.feature["dense"].float_list.value
        np.testing.assert_array_equal(_bits(parsed), _bits(row))  # NaN compared by bits


def test_mixed_int64_and_float_records_are_byte_identical_to_protobuf():
    # features declared in key order: protobuf's deterministic serialization sorts map keys, so
    # a whole multi-entry record must come out byte for byte
    n = len(FLOATS)
    floats = np.array(FLOATS, dtype=np.float32)
    columns = {
        "dense": np.stack([floats, -floats], axis=1),
        "label": np.arange(n) % 2,
        "price": floats[::-1].copy(),
        "user": np.array(BOUNDARIES[:n], dtype=np.int64),
    }
    enc = ExampleEncoder(
        [("dense", 2), ("label", 1), ("price", 1), ("user", 1)],
        max_values={"label": 1},
        float_features={"price", "dense"},
    )
    records = enc.encode(columns)
    for i, record in enumerate(records):
        expected = _mixed_example(
            {"label": [int(columns["label"][i])], "user": [int(columns["user"][i])]},
            {"dense": columns["dense"][i].tolist(), "price": [float(columns["price"][i])]},
        )
        assert record == expected.SerializeToString(deterministic=True)
        parsed = tf.train.Example.FromString(record).features.feature
        assert list(parsed["user"].int64_list.value) == [int(columns["user"][i])]
        np.testing.assert_array_equal(
            _bits(parsed["dense"].float_list.value), _bits(columns["dense"][i])
        )


def test_float_features_parse_back_bit_for_bit():
    rng = np.random.default_rng(11)
    n = 300
    special = np.concatenate(
        [np.array(FLOATS, np.float32), np.array(NAN_BITS, np.uint32).view(np.float32)]
    )
    price = rng.normal(0, 1e3, n).astype(np.float32)
    price[: len(special)] = special
    dense = rng.standard_normal((n, 4)).astype(np.float32)
    dense[-len(special) :, 2] = special
    columns = {
        "label": rng.integers(0, 2, n),
        "price": price,
        "user": rng.choice(BOUNDARIES, n),
        "dense": dense,
        "seq": rng.integers(0, 300, (n, 3)),
    }
    enc = ExampleEncoder(
        [("label", 1), ("price", 1), ("user", 1), ("dense", 4), ("seq", 3)],
        max_values={"seq": 300},
        float_features=["price", "dense"],
    )
    spec = {
        "label": tf.io.FixedLenFeature([], tf.int64),
        "price": tf.io.FixedLenFeature([], tf.float32),
        "user": tf.io.FixedLenFeature([], tf.int64),
        "dense": tf.io.FixedLenFeature([4], tf.float32),
        "seq": tf.io.FixedLenFeature([3], tf.int64),
    }
    batch = tf.io.parse_example(tf.constant(enc.encode(columns)), spec)
    for name in ("price", "dense"):
        assert batch[name].dtype == tf.float32
        np.testing.assert_array_equal(_bits(batch[name].numpy()), _bits(columns[name]))
    for name in ("label", "user", "seq"):
        assert batch[name].dtype == tf.int64
        np.testing.assert_array_equal(batch[name].numpy(), columns[name])


def test_float64_values_round_like_np_float32():
    # not representable in float32: ties to even, a subnormal, a tiny value that rounds to 0
    wide = np.array(
        [0.1, 1 / 3, 2.0**24 + 1, 2.0**24 + 3, -(2.0**-149) * 1.5, 1e-46, 3.4e38, -np.nan],
        dtype=np.float64,
    )
    enc = ExampleEncoder([("x", 1)], float_features={"x"})
    records = enc.encode({"x": wide})
    batch = tf.io.parse_example(tf.constant(records), {"x": tf.io.FixedLenFeature([], tf.float32)})
    np.testing.assert_array_equal(_bits(batch["x"].numpy()), np.float32(wide).view(np.uint32))
    # and like tf.train.FloatList, which casts the same doubles
    assert records == [_mixed_example({}, {"x": [v]}).SerializeToString() for v in wide.tolist()]
    # python lists and integer arrays are real values too
    assert enc.encode({"x": [0.1, 2]}) == enc.encode({"x": np.float32([0.1, 2.0])})


def test_int64_records_do_not_change_when_float_features_are_added():
    ints = {"user": np.array(BOUNDARIES), "seq": np.array([[1, 2]] * len(BOUNDARIES))}
    alone = ExampleEncoder([("user", 1), ("seq", 2)]).encode(ints)
    with_floats = ExampleEncoder([("user", 1), ("seq", 2), ("p", 1)], float_features={"p"}).encode(
        {**ints, "p": np.zeros(len(BOUNDARIES))}
    )
    p_entry = _mixed_example({}, {"p": [0.0]}).SerializeToString()[2:]  # Example tag, length
    for a, b in zip(alone, with_floats, strict=True):
        assert b[2:] == a[2:] + p_entry


def test_float_feature_errors_name_the_feature():
    features = [("user", 1), ("price", 1), ("dense", 2)]
    with pytest.raises(ValueError, match=r"float features take no bound: \['price'\]"):
        ExampleEncoder(features, max_values={"user": 10, "price": 10}, float_features={"price"})
    with pytest.raises(ValueError, match=r"`float_features` names undeclared features: \['cost'\]"):
        ExampleEncoder(features, float_features={"cost"})
    with pytest.raises(ValueError, match=r"`max_values` names undeclared features: \['usr'\]"):
        ExampleEncoder(features, max_values={"usr": 10})
    with pytest.raises(TypeError, match="collection of names"):
        ExampleEncoder(features, float_features="price")
    with pytest.raises(ValueError, match=r"length must be in \[1, 8\]. Received: `dense`=9"):
        ExampleEncoder([("dense", 9)], float_features={"dense"})

    enc = ExampleEncoder(features, float_features={"price", "dense"})
    good = {"user": np.array([1, 2]), "price": np.array([-1.5, np.nan]), "dense": np.ones((2, 2))}
    assert len(enc.encode(good)) == 2  # negative and NaN floats are fine
    with pytest.raises(ValueError, match=r"missing \['dense'\], unknown \[\]"):
        enc.encode({k: v for k, v in good.items() if k != "dense"})
    with pytest.raises(ValueError, match=r"missing \[\], unknown \['extra'\]"):
        enc.encode({**good, "extra": np.ones(2)})
    with pytest.raises(ValueError, match=r"`dense` has shape \(2, 3\); expected \(2, 2\)"):
        enc.encode({**good, "dense": np.ones((2, 3))})
    with pytest.raises(ValueError, match=r"`dense` has shape \(4,\); expected \(2, 2\)"):
        enc.encode({**good, "dense": np.ones(4)})
    with pytest.raises(ValueError, match=r"`price` has shape \(3,\); expected \(2,\)"):
        enc.encode({**good, "price": np.ones(3)})
    with pytest.raises(ValueError, match="Float feature `price` holds <U1 values"):
        enc.encode({**good, "price": np.array(["a", "b"])})
    # an int64 feature given floats is a forgotten float_features entry, not a silent truncation
    with pytest.raises(ValueError, match="`user` holds float64 values but is int64"):
        enc.encode({**good, "user": np.array([1.0, 2.5])})


def test_records_that_would_need_two_byte_lengths_are_refused():
    # 8 + len(name) + 4k bytes for a float entry, 8 + len(name) + k * varint width for int64
    ExampleEncoder([("f" * 87, 8)], float_features={"f" * 87})  # 127 bytes: fits
    with pytest.raises(ValueError, match=r"Feature `f{88}` \(length 8\) can take 128 bytes"):
        ExampleEncoder([("f" * 88, 8)], float_features={"f" * 88})
    ExampleEncoder([("s" * 47, 8)])  # 8 + 47 + 8 * 9 (2**63 - 1 takes 9 varint bytes) = 127
    with pytest.raises(ValueError, match=r"`s{48}` \(length 8\) can take 128 bytes.*max_values"):
        ExampleEncoder([("s" * 48, 8)])
    ExampleEncoder([("s" * 48, 8)], max_values={"s" * 48: 2**56 - 1})  # 8-byte slots: 120


def test_values_above_max_values_are_refused():
    enc = ExampleEncoder([("item", 1), ("label", 1)], max_values={"item": 300, "label": 1})
    assert len(enc.encode({"item": np.array([300]), "label": np.array([1])})) == 1  # inclusive
    with pytest.raises(ValueError, match="`item` holds 20000, above its max_values 300"):
        enc.encode({"item": np.array([1, 20000]), "label": np.array([0, 1])})
    with pytest.raises(ValueError, match="`user` is declared twice"):
        ExampleEncoder([("user", 1), ("user", 2)])
