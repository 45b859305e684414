"""Reader: prepared TFRecord shards -> ``tf.data.Dataset`` of ``(features, label)`` batches.

Order of operations (the tensorflow/models ranking reader's): list shards -> interleave the
files -> (shuffle) -> batch -> ``parse_example`` on whole batches -> prefetch. Parsing a batch in
one op is several times faster than parsing record by record.
"""

from __future__ import annotations

import os

import tensorflow as tf

from pipelines.data.manifest import Manifest, load_manifest

DEFAULT_SHUFFLE_BUFFER = 262_144


def feature_spec(
    manifest: Manifest | str | os.PathLike, *, with_label: bool = True
) -> dict[str, tf.io.FixedLenFeature]:
    """The ``tf.io.parse_example`` spec of a prepared dataset's records.

    Args:
        manifest: a :class:`Manifest` or a prepared dataset directory.
        with_label: include the int64 ``label`` feature.

    Returns:
        ``{field: FixedLenFeature([], int64)}`` for scalar fields, ``FixedLenFeature([max_len],
        int64)`` for sequence fields, ``FixedLenFeature([], float32)`` for dense numeric fields
        (NaN = missing), plus ``label``.
    """
    manifest = load_manifest(manifest)
    spec = {
        f.name: tf.io.FixedLenFeature(
            [f.max_len] if f.is_sequence else [], tf.float32 if f.is_dense else tf.int64
        )
        for f in manifest.fields
    }
    if with_label:
        spec[manifest.label_key] = tf.io.FixedLenFeature([], tf.int64)
    return spec


def make_dataset(
    data_dir_or_manifest: Manifest | str | os.PathLike,
    split: str,
    batch_size: int,
    *,
    shuffle: bool | None = None,
    seed: int | None = None,
    repeat: bool = False,
    drop_remainder: bool = False,
    num_parallel_reads: int = tf.data.AUTOTUNE,
    cache: bool = False,
    shuffle_buffer: int | None = None,
    num_shards: int = 1,
    shard_index: int = 0,
) -> tf.data.Dataset:
    """Batches of ``(features, label)`` from a prepared split.

    Args:
        data_dir_or_manifest: prepared dataset directory (with ``manifest.json``) or a
            :class:`Manifest`.
        split: ``train``, ``valid`` or ``test``.
        batch_size: rows per batch.
        shuffle: shuffle shard order and records, reshuffled every epoch. Default: ``True`` for
            ``train``, ``False`` otherwise. Without shuffling the order is deterministic (the
            same every iteration: the raw order for valid and test).
        seed: shuffle seed. With a seed, the sequence of epochs is reproducible; with ``None``,
            shuffling and parallel reads are nondeterministic (slightly faster).
        repeat: repeat forever.
        drop_remainder: drop the last partial batch (default: keep it, as the reference does).
        num_parallel_reads: files read in parallel by the interleave.
        cache: cache the serialized records in memory after the first epoch.
        shuffle_buffer: records in the shuffle buffer (default ``min(rows, 262144)``: the whole
            split for Frappe-sized data).
        num_shards, shard_index: read only the split's files ``shard_index::num_shards`` (one
            worker's part in multi-worker training); the split needs at least ``num_shards``
            files.

    Returns:
        ``tf.data.Dataset`` of ``(features, label)``: ``features`` maps each field to an int64
        tensor ``[B]`` (``[B, max_len]`` for sequences; float32 ``[B]`` for dense numeric
        fields), ``label`` is float32 ``[B]``.
    """
    manifest = load_manifest(data_dir_or_manifest)
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1. Received: `batch_size={batch_size}`")
    files = manifest.shard_paths(split)
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"`shard_index` must be in [0, {num_shards}). Received: {shard_index}")
    if num_shards > len(files):
        raise ValueError(
            f"Split {split!r} of {manifest.directory} has {len(files)} file(s); it cannot be "
            f"split into {num_shards} file shards."
        )
    all_files = len(files)
    files = files[shard_index::num_shards]
    shuffle = (split == "train") if shuffle is None else bool(shuffle)
    rows = -(-manifest.splits[split].rows * len(files) // all_files)  # about, for the buffer
    spec = feature_spec(manifest)
    label_key = manifest.label_key

    # With a seed, the whole pipeline is reproducible; without one, parallel reads may reorder.
    deterministic = (not shuffle) or seed is not None
    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    cycle = (
        len(files)
        if num_parallel_reads == tf.data.AUTOTUNE
        else max(1, min(len(files), num_parallel_reads))
    )
    ds = ds.interleave(
        lambda path: tf.data.TFRecordDataset(path, compression_type="GZIP"),
        cycle_length=cycle,
        block_length=1,
        num_parallel_calls=num_parallel_reads,
        deterministic=deterministic,
    )
    if cache:
        ds = ds.cache()
    if shuffle:
        buffer = shuffle_buffer or max(1, min(rows, DEFAULT_SHUFFLE_BUFFER))
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(
        batch_size,
        drop_remainder=drop_remainder,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, spec)
        label = tf.cast(parsed.pop(label_key), tf.float32)
        return parsed, label

    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    options = tf.data.Options()
    options.deterministic = deterministic
    ds = ds.with_options(options)
    return ds.prefetch(tf.data.AUTOTUNE)
