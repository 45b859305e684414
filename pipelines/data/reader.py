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
    manifest: Manifest | str | os.PathLike, *, with_label: bool = True, with_group: bool = False
) -> dict[str, tf.io.FixedLenFeature]:
    """The ``tf.io.parse_example`` spec of a prepared dataset's records.

    Args:
        manifest: a :class:`Manifest` or a prepared dataset directory.
        with_label: include the int64 ``label`` feature.
        with_group: include the int64 gAUC group feature (``manifest.group_feature``), where
            the data has one.

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
    if with_group and manifest.group_feature:
        spec[manifest.group_feature] = tf.io.FixedLenFeature([], tf.int64)
    return spec


def pass_seeds(seed: int, epoch: int | tf.Tensor) -> tuple:
    """The (file order, record order) shuffle seeds of pass ``epoch`` of a seeded reader.

    A pass's order is a function of ``(seed, epoch)`` alone (given TensorFlow's global seed,
    which training sets to the same ``seed``), so a run resumed at epoch ``k`` in a new process
    reads epoch ``k`` in the order the uninterrupted run did. int64 arithmetic; wrapping is
    harmless (TensorFlow reduces seeds modulo 2**31 - 1).
    """
    base = tf.cast(seed, tf.int64) * 1_000_003 + 2 * tf.cast(epoch, tf.int64)
    return base, base + 1


def make_dataset(
    data_dir_or_manifest: Manifest | str | os.PathLike,
    split: str,
    batch_size: int,
    *,
    shuffle: bool | None = None,
    seed: int | None = None,
    first_epoch: int = 0,
    epochs: int | None = 1,
    repeat: bool = False,
    drop_remainder: bool = False,
    num_parallel_reads: int = tf.data.AUTOTUNE,
    cache: bool = False,
    shuffle_buffer: int | None = None,
    num_shards: int = 1,
    shard_index: int = 0,
    skip_rows: int = 0,
    with_group: bool = False,
) -> tf.data.Dataset:
    """Batches of ``(features, label)`` from a prepared split: ``epochs`` passes over it.

    Args:
        data_dir_or_manifest: prepared dataset directory (with ``manifest.json``) or a
            :class:`Manifest`.
        split: ``train``, ``valid`` or ``test``.
        batch_size: rows per batch (per pass: a pass's last partial batch is its own).
        shuffle: shuffle shard order and records. Default: ``True`` for ``train``, ``False``
            otherwise. Without shuffling every pass has the same order (the raw order for
            valid and test).
        seed: shuffle seed. Pass ``e`` (``first_epoch``, ``first_epoch + 1``, ...) is shuffled
            by :func:`pass_seeds` ``(seed, e)``: a pass's order depends on its epoch number
            only, never on what the process read before, and iterating the dataset again
            repeats the same passes. With ``None``: another order every pass and every
            iteration, and parallel reads may reorder (slightly faster; not reproducible).
        first_epoch: the epoch number of the first pass (a resumed run starts at the epoch it
            resumes). Default 0.
        epochs: passes over the split, in one dataset (``None``: without end). Default 1.
        repeat: without end, as ``epochs=None``.
        drop_remainder: drop the last partial batch (default: keep it, as the reference does);
            with ``drop_remainder`` batches run across passes (no partial batch at all).
        num_parallel_reads: files read in parallel by the interleave.
        cache: cache the serialized records in memory after the first pass (the shard
            order is then the manifest's in every pass; records are still shuffled).
        shuffle_buffer: records in the shuffle buffer (default ``min(rows, 262144)``: the whole
            split for Frappe-sized data).
        num_shards, shard_index: read only the split's files ``shard_index::num_shards`` (one
            worker's part in multi-worker training); the split needs at least ``num_shards``
            files.
        skip_rows: records skipped at the start of the first pass (before batching), to
            continue a stream at a known position. Default 0.
        with_group: also return each row's gAUC group (``features[manifest.group_feature]``,
            a hash of the raw group value), for evaluation; not a model input.

    Returns:
        ``tf.data.Dataset`` of ``(features, label)``: ``features`` maps each field to an int64
        tensor ``[B]`` (``[B, max_len]`` for sequences; float32 ``[B]`` for dense numeric
        fields), ``label`` is float32 ``[B]``.
    """
    manifest = load_manifest(data_dir_or_manifest)
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1. Received: `batch_size={batch_size}`")
    if epochs is not None and epochs < 1:
        raise ValueError(f"`epochs` must be >= 1 or None. Received: `epochs={epochs}`")
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
    spec = feature_spec(manifest, with_group=with_group)
    label_key = manifest.label_key
    epochs = None if repeat else epochs

    # With a seed, the whole pipeline is reproducible; without one, parallel reads may reorder.
    deterministic = (not shuffle) or seed is not None
    cycle = (
        len(files)
        if num_parallel_reads == tf.data.AUTOTUNE
        else max(1, min(len(files), num_parallel_reads))
    )
    buffer = shuffle_buffer or max(1, min(rows, DEFAULT_SHUFFLE_BUFFER))

    def read(paths: tf.data.Dataset) -> tf.data.Dataset:
        return paths.interleave(
            lambda path: tf.data.TFRecordDataset(path, compression_type="GZIP"),
            cycle_length=cycle,
            block_length=1,
            num_parallel_calls=num_parallel_reads,
            deterministic=deterministic,
        )

    if shuffle and seed is None:  # not reproducible: a new order every pass and iteration
        if skip_rows:
            raise ValueError("`skip_rows` needs a `seed` (an unseeded order cannot be resumed).")
        paths = tf.data.Dataset.from_tensor_slices(files).shuffle(len(files))
        records = read(paths).cache() if cache else read(paths)
        records = records.shuffle(buffer)  # reshuffled on every iteration
        if drop_remainder:
            ds = records.repeat(epochs).batch(batch_size, drop_remainder=True)
        else:
            ds = records.batch(batch_size).repeat(epochs)
    else:
        ds = _passes(
            files,
            read,
            shuffle=shuffle,
            seed=seed,
            first_epoch=first_epoch,
            epochs=epochs,
            batch_size=batch_size,
            drop_remainder=drop_remainder,
            cache=cache,
            buffer=buffer,
            skip_rows=skip_rows,
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


def _passes(
    files: list[str],
    read,
    *,
    shuffle: bool,
    seed: int | None,
    first_epoch: int,
    epochs: int | None,
    batch_size: int,
    drop_remainder: bool,
    cache: bool,
    buffer: int,
    skip_rows: int,
) -> tf.data.Dataset:
    """Batches of serialized records, passes ``first_epoch ...`` each in the order that
    :func:`pass_seeds` gives it (unshuffled: the manifest's order in every pass)."""
    cached = read(tf.data.Dataset.from_tensor_slices(files)).cache() if cache else None

    def one_pass(epoch) -> tf.data.Dataset:
        """The serialized records of pass ``epoch``, in that pass's order."""
        file_seed, record_seed = pass_seeds(seed, epoch) if shuffle else (None, None)
        if cached is not None:
            records = cached
        else:
            paths = tf.data.Dataset.from_tensor_slices(files)
            if shuffle:
                paths = paths.shuffle(len(files), seed=file_seed, reshuffle_each_iteration=False)
            records = read(paths)
        if shuffle:
            records = records.shuffle(buffer, seed=record_seed, reshuffle_each_iteration=False)
        return records

    def batched_pass(epoch) -> tf.data.Dataset:
        return one_pass(epoch).batch(batch_size)

    last = first_epoch + epochs if epochs is not None else 2**62
    if skip_rows:
        head = one_pass(first_epoch).skip(skip_rows)
        rest = tf.data.Dataset.range(first_epoch + 1, last)
        if drop_remainder:  # batches run across passes
            return head.concatenate(rest.flat_map(one_pass)).batch(batch_size, drop_remainder=True)
        return head.batch(batch_size).concatenate(rest.flat_map(batched_pass))
    if drop_remainder:
        passes = tf.data.Dataset.range(first_epoch, last)
        return passes.flat_map(one_pass).batch(batch_size, drop_remainder=True)
    if epochs == 1:
        return batched_pass(first_epoch)
    return tf.data.Dataset.range(first_epoch, last).flat_map(batched_pass)
