"""Parsing helpers shared by the format readers: blocks of rows, rejected rows, delimited text.

A reader turns a block of raw input (lines of a text file, a batch of Parquet rows or of
``tf.train.Example`` records) into a :class:`Block`: a frame with one column per source column,
the 1-based line or record number of each row, and the rows it set aside as malformed (line,
reason, detail). :class:`pipelines.data.datasets.spec.SchemaSpec` then turns the raw columns into
field values and labels by the schema.

Parsing is vectorized: a block's lines are first checked with a cheap per-line separator count,
well-formed lines are parsed together by the pandas C parser, and only odd lines (wrong column
count, quoted CSV cells) take a slow path, so line numbers can still be reported for every
rejected row.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipelines.data.errors import DataError
from pipelines.data.schema import ASCII_SPACE

WRONG_COLUMNS = "wrong_column_count"
NON_NUMERIC = "non_numeric"
NON_INTEGER = "non_numeric_integer"
UNKNOWN_LABEL = "unknown_label"
OUT_OF_RANGE = "feature_out_of_range"
BAD_TOKEN = "bad_libfm_token"
UNKNOWN_USER = "unknown_user"
WRONG_TYPE = "wrong_feature_type"
TOO_MANY_VALUES = "too_many_values"

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class RawFile:
    """A raw input file and the split it feeds (``None``: rows are split by a seeded hash).
    ``stream`` numbers the files of a hashed split, so equal row numbers in two files do not
    land in the same split together."""

    path: str
    split: str | None
    stream: int = 0


@dataclass
class Block:
    """Parsed rows of one block of raw input.

    ``frame`` has one column per source column (text cells as strings, ``""`` when empty;
    Parquet and tf.Example values as read), later one per field; ``line`` holds the 1-based
    line or record number and ``label`` the 0/1 label of each kept row (set by the spec).
    ``bad`` lists ``(line, reason, detail)``.
    """

    frame: pd.DataFrame
    line: np.ndarray
    label: np.ndarray | None = None
    bad: list[tuple[int, str, str]] = field(default_factory=list)
    # arrays aligned with the rows, filtered with them (finished field columns)
    carry: dict[str, np.ndarray] = field(default_factory=dict)
    # False when the block's text holds no ASCII whitespace besides the delimiter, so cells
    # need no stripping (the reader knows from the raw bytes; the common case, and cheap)
    padded: bool = True

    def reject(self, mask: np.ndarray, reason: str, details) -> None:
        """Moves the rows under ``mask`` to ``bad`` with one detail string per rejected row."""
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        lines = self.line[mask]
        details = list(details) if not isinstance(details, str) else [details] * int(mask.sum())
        self.bad.extend(zip(lines.tolist(), [reason] * len(lines), details, strict=True))
        keep = ~mask
        self.frame = self.frame.loc[keep].reset_index(drop=True)
        self.line = self.line[keep]
        if self.label is not None:
            self.label = self.label[keep]
        for key, values in self.carry.items():
            self.carry[key] = values[keep]


def has_space(chunks: list[bytes], delimiter: str = "") -> bool:
    """Whether ``chunks`` (a block's lines, or a batch's string values) hold ASCII whitespace
    other than ``delimiter``: one byte search per kind, so cells need stripping only then."""
    data = b"".join(chunks)
    return any(c.encode() in data for c in ASCII_SPACE if c != delimiter)


def split_by_count(
    lines: list[bytes], first_line: int, sep: bytes, ncols: int, what: str
) -> tuple[list[bytes], np.ndarray, list[tuple[int, str, str]]]:
    """Keeps lines with exactly ``ncols`` ``sep``-separated columns.

    Returns the good lines, their line numbers and ``bad`` entries for the others.
    """
    counts = np.fromiter((ln.count(sep) for ln in lines), dtype=np.int64, count=len(lines))
    numbers = np.arange(first_line, first_line + len(lines), dtype=np.int64)
    ok = counts == ncols - 1
    bad = []
    if not ok.all():
        for i in np.flatnonzero(~ok).tolist():
            got = 0 if not lines[i] else int(counts[i]) + 1
            bad.append(
                (int(numbers[i]), WRONG_COLUMNS, f"expected {ncols} {what} columns, got {got}")
            )
        lines = [ln for ln, good in zip(lines, ok.tolist(), strict=True) if good]
    return lines, numbers[ok], bad


def frame_from_lines(
    lines: list[bytes],
    sep: str,
    names: list[str],
    encoding: str = "utf-8",
    numeric: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Parses well-formed delimited lines (no quoting) into a frame of strings.

    Columns in ``numeric`` are parsed to float64 by the C parser (empty -> NaN), which is much
    faster than converting strings afterwards; if a value there is not a number, the whole block
    is returned as strings instead and the caller validates value by value.
    """
    if not lines:
        return pd.DataFrame({n: pd.Series([], dtype=object) for n in names})
    data = b"\n".join(lines) + b"\n"
    common = dict(
        sep=sep,
        header=None,
        names=names,
        quoting=csv.QUOTE_NONE,
        skip_blank_lines=False,
        encoding=encoding,
        engine="c",
    )
    if numeric:
        try:
            return pd.read_csv(
                io.BytesIO(data),
                dtype={n: (np.float64 if n in numeric else object) for n in names},
                keep_default_na=False,
                na_values={n: [""] for n in numeric},
                **common,
            )
        except ValueError:
            pass  # a non-numeric value somewhere: strings, validated by the caller
    return pd.read_csv(io.BytesIO(data), dtype=object, na_filter=False, **common)


def integers_from(series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parses integer strings; ``""`` is missing.

    Returns ``(values as float64 with NaN for missing, missing_mask, bad_mask)``; a bad value is
    non-empty and not an integer.
    """
    values, missing, bad = numbers_from(series)
    finite = np.where(np.isfinite(values), values, 0)
    bad |= ~missing & (
        ~np.isfinite(values) | (np.abs(finite) > 2.0**53) | (np.floor(finite) != finite)
    )
    return values, missing, bad


def numbers_from(series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parses numbers from strings or numeric values; ``""``, ``None`` and NaN are missing.

    Returns ``(float64 values, NaN for missing or bad; missing_mask; bad_mask)``; a bad value is
    present and not a number.
    """
    if series.dtype.kind in "fiub":
        values = series.to_numpy(dtype=np.float64, copy=True)
        missing = np.isnan(values)
        return values, missing, np.zeros(len(values), dtype=bool)
    text = series.astype(object)
    if pd.api.types.infer_dtype(text, skipna=False) != "string":
        text = pd.Series([_decode(v) if v is not None else "" for v in text.tolist()], dtype=object)
        text = text.map(lambda v: v if isinstance(v, str) else ("" if v != v else repr(v)))
    stripped = text.str.strip(ASCII_SPACE)
    missing = (stripped == "").to_numpy(copy=True)
    values = pd.to_numeric(stripped.where(~missing, None), errors="coerce").to_numpy(
        dtype=np.float64, copy=True
    )
    bad = ~missing & np.isnan(values)
    if bad.any():
        # "nan" / "NaN" parse to NaN: a missing value, not a malformed one
        nan_text = (stripped.str.lower() == "nan").to_numpy()
        bad &= ~nan_text
        missing |= nan_text
    return values, missing, bad


def _decode(value):
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def int_strings(values: np.ndarray) -> np.ndarray:
    """Canonical decimal strings of integer-valued floats (object array)."""
    return values.astype(np.int64).astype(str).astype(object)


def bad_details(frame: pd.DataFrame, mask: np.ndarray, column: str, what: str) -> list[str]:
    return [f"{column}: {what} {v!r}" for v in frame.loc[mask, column].tolist()]


def parse_delimited_block(
    lines: list[bytes],
    first_line: int,
    state: dict,
    path: str,
    *,
    delimiter: str,
    header: bool,
    columns: tuple[str, ...] | None,
    required: list[str],
    numeric: tuple[str, ...] = (),
    encoding: str = "utf-8",
) -> tuple[pd.DataFrame, np.ndarray, list[tuple[int, str, str]]]:
    """Parses a block of delimited text; CSV quoting (``"``) is honoured for ``,``.

    With ``header`` the first line names the columns and must name every ``required`` column
    (other columns are ignored); otherwise ``columns`` are the names in file order. Returns a
    frame of the required columns (``numeric`` ones as float64 where every value parses),
    line numbers and bad entries.
    """
    if "columns" not in state:
        if header:
            text = lines[0].decode(encoding)
            text = text.removeprefix("\ufeff")
            names = (
                next(csv.reader([text], delimiter=delimiter))
                if delimiter == ","
                else text.split(delimiter)
            )
            names = [h.strip() for h in names]
            absent = [c for c in required if c not in names]
            if absent:
                raise DataError(
                    f"{path} line 1: the header names no column {', '.join(map(repr, absent))} "
                    f"(declared in the schema); the header has {names}"
                )
            lines = lines[1:]
            first_line += 1
        else:
            names = list(columns)
        state["columns"] = names
    names = state["columns"]
    ncols = len(names)
    what = (
        "comma-separated"
        if delimiter == ","
        else ("tab-separated" if delimiter == "\t" else f"{delimiter!r}-separated")
    )
    numbers = np.arange(first_line, first_line + len(lines), dtype=np.int64)
    quotable = delimiter == ","
    quoted = (
        np.fromiter((b'"' in ln for ln in lines), dtype=bool, count=len(lines))
        if quotable
        else np.zeros(len(lines), dtype=bool)
    )
    plain = (
        [ln for ln, q in zip(lines, quoted.tolist(), strict=True) if not q]
        if quoted.any()
        else lines
    )
    plain_lines, plain_idx, bad = split_by_count(plain, 0, delimiter.encode(encoding), ncols, what)
    plain_numbers = numbers[~quoted][plain_idx] if len(plain) else plain_idx
    bad = [(int(numbers[~quoted][i]), r, d) for i, r, d in bad]
    numeric = tuple(n for n in numeric if n in required)
    frame = frame_from_lines(plain_lines, delimiter, names, encoding, numeric)[required]
    if quoted.any():
        # Slow path, only for lines with quoted cells: the csv module handles embedded commas.
        rows, row_numbers = [], []
        for i in np.flatnonzero(quoted).tolist():
            cells = next(csv.reader([lines[i].decode(encoding)]))
            if len(cells) != ncols:
                bad.append(
                    (
                        int(numbers[i]),
                        WRONG_COLUMNS,
                        f"expected {ncols} {what} columns, got {len(cells)}",
                    )
                )
                continue
            rows.append(cells)
            row_numbers.append(int(numbers[i]))
        if rows:
            extra = pd.DataFrame(rows, columns=names, dtype=object)[required]
            frame = pd.concat([frame.astype(object), extra], ignore_index=True)
            plain_numbers = np.concatenate([plain_numbers, np.asarray(row_numbers, dtype=np.int64)])
            order = np.argsort(plain_numbers, kind="stable")
            frame = frame.iloc[order].reset_index(drop=True)
            plain_numbers = plain_numbers[order]
    return frame, plain_numbers, bad
