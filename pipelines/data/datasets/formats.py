"""Readers of the generic raw formats: ``csv``, ``tsv``, ``parquet`` and ``tfrecord``.

Each reader yields :class:`~pipelines.data.datasets.base.Block` objects whose frame holds the
schema's source columns (the label column included) as read; the spec turns them into field
values. Row numbers are 1-based: the line of a text file (the header is line 1), the row of a
Parquet file, the record of a TFRecord file.

* ``csv``/``tsv``: plain or ``.gz``; a header line or the schema's ``columns``. CSV quoting is
  honoured; TSV has none (a ``"`` is a character).
* ``parquet``: read in row batches with pyarrow (bounded memory); a sequence column is a list
  column or a text column with the field's separator.
* ``tfrecord``: ``tf.train.Example`` records, GZIP when the name ends in ``.gz``. A field reads
  the feature of its column name: bytes or int64 lists for categorical and sequence fields,
  float or int64 lists for numeric fields and the label. A feature absent from a record is a
  missing value. Batches are parsed by ``tf.io.parse_example``; a batch that does not parse
  (a feature of another type in some record) is read record by record, so the record is named.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from pipelines.data import fileio
from pipelines.data.datasets.base import (
    TOO_MANY_VALUES,
    WRONG_TYPE,
    Block,
    RawFile,
    has_space,
    parse_delimited_block,
)
from pipelines.data.errors import DataError

PARQUET_BATCH_ROWS = 65_536
TFRECORD_BATCH_ROWS = 8_192
EXTENSIONS = {
    "csv": (".csv", ".csv.gz", ".txt", ".txt.gz"),
    "tsv": (".tsv", ".tsv.gz", ".txt", ".txt.gz"),
    "parquet": (".parquet", ".parq", ".pq"),
    "tfrecord": (".tfrecord", ".tfrecord.gz", ".tfrecords", ".tfrecords.gz", ".gz"),
}


def read_text(
    file: RawFile,
    block_bytes: int,
    *,
    delimiter: str,
    header: bool,
    columns,
    required: list[str],
    numeric: tuple[str, ...],
    encoding: str,
    **_,
) -> Iterator[Block]:
    state: dict = {}
    for first, lines in fileio.iter_line_blocks(file.path, block_bytes):
        frame, numbers, bad = parse_delimited_block(
            lines,
            first,
            state,
            file.path,
            delimiter=delimiter,
            header=header,
            columns=columns,
            required=required,
            numeric=numeric,
            encoding=encoding,
        )
        yield Block(frame, numbers, None, bad, padded=has_space(lines, delimiter))


def read_parquet(file: RawFile, block_bytes: int, *, required: list[str], **_) -> Iterator[Block]:
    import pyarrow.parquet as pq
    import tensorflow as tf

    if "://" in file.path:
        # Other file systems through TensorFlow's layer: the file is read into memory once
        # (pyarrow needs a seekable file; GFile is not a full Python file object).
        import pyarrow as pa

        with tf.io.gfile.GFile(file.path, "rb") as handle:
            source = pa.BufferReader(handle.read())
    else:
        source = file.path
    try:
        parquet = pq.ParquetFile(source)
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError, ...
        raise DataError(f"{file.path}: not a Parquet file ({error})") from None
    names = parquet.schema_arrow.names
    absent = [c for c in required if c not in names]
    if absent:
        raise DataError(
            f"{file.path}: no column {', '.join(map(repr, absent))} (declared in the "
            f"schema); the file has {names}"
        )
    row = 1
    for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=required):
        frame = batch.to_pandas().reset_index(drop=True)
        numbers = np.arange(row, row + len(frame), dtype=np.int64)
        row += len(frame)
        yield Block(frame[required], numbers, None, [])


# ----------------------------------------------------------------------------- tf.Example

# proto oneof name -> what read_tfrecord accepts it for
_ACCEPTS = {
    "categorical": ("bytes_list", "int64_list"),
    "sequence": ("bytes_list", "int64_list"),
    "numeric": ("float_list", "int64_list"),
}


def read_tfrecord(
    file: RawFile,
    block_bytes: int,
    *,
    required: list[str],
    kinds: dict[str, str],
    **_,
) -> Iterator[Block]:
    """``kinds``: column -> ``categorical`` | ``sequence`` | ``numeric`` (the label: numeric)."""
    import tensorflow as tf

    compression = "GZIP" if file.path.endswith(".gz") else ""
    dataset = tf.data.TFRecordDataset(file.path, compression_type=compression)
    dataset = dataset.batch(TFRECORD_BATCH_ROWS)
    types: dict[str, str] = {}
    record = 1
    iterator = iter(dataset)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            break
        except tf.errors.OpError as error:
            raise DataError(
                f"{file.path}: cannot read TFRecords after record {record - 1} "
                f"({'GZIP' if compression else 'uncompressed'}): {error.message}"
            ) from None
        serialized = batch.numpy()
        if not types:
            types = _infer_types(serialized, required, kinds, file.path)
        numbers = np.arange(record, record + len(serialized), dtype=np.int64)
        record += len(serialized)
        padded = True
        try:
            frame, bad, padded = _parse_fast(serialized, numbers, required, kinds, types)
        except tf.errors.InvalidArgumentError:
            frame, bad = _parse_slow(serialized, numbers, required, kinds)
        keep = np.ones(len(numbers), dtype=bool)
        for i, _reason, _detail in bad:
            keep[i - numbers[0]] = False
        yield Block(
            frame.loc[keep].reset_index(drop=True),
            numbers[keep],
            None,
            [(int(i), r, d) for i, r, d in bad],
            padded=padded,
        )


def _infer_types(serialized, required, kinds, path) -> dict[str, str]:
    """Each column's list type in the first records that hold it (bytes/int64/float)."""
    import tensorflow as tf

    types: dict[str, str] = {}
    for raw in serialized[:256]:
        try:
            features = tf.train.Example.FromString(raw).features.feature
        except Exception:  # noqa: BLE001 - a DecodeError; the slow path reports the record
            continue
        for column in required:
            if column not in types and column in features:
                kind = features[column].WhichOneof("kind")
                if kind is not None:
                    types[column] = kind
        if len(types) == len(required):
            break
    absent = [c for c in required if c not in types]
    if absent:
        raise DataError(
            f"{path}: no feature {', '.join(map(repr, absent))} (declared in the schema) in "
            f"the first {min(len(serialized), 256)} records"
        )
    return types


_DTYPE = {"bytes_list": "string", "int64_list": "int64", "float_list": "float32"}


def _parse_fast(serialized, numbers, required, kinds, types):
    import tensorflow as tf

    spec = {c: tf.io.VarLenFeature(tf.as_dtype(_DTYPE[types[c]])) for c in required}
    parsed = tf.io.parse_example(serialized, spec)
    n = len(serialized)
    columns, bad = {}, []
    padded = False  # whether any string value holds ASCII whitespace (then cells are stripped)
    for column in required:
        kind = kinds[column]
        sparse = parsed[column]
        if types[column] not in _ACCEPTS[kind]:
            detail = _type_detail(column, types[column], kind)
            bad.extend((int(numbers[i]), WRONG_TYPE, detail) for i in range(n))
            columns[column] = pd.Series([None] * n, dtype=object)
            continue
        rows = sparse.indices.numpy()[:, 0]
        values = sparse.values.numpy()
        counts = np.bincount(rows, minlength=n)
        if types[column] == "bytes_list":
            padded = padded or has_space(values.tolist())
            values = np.asarray([v.decode("utf-8", errors="replace") for v in values], dtype=object)
        if kind == "sequence":
            splits = np.concatenate([[0], np.cumsum(counts)])
            cells = [values[splits[i] : splits[i + 1]].tolist() for i in range(n)]
            columns[column] = pd.Series(cells, dtype=object)
            continue
        for i in np.flatnonzero(counts > 1).tolist():
            bad.append(
                (int(numbers[i]), TOO_MANY_VALUES, f"{column}: {counts[i]} values, expected 1")
            )
        present = counts >= 1
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        if types[column] == "bytes_list":
            out = np.full(n, "", dtype=object)
            out[present] = values[first[present]]
            columns[column] = pd.Series(out, dtype=object)
        else:
            out = np.full(n, np.nan, dtype=np.float64)
            out[present] = values[first[present]].astype(np.float64)
            if types[column] == "int64_list" and kind != "numeric":
                text = np.full(n, "", dtype=object)
                text[present] = values[first[present]].astype(str)
                columns[column] = pd.Series(text, dtype=object)
            else:
                columns[column] = pd.Series(out)
    bad = _first_per_row(bad)
    return pd.DataFrame(columns), bad, padded


def _type_detail(column: str, found: str, kind: str) -> str:
    accepts = " or ".join(_ACCEPTS[kind])
    return f"feature `{column}` is a {found}; a {kind} value is read from a {accepts}"


def _first_per_row(bad):
    seen, out = set(), []
    for entry in bad:
        if entry[0] not in seen:
            seen.add(entry[0])
            out.append(entry)
    return sorted(out)


def _parse_slow(serialized, numbers, required, kinds):
    """Record by record with the protobuf API: names the record and the feature."""
    import tensorflow as tf

    rows = {c: [] for c in required}
    bad = []
    for i, raw in enumerate(serialized):
        try:
            features = tf.train.Example.FromString(raw).features.feature
        except Exception as error:  # noqa: BLE001 - google.protobuf DecodeError
            bad.append((int(numbers[i]), WRONG_TYPE, f"not a tf.train.Example ({error})"))
            for c in required:
                rows[c].append(None)
            continue
        problem = None
        cells = {}
        for column in required:
            kind = kinds[column]
            feature = features.get(column) if column in features else None
            which = feature.WhichOneof("kind") if feature is not None else None
            if which is None:
                cells[column] = [] if kind == "sequence" else None
                continue
            if which not in _ACCEPTS[kind]:
                problem = (WRONG_TYPE, _type_detail(column, which, kind))
                break
            values = list(getattr(feature, which).value)
            if which == "bytes_list":
                values = [v.decode("utf-8", errors="replace") for v in values]
            elif which == "int64_list" and kind != "numeric":
                values = [str(v) for v in values]
            else:
                values = [float(v) for v in values]
            if kind == "sequence":
                cells[column] = values
            elif len(values) > 1:
                problem = (TOO_MANY_VALUES, f"{column}: {len(values)} values, expected 1")
                break
            else:
                cells[column] = values[0] if values else None
        if problem is not None:
            bad.append((int(numbers[i]), *problem))
            cells = {c: None for c in required}
        for c in required:
            rows[c].append(cells.get(c))
    frame = {}
    for column in required:
        kind = kinds[column]
        if kind == "numeric":
            frame[column] = pd.Series(
                [np.nan if v is None else v for v in rows[column]], dtype=np.float64
            )
        elif kind == "sequence":
            frame[column] = pd.Series([v or [] for v in rows[column]], dtype=object)
        else:
            frame[column] = pd.Series(["" if v is None else v for v in rows[column]], dtype=object)
    return pd.DataFrame(frame), bad


READERS = {"csv": read_text, "tsv": read_text, "parquet": read_parquet, "tfrecord": read_tfrecord}
