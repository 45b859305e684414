"""Dataset specs: what a raw dataset looks like and how its rows become field values.

A spec knows its fields (name, kind), the group key for gAUC, the default min count, how to find
the raw files of each split, and how to turn a block of raw lines into a :class:`Block` of
string field values plus labels, with malformed rows set aside (reason + 1-based line number).
Counting, vocabularies, encoding and writing are shared and live in
:mod:`pipelines.data.prepare`.

Parsing is vectorized: a block's lines are first checked with a cheap per-line separator count,
well-formed lines are parsed together by the pandas C parser, and only odd lines (wrong column
count, quoted CSV cells) take a slow path, so line numbers can still be reported for every
rejected row.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipelines.data.errors import DataError

WRONG_COLUMNS = "wrong_column_count"
NON_NUMERIC = "non_numeric_integer"
UNKNOWN_LABEL = "unknown_label"
OUT_OF_RANGE = "feature_out_of_range"
BAD_TOKEN = "bad_libfm_token"
UNKNOWN_USER = "unknown_user"

SPLITS = ("train", "valid", "test")
BINARY_LABELS = {"0": 0, "1": 1, "0.0": 0, "1.0": 1}
LIBFM_LABELS = {"1": 1, "-1": 0, "0": 0, "1.0": 1, "-1.0": 0, "0.0": 0}


@dataclass(frozen=True)
class FieldSpec:
    """A model input field.

    Args:
        name: field and feature name (also the serving input name).
        kind: ``categorical``, ``numeric-bucketed`` or ``sequence``.
        max_len: sequence length (sequence fields only).
        transform: the numeric transform's name, recorded in the manifest for export.
    """

    name: str
    kind: str = "categorical"
    max_len: int | None = None
    transform: str | None = None


@dataclass(frozen=True)
class RawFile:
    """A raw input file and the split it feeds (``None``: rows are split by a seeded hash)."""

    path: str
    split: str | None


@dataclass
class Block:
    """Parsed rows of one block of raw lines.

    ``frame`` has one string column per field (missing values are ``""``; sequence fields hold
    the raw cell, split later by the spec's separator); ``line`` the 1-based line number and
    ``label`` the 0/1 label of each kept row. ``bad`` lists ``(line, reason, detail)``.
    """

    frame: pd.DataFrame
    line: np.ndarray
    label: np.ndarray
    bad: list[tuple[int, str, str]] = field(default_factory=list)

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
        self.label = self.label[keep]


class DatasetSpec:
    """Base class of the dataset specs (one subclass per dataset).

    Attributes:
        name: registry name.
        fields: model input fields in model order.
        group_key: field used as the gAUC group, or ``None``.
        default_min_count: vocabulary min count of the reference protocol.
        seeded_split: ``True`` when the rows of one raw source are split 8:1:1 by a seeded hash
            of the row index; ``False`` when the raw files are the official splits.
        default_seed: seed of the hashed split.
    """

    name: str = ""
    fields: tuple[FieldSpec, ...] = ()
    group_key: str | None = None
    default_min_count: int = 2
    seeded_split: bool = False
    default_seed: int = 2018
    split_ratios: tuple[int, int, int] = (8, 1, 1)

    def __init__(self, **options: Any):
        if options:
            raise ValueError(f"Dataset `{self.name}` takes no options. Received: {sorted(options)}")

    @property
    def options(self) -> dict[str, Any]:
        """Spec options that change the output (part of the fingerprint)."""
        return {}

    def resolve(self, raw: str) -> list[RawFile]:
        """Finds the raw files under ``raw``; raises :class:`DataError` saying what was expected."""
        raise NotImplementedError

    def side_files(self) -> list[str]:
        """Other raw files the output depends on (part of the fingerprint), after :meth:`resolve`."""
        return []

    def load_context(self, files: list[RawFile]) -> Any:
        """Loads side tables needed by :meth:`parse` (e.g. ML-1M users). Default: none."""
        return None

    def parse(
        self, lines: list[bytes], first_line: int, file: RawFile, state: dict, context: Any
    ) -> Block:
        """Parses a block of raw lines (``first_line`` is the 1-based number of ``lines[0]``).

        ``state`` is a per-file dict that persists across blocks (e.g. the CSV header).
        """
        raise NotImplementedError

    def tokens(self, name: str, values: pd.Series) -> pd.Series:
        """Tokens of a sequence field: one row per token, index = row position in the block.

        The same function serves counting and encoding, so vocabulary and ids always agree.
        """
        raise NotImplementedError(f"`{name}` is not a sequence field of `{self.name}`")


# ----------------------------------------------------------------------------------- helpers


def check_split_dir(raw: str, what: str) -> None:
    from pipelines.data import fileio

    if not fileio.exists(raw):
        raise DataError(f"{raw}: not found; expected {what}")
    if not fileio.isdir(raw):
        raise DataError(f"{raw}: expected a directory with {what}")


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


def labels_from(series: pd.Series, mapping: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Maps label strings to 0/1; returns ``(labels, unknown_mask)``."""
    mapped = series.map(mapping)
    unknown = mapped.isna().to_numpy()
    return mapped.fillna(0).to_numpy(dtype=np.int8), unknown


def labelled_block(
    frame: pd.DataFrame, numbers: np.ndarray, bad: list, mapping: dict[str, int], expected: str
) -> Block:
    """A :class:`Block` of ``frame``'s fields with its ``label`` column mapped through
    ``mapping``; rows with another label are rejected as ``UNKNOWN_LABEL`` ("expected
    <expected>, got ...")."""
    label, unknown = labels_from(frame["label"], mapping)
    details = bad_details(frame, unknown, "label", f"expected {expected}, got")
    block = Block(frame.drop(columns="label"), numbers, label, bad)
    block.reject(unknown, UNKNOWN_LABEL, details)
    return block


def integers_from(series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parses integer strings; ``""`` is missing.

    Returns ``(values as float64 with NaN for missing, missing_mask, bad_mask)``; a bad value is
    non-empty and not an integer.
    """
    text = series.astype(object)
    missing = (text == "").to_numpy()
    values = pd.to_numeric(text.where(~missing, None), errors="coerce").to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    bad = ~missing & (~finite | (np.abs(np.where(finite, values, 0)) > 2.0**53))
    bad |= finite & (np.floor(np.where(finite, values, 0)) != np.where(finite, values, 0))
    return values, missing, bad


def integers_of(series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Like :func:`integers_from`, for a column that may already be float64 (NaN = missing)."""
    if series.dtype != np.float64:
        return integers_from(series)
    values = series.to_numpy(dtype=np.float64)
    missing = np.isnan(values)
    finite = np.where(missing, 0.0, values)
    bad = ~missing & (
        ~np.isfinite(finite) | (np.floor(finite) != finite) | (np.abs(finite) > 2.0**53)
    )
    return values, missing, bad


def int_strings(values: np.ndarray) -> np.ndarray:
    """Canonical decimal strings of integer-valued floats (object array)."""
    return values.astype(np.int64).astype(str).astype(object)


def bad_details(frame: pd.DataFrame, mask: np.ndarray, column: str, what: str) -> list[str]:
    return [f"{column}: {what} {v!r}" for v in frame.loc[mask, column].tolist()]


def parse_csv_block(
    lines: list[bytes],
    first_line: int,
    state: dict,
    file: RawFile,
    required: list[str],
) -> tuple[pd.DataFrame, np.ndarray, list[tuple[int, str, str]]]:
    """Parses a block of a CSV file with a header row (BARS layout), quoting allowed.

    The header (line 1) must name all ``required`` columns; other columns are ignored.
    Returns a frame of the required columns, line numbers and bad entries.
    """
    if first_line == 1:
        header = next(csv.reader([lines[0].decode("utf-8-sig")]))
        header = [h.strip() for h in header]
        absent = [c for c in required if c not in header]
        if absent:
            raise DataError(
                f"{file.path} line 1: expected a CSV header with columns {required}; "
                f"missing {absent}, found {header}"
            )
        state["columns"] = header
        lines = lines[1:]
        first_line = 2
    columns = state["columns"]
    ncols = len(columns)
    numbers = np.arange(first_line, first_line + len(lines), dtype=np.int64)
    quoted = np.fromiter((b'"' in ln for ln in lines), dtype=bool, count=len(lines))
    plain = [ln for ln, q in zip(lines, quoted.tolist(), strict=True) if not q]
    plain_lines, plain_numbers, bad = split_by_count(plain, 0, b",", ncols, "comma-separated")
    plain_numbers = numbers[~quoted][plain_numbers] if len(plain) else plain_numbers
    bad = [(int(numbers[~quoted][i]), r, d) for i, r, d in bad]
    frame = frame_from_lines(plain_lines, ",", columns)[required]
    if quoted.any():
        # Slow path, only for lines with quoted cells: the csv module handles embedded commas.
        rows, row_numbers = [], []
        for i in np.flatnonzero(quoted).tolist():
            cells = next(csv.reader([lines[i].decode("utf-8")]))
            if len(cells) != ncols:
                bad.append(
                    (
                        int(numbers[i]),
                        WRONG_COLUMNS,
                        f"expected {ncols} comma-separated columns, got {len(cells)}",
                    )
                )
                continue
            rows.append(cells)
            row_numbers.append(int(numbers[i]))
        if rows:
            extra = pd.DataFrame(rows, columns=columns, dtype=object)[required]
            frame = pd.concat([frame, extra], ignore_index=True)
            plain_numbers = np.concatenate([plain_numbers, np.asarray(row_numbers, dtype=np.int64)])
            order = np.argsort(plain_numbers, kind="stable")
            frame = frame.iloc[order].reset_index(drop=True)
            plain_numbers = plain_numbers[order]
    return frame, plain_numbers, bad


def split_tokens(values: pd.Series, sep: str) -> pd.Series:
    """Splits cells on ``sep`` into stripped, non-empty tokens (one row per token, index = row)."""
    if len(values) == 0:
        return pd.Series([], dtype=object)
    parts = values.astype(object).str.split(sep, regex=False).explode()
    parts = parts.dropna().astype(object).str.strip()
    return parts[parts != ""]


def resolve_csv_splits(raw: str, what: str) -> list[RawFile] | None:
    """BARS layout: ``train.csv``, ``valid.csv``, ``test.csv`` (optionally ``.gz``) in ``raw``.

    Returns ``None`` when the directory holds no BARS file at all.
    """
    from pipelines.data import fileio

    names = fileio.listdir(raw)
    if not any(n.split(".")[0] in SPLITS and ".csv" in n for n in names):
        return None
    files = []
    for split in SPLITS:
        path = fileio.glob_one(raw, [f"{split}.csv", f"{split}.csv.gz"], f"{what} {split} split")
        files.append(RawFile(path, split))
    return files
