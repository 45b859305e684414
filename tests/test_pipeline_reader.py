"""Reader: shapes and dtypes, deterministic evaluation order, per-epoch reshuffling, remainders."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from pipelines.data import feature_spec, load_manifest, make_dataset
from pipelines.data.prepare import prepare
from tests.pipeline_fixtures import generated_criteo, read_split  # noqa: F401
from tests.test_pipeline_kkbox import TEST, TRAIN, VALID, _csv, write_text


@pytest.fixture(scope="module")
def generated(generated_criteo, tmp_path_factory):  # noqa: F811
    return prepare(
        "criteo", str(generated_criteo), str(tmp_path_factory.mktemp("reader")), shards=4
    )


def _rows(ds) -> np.ndarray:
    out = []
    for features, label in ds:
        out.append(np.column_stack([features["C3"].numpy(), features["I5"].numpy(), label.numpy()]))
    return np.concatenate(out)


def test_batches_have_named_int64_features_and_float_labels(generated):
    manifest = load_manifest(generated)
    features, label = next(iter(make_dataset(generated, "train", 256, seed=1)))
    assert sorted(features) == sorted(manifest.field_names)
    assert all(v.dtype == tf.int64 and v.shape == (256,) for v in features.values())
    assert label.dtype == tf.float32 and label.shape == (256,)
    assert set(np.unique(label.numpy())) <= {0.0, 1.0}
    spec = feature_spec(manifest)
    assert spec["label"] == tf.io.FixedLenFeature([], tf.int64) and len(spec) == 40


def test_eval_order_is_deterministic_and_equals_the_shard_order(generated):
    rows = load_manifest(generated).splits["valid"].rows
    ds = make_dataset(generated, "valid", 500)
    first, second = _rows(ds), _rows(ds)
    np.testing.assert_array_equal(first, second)
    assert len(first) == rows
    raw = read_split(generated, "valid")
    np.testing.assert_array_equal(first[:, 0], raw["C3"])


def test_train_reshuffles_every_epoch_and_keeps_the_last_partial_batch(generated):
    rows = load_manifest(generated).splits["train"].rows
    sizes = [int(label.shape[0]) for _, label in make_dataset(generated, "train", 1000)]
    assert sum(sizes) == rows and sizes[-1] == rows % 1000 and rows % 1000 != 0
    tf.random.set_seed(7)  # (training sets TensorFlow's global seed to the run's seed)
    two = make_dataset(generated, "train", 1000, seed=7, epochs=2)
    sizes = [int(label.shape[0]) for _, label in two]
    assert sizes == ([1000] * (rows // 1000) + [rows % 1000]) * 2  # a partial batch per epoch
    both = _rows(two)
    a, b = both[:rows], both[rows:]
    assert not np.array_equal(a, b)  # another order each epoch
    np.testing.assert_array_equal(np.sort(a, axis=0), np.sort(b, axis=0))  # same rows
    np.testing.assert_array_equal(_rows(two), both)  # iterating again: the same epochs
    c = _rows(make_dataset(generated, "train", 1000, seed=7))
    np.testing.assert_array_equal(a, c)  # seeded: reproducible across runs


def test_an_epoch_order_depends_on_the_seed_and_the_epoch_number_only(generated):
    """A run resumed at epoch k builds its reader with first_epoch=k (in a new process): it
    must read epoch k exactly as the uninterrupted run did, whatever was read before."""
    rows = load_manifest(generated).splits["train"].rows
    tf.random.set_seed(3)
    uninterrupted = _rows(make_dataset(generated, "train", 700, seed=3, epochs=4))
    for k in (1, 3):
        tf.random.set_seed(3)
        resumed = _rows(make_dataset(generated, "train", 700, seed=3, first_epoch=k, epochs=4 - k))
        np.testing.assert_array_equal(resumed, uninterrupted[k * rows :])
    passes = uninterrupted.reshape(4, rows, 3)
    assert all(not np.array_equal(passes[i], passes[j]) for i in range(4) for j in range(i))
    # A stream (drop_remainder: batches run across passes) continued after m batches, as a
    # multi-worker run resumes: pass skip // rows from its row skip % rows, the same batches.
    m = 2 * rows // 500 + 3
    skip = m * 500  # inside pass 2
    tf.random.set_seed(3)
    stream = make_dataset(generated, "train", 500, seed=3, repeat=True, drop_remainder=True)
    head = _rows(stream.take(m + 10))
    tf.random.set_seed(3)
    continued = make_dataset(
        generated,
        "train",
        500,
        seed=3,
        first_epoch=skip // rows,
        skip_rows=skip % rows,
        repeat=True,
        drop_remainder=True,
    )
    assert skip // rows == 2 and skip % rows > 0
    np.testing.assert_array_equal(_rows(continued.take(10)), head[skip:])
    with pytest.raises(ValueError, match="needs a `seed`"):
        make_dataset(generated, "train", 10, skip_rows=5)


def test_drop_remainder_repeat_and_cache(generated):
    rows = load_manifest(generated).splits["test"].rows
    dropped = [
        int(y.shape[0]) for _, y in make_dataset(generated, "test", 300, drop_remainder=True)
    ]
    assert dropped == [300] * (rows // 300)
    repeated = make_dataset(generated, "test", 300, repeat=True, cache=True).take(rows // 300 + 5)
    assert sum(1 for _ in repeated) == rows // 300 + 5
    assert make_dataset(generated, "test", 300).element_spec[1].shape.as_list() == [None]
    with pytest.raises(ValueError, match="Unknown split"):
        make_dataset(generated, "dev", 10)


def test_sequence_fields_come_as_fixed_length_matrices(tmp_path):
    raw = tmp_path / "raw"
    write_text(raw / "train.csv", _csv(TRAIN))
    write_text(raw / "valid.csv", _csv(VALID))
    write_text(raw / "test.csv", _csv(TEST))
    data_dir = prepare("kkbox", str(raw), str(tmp_path / "out"), max_bad_fraction=0.5)
    features, label = next(iter(make_dataset(data_dir, "train", 4, shuffle=False)))
    assert features["genre_ids"].shape == (4, 3) and features["genre_ids"].dtype == tf.int64
    assert features["msno"].shape == (4,)
