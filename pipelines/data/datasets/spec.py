"""``SchemaSpec``: a dataset schema made executable (find files, read blocks, field values).

One class serves every dataset: the schema says the format (a generic reader in
:mod:`pipelines.data.datasets.formats`, or a named reader where a raw format needs one: libFM
tokens, MovieLens ``::`` files), the label, the splits and each field's kind. Counting,
vocabularies, encoding and writing are in :mod:`pipelines.data.prepare`.

Field values after :meth:`SchemaSpec.blocks` (one frame column per field):

* categorical: canonical strings (stripped; ``dtype: int`` values as decimal integers), ``""``
  when missing; the field's string transform applied.
* sequence: a list of canonical tokens per row (text cells split on the field's separator,
  stripped, empty tokens dropped).
* numeric: float64 (NaN when missing, empty, ``nan`` or non-finite after the transform); with
  ``bucketize`` the integer part (floor) of the transformed value.

A row is malformed (set aside with a reason and counted) when its label is not one of the
label values, a ``dtype: int``/``float`` or numeric value does not parse, an integer is outside
the field's ``range``, or its format is broken (column count, libFM token, tf.Example type).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator

import numpy as np
import pandas as pd

from pipelines.data import fileio
from pipelines.data.datasets.base import (
    NON_INTEGER,
    NON_NUMERIC,
    OUT_OF_RANGE,
    SPLITS,
    UNKNOWN_LABEL,
    Block,
    RawFile,
    bad_details,
    int_strings,
    integers_from,
    numbers_from,
)
from pipelines.data.datasets.formats import EXTENSIONS, READERS
from pipelines.data.datasets.libfm import LibfmReader
from pipelines.data.datasets.movielens import MovielensReader
from pipelines.data.errors import DataError
from pipelines.data.schema import (
    ASCII_SPACE,
    DatasetSchema,
    FieldSchema,
    canonical_token,
    load_schema,
)
from pipelines.data.transforms import get_transform

NAMED_READERS = {"libfm": LibfmReader, "movielens": MovielensReader}
BINARY_VALUE = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "true": 1, "false": 0, "True": 1, "False": 0}


class SchemaSpec:
    """The executable form of a :class:`~pipelines.data.schema.DatasetSchema`.

    Args:
        schema: a schema, a schema file, a bundled schema's name or a mapping.
    """

    def __init__(self, schema) -> None:
        self.schema: DatasetSchema = load_schema(schema)
        s = self.schema
        self.name = s.name
        self.fields: tuple[FieldSchema, ...] = s.fields
        self.group_key = s.group_key
        if s.group_key is not None and s.group_key not in s.field_names:
            raise DataError(
                f"{s.source}: `group_key: {s.group_key}` must name a field (gAUC groups rows by "
                f"the field's ids); fields are {s.field_names}"
            )
        self.default_min_count = s.min_count
        self.default_seed = s.splits.seed
        self.split_ratios = s.splits.ratio or (8, 1, 1)
        self.transforms = {f.name: get_transform(f.transform) for f in s.fields if f.transform}
        for f in s.fields:
            if f.name in self.transforms:
                want = "number" if f.kind == "numeric" else "string"
                got = self.transforms[f.name].kind
                if got != want:
                    raise DataError(
                        f"{s.source}: field `{f.name}` ({f.kind}) needs a {want} transform; "
                        f"`{f.transform}` transforms a {got}."
                    )
                if f.kind == "sequence":
                    raise DataError(f"{s.source}: field `{f.name}`: sequences take no transform.")
        self.named = NAMED_READERS[s.format](s) if s.format in NAMED_READERS else None
        # Hash splits use the 1-based data row (a header line is not a row), so a CSV with a
        # header, its Parquet copy and its TFRecord copy split the same rows the same way.
        self.header_lines = 1 if s.format in ("csv", "tsv") and s.header else 0
        # what a row number counts, in messages
        self.unit = {"parquet": "row", "tfrecord": "record"}.get(s.format, "line")
        label = s.label.column
        self.required = list(dict.fromkeys([label, *(f.source for f in s.fields)]))
        self.kinds = {f.source: ("numeric" if f.kind == "numeric" else f.kind) for f in s.fields}
        self.kinds[label] = "numeric" if s.format == "tfrecord" else "categorical"

    @property
    def options(self) -> dict:
        """What of the spec changes the output, for the fingerprint: the whole schema."""
        return {"schema": self.schema.to_dict()}

    # -- files ---------------------------------------------------------------------------------
    def resolve(self, raw: str) -> list[RawFile]:
        """The raw files of ``raw`` (a file, a directory or a glob) and their splits.

        Raises:
            DataError: saying what was expected and what was found.
        """
        if self.named is not None and hasattr(self.named, "resolve"):
            return self.named.resolve(raw)
        if not raw:
            raise DataError(f"no --data given; expected {self._expected()}")
        s = self.schema
        glob = any(c in raw for c in "*?[")
        if not glob and not fileio.exists(raw):
            raise DataError(f"{raw}: not found; expected {self._expected()}")
        if s.splits.files is not None and not glob and fileio.isdir(raw):
            names = [n for n in fileio.listdir(raw) if not n.startswith(".")]
            files = self.split_files(raw, names, fileio.join)
            if files is not None:
                return files
        if s.splits.ratio is None:
            raise DataError(f"{raw}: expected {self._expected()}")
        if glob:
            import tensorflow as tf

            paths = sorted(tf.io.gfile.glob(raw))
            if not paths:
                raise DataError(f"{raw}: no file matches; expected {self._expected()}")
        elif fileio.isdir(raw):
            ext = EXTENSIONS.get(s.format, ())
            paths = [
                fileio.join(raw, n)
                for n in fileio.listdir(raw)
                if not n.startswith(".")
                and n.endswith(ext)
                and not fileio.isdir(fileio.join(raw, n))
            ]
            if not paths:
                raise DataError(
                    f"{raw}: no {s.format} file (ending in {', '.join(ext)}); "
                    f"directory holds: {', '.join(fileio.listdir(raw)[:20]) or 'nothing'}"
                )
        else:
            paths = [raw]
        return [RawFile(p, None, stream=i) for i, p in enumerate(paths)]

    def split_files(self, raw: str, names: list[str], join) -> list[RawFile] | None:
        """The per-split files of directory ``raw`` (its file ``names``; ``join(raw, name)``
        makes a path) by the schema's ``splits.files`` patterns; None when the directory holds
        only train files and the schema has a ratio (split by hash instead).

        Raises:
            DataError: some splits' files are missing, naming the patterns and the files.
        """
        s = self.schema
        found = {split: _first_match(names, s.splits.files[split]) for split in SPLITS}
        if all(found.values()):
            return [RawFile(join(raw, n), split) for split in SPLITS for n in found[split]]
        # a directory with only train files is split by hash when the schema has a ratio
        if s.splits.ratio is None or found["valid"] or found["test"]:
            missing = [sp for sp in SPLITS if not found[sp]]
            raise DataError(
                f"{raw}: no {', '.join(missing)} file matching "
                + "; ".join(f"{sp}: {' or '.join(s.splits.files[sp])}" for sp in missing)
                + f". Directory holds: {', '.join(names[:20]) or 'nothing'}"
            )
        return None

    @property
    def expected(self) -> str:
        """What ``--data`` should be, for messages."""
        return self._expected()

    def _expected(self) -> str:
        s = self.schema
        ways = []
        if s.splits.ratio is not None:
            ratio = ":".join(map(str, s.splits.ratio))
            ways.append(f"a {s.format} file, a directory of them or a glob (split {ratio} by hash)")
        if s.splits.files is not None:
            files = "; ".join(f"{sp}: {' or '.join(p)}" for sp, p in s.splits.files.items())
            ways.append(f"a directory with {s.format} files per split ({files})")
        return " or ".join(ways)

    def side_files(self) -> list[str]:
        """Other raw files the output depends on (part of the fingerprint), after resolve."""
        if self.named is not None and hasattr(self.named, "side_files"):
            return self.named.side_files()
        return []

    # -- rows ----------------------------------------------------------------------------------
    def blocks(self, file: RawFile, block_bytes: int) -> Iterator[Block]:
        """Blocks of ``file`` with field values and labels (see the module docstring)."""
        s = self.schema
        numeric = tuple(f.source for f in s.fields if f.kind == "numeric")
        reader = self.named.blocks if self.named is not None else READERS[s.format]
        any_rows = False
        for block in reader(
            file,
            block_bytes,
            delimiter=s.column_delimiter,
            header=s.header,
            columns=s.columns,
            required=self.required,
            numeric=numeric,
            encoding=s.encoding,
            kinds=self.kinds,
        ):
            any_rows = any_rows or len(block.line) > 0 or len(block.bad) > 0
            yield self._finish(block)
        if not any_rows:
            raise DataError(f"{file.path}: no data rows; expected {s.format} rows of {s.name}")

    def _finish(self, block: Block) -> Block:
        # Finished columns live in the block's frame under a private prefix while later fields
        # are checked, so a row rejected by a later field leaves every column at once.
        s = self.schema
        self._labels(block)
        for f in s.fields:
            if f.kind == "numeric":
                column = self._numeric(block, f, block.frame[f.source])
            elif f.kind == "sequence":
                column = _token_lists(block.frame[f.source], f.separator)
            else:
                column = self._categorical(block, f, block.frame[f.source])
            # kept beside the frame (and filtered with it) until every field is checked
            block.carry[f.name] = column.to_numpy() if isinstance(column, pd.Series) else column
        # object columns stay object (pandas 3 would infer its string dtype: slower here)
        block.frame = pd.DataFrame(
            {
                f.name: pd.Series(c, dtype=c.dtype)
                for f, c in zip(s.fields, block.carry.values(), strict=True)
            }
        )
        block.carry = {}
        return block

    def _labels(self, block: Block) -> None:
        label = self.schema.label
        column = block.frame[label.column]
        tokens = _canonical(column, strip=block.padded)
        if label.positive is None:
            mapped = tokens.map(BINARY_VALUE)
            expected = "0 or 1"
        elif label.negative is not None:
            mapped = tokens.map(
                {**{v: 0 for v in label.negative}, **{v: 1 for v in label.positive}}
            )
            expected = "one of " + ", ".join([*label.positive, *label.negative])
        else:
            mapped = pd.Series(np.where(tokens.isin(label.positive), 1.0, 0.0))
            mapped = mapped.where((tokens != "").to_numpy(), np.nan)
            expected = "a value"
        unknown = mapped.isna().to_numpy()
        block.label = mapped.fillna(0).to_numpy(dtype=np.int8)
        details = [
            f"{label.column}: expected {expected}, got {v!r}" for v in column[unknown].tolist()
        ]
        block.reject(unknown, UNKNOWN_LABEL, details)

    def _categorical(self, block: Block, f: FieldSchema, values: pd.Series) -> np.ndarray:
        if f.dtype == "int" or f.range is not None:  # integer ids, canonical: "007" -> "7"
            numbers = self._numbers(block, f, values, integer=True)
            missing = np.isnan(numbers)
            tokens = np.full(len(numbers), "", dtype=object)
            tokens[~missing] = int_strings(numbers[~missing])
        else:
            tokens = _canonical(block.frame[f.source], strip=block.padded).to_numpy(dtype=object)
        if f.name in self.transforms:
            tokens = self.transforms[f.name].apply(tokens)
        return tokens

    def _numeric(self, block: Block, f: FieldSchema, values: pd.Series) -> np.ndarray:
        numbers = self._numbers(block, f, values, integer=f.dtype == "int")
        if f.name in self.transforms:
            numbers = self.transforms[f.name].apply(numbers)
        numbers = np.where(np.isfinite(numbers), numbers, np.nan)
        if f.bucketize:
            numbers = np.floor(numbers)
        return numbers

    def _numbers(self, block: Block, f: FieldSchema, values: pd.Series, integer: bool):
        """The field's values as float64 (NaN = missing), rejecting the rows whose value does
        not parse (as an integer with ``integer``) or is outside the field's ``range``."""
        numbers, _, bad = (integers_from if integer else numbers_from)(values)
        if bad.any():
            what = "not an integer:" if integer else "not a number:"
            reason = NON_INTEGER if integer else NON_NUMERIC
            block.reject(bad, reason, bad_details(block.frame, bad, f.source, what))
            numbers = numbers[~bad]
        if f.range is None:
            return numbers
        lo, hi = f.range
        out = ~np.isnan(numbers) & ((numbers < lo) | (numbers > hi))
        if out.any():
            block.reject(
                out,
                OUT_OF_RANGE,
                bad_details(block.frame, out, f.source, f"index outside [{lo}, {hi}]:"),
            )
            numbers = numbers[~out]
        return numbers

    def tokens(self, name: str, values: pd.Series) -> pd.Series:
        """Tokens of a sequence field: one row per token, index = row position in the block.

        The same function serves counting and encoding, so vocabulary and ids always agree.
        """
        if len(values) == 0:
            return pd.Series([], dtype=object)
        parts = pd.Series(values.to_numpy(dtype=object)).explode()
        parts = parts.dropna().astype(object)
        return parts[parts != ""]


def _first_match(names: list[str], patterns: tuple[str, ...]) -> list[str]:
    """The files matching the first of ``patterns`` that matches any (alternatives in order)."""
    for pattern in patterns:
        hits = sorted(n for n in names if fnmatch.fnmatchcase(n, pattern))
        if hits:
            return hits
    return []


def _canonical(values: pd.Series, strip: bool = True) -> pd.Series:
    """Canonical tokens (:func:`pipelines.data.schema.canonical_token`), vectorized for the
    common column types."""
    kind = values.dtype.kind
    if kind in "iu":
        return pd.Series(values.to_numpy().astype(str).astype(object))
    if kind == "b":
        return pd.Series(values.to_numpy().astype(np.int64).astype(str).astype(object))
    if kind == "f":
        v = values.to_numpy(dtype=np.float64)
        out = np.full(len(v), "", dtype=object)
        finite = np.isfinite(v)
        integral = (
            finite
            & (np.floor(np.where(finite, v, 0)) == v)
            & (np.abs(np.where(finite, v, 0)) < 2.0**63)
        )
        out[integral] = v[integral].astype(np.int64).astype(str)
        other = finite & ~integral
        out[other] = [repr(float(x)) for x in v[other]]
        return pd.Series(out, dtype=object)
    text = values.astype(object)
    if pd.api.types.infer_dtype(text, skipna=False) == "string":
        if not strip:
            return pd.Series(text.to_numpy(dtype=object), dtype=object)
        return pd.Series(text.str.strip(ASCII_SPACE).to_numpy(dtype=object), dtype=object)
    return pd.Series([canonical_token(v) for v in text.tolist()], dtype=object)


def _token_lists(values: pd.Series, separator: str) -> pd.Series:
    """Each row's tokens as a list (text split on ``separator``; list cells as they are)."""
    out = []
    for cell in values.tolist():
        if cell is None or (isinstance(cell, float) and cell != cell):
            out.append([])
        elif isinstance(cell, str):
            out.append([t for t in (p.strip(ASCII_SPACE) for p in cell.split(separator)) if t])
        elif isinstance(cell, bytes):
            text = cell.decode("utf-8", errors="replace")
            out.append([t for t in (p.strip(ASCII_SPACE) for p in text.split(separator)) if t])
        else:
            out.append([t for t in (canonical_token(v) for v in cell) if t])
    return pd.Series(out, dtype=object)


def get_spec(schema) -> SchemaSpec:
    """The spec of a bundled dataset name, a schema file, a mapping or a schema.

    Raises:
        DataError (a ValueError): for an unknown name, listing the bundled ones.
    """
    return SchemaSpec(schema)
