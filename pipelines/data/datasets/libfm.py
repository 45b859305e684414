"""libFM rows (``label idx:value ... idx:value``), as shipped by NFM/AFN for Frappe and ML-tag.

BARS converts these files to CSV by keeping each token's feature index, field by position; this
module does the same, so the libFM and the BARS CSV inputs give identical raw values.
"""

from __future__ import annotations

import numpy as np

from pipelines.data import fileio

from pipelines.data.datasets.base import (
    labelled_block,
    DatasetSpec,
    FieldSpec,
    RawFile,
    check_split_dir,
    resolve_csv_splits,
    BAD_TOKEN,
    BINARY_LABELS,
    LIBFM_LABELS,
    NON_NUMERIC,
    OUT_OF_RANGE,
    UNKNOWN_LABEL,
    WRONG_COLUMNS,
    Block,
    bad_details,
    frame_from_lines,
    int_strings,
    integers_from,
    labels_from,
    parse_csv_block,
)


def parse_libfm(
    lines: list[bytes],
    first_line: int,
    fields: list[str],
    ranges: dict[str, tuple[int, int]] | None = None,
) -> Block:
    """Parses libFM lines with exactly one ``index:value`` token per field, in field order.

    Args:
        lines: raw lines (line terminators removed).
        first_line: 1-based number of ``lines[0]``.
        fields: field names, one per token position.
        ranges: optional inclusive index range per field; indices outside are rejected.

    Returns:
        A :class:`Block` whose field values are the feature indices as decimal strings.
    """
    ncols = len(fields) + 1
    numbers = np.arange(first_line, first_line + len(lines), dtype=np.int64)
    counts = np.fromiter((ln.count(b" ") for ln in lines), dtype=np.int64, count=len(lines))
    good, good_numbers, bad = [], [], []
    fast = counts == ncols - 1
    for i, ln in enumerate(lines):
        if fast[i] and not ln.startswith(b" ") and b"  " not in ln:
            good.append(ln)
            good_numbers.append(numbers[i])
            continue
        # Slow path: other whitespace (tabs, doubled or trailing spaces) or a wrong count.
        tokens = ln.split()
        if len(tokens) == ncols:
            good.append(b" ".join(tokens))
            good_numbers.append(numbers[i])
        else:
            bad.append(
                (
                    int(numbers[i]),
                    WRONG_COLUMNS,
                    f"expected {ncols} whitespace-separated tokens (label + {len(fields)} index:value), got {len(tokens)}",
                )
            )
    frame = frame_from_lines(good, " ", ["label", *fields])
    numbers = np.asarray(good_numbers, dtype=np.int64)
    block = labelled_block(frame, numbers, bad, LIBFM_LABELS, "1, -1 or 0")
    for name in fields:
        parts = block.frame[name].astype(object).str.partition(":")
        values, missing, bad_mask = integers_from(parts[0])
        bad_mask |= missing | (parts[1] != ":").to_numpy() | (parts[2] == "").to_numpy()
        _set_indices(block, name, values, bad_mask, BAD_TOKEN, "expected index:value, got", ranges)
    return block


def parse_index_csv(
    lines: list[bytes],
    first_line: int,
    state,
    file,
    fields: list[str],
    ranges: dict[str, tuple[int, int]] | None = None,
) -> Block:
    """Parses BARS CSV rows ``label,<field>,...`` whose values are libFM feature indices (the
    BARS conversion of these libFM files), with the same checks as :func:`parse_libfm`: a 0/1
    label, an integer index per field, optionally inside the field's inclusive range.
    """
    frame, numbers, bad = parse_csv_block(lines, first_line, state, file, ["label", *fields])
    block = labelled_block(frame, numbers, bad, BINARY_LABELS, "0 or 1")
    for name in fields:
        values, missing, bad_mask = integers_from(block.frame[name])
        bad_mask |= missing
        _set_indices(
            block, name, values, bad_mask, NON_NUMERIC, "expected a feature index, got", ranges
        )
    return block


def _set_indices(block: Block, name: str, values, bad_mask, reason: str, expected: str, ranges):
    """Rejects the rows of ``bad_mask`` (as ``reason``: "<expected> <value>") and those whose
    index of ``name`` is outside its range, and stores the rest as the field's values."""
    if bad_mask.any():
        block.reject(bad_mask, reason, bad_details(block.frame, bad_mask, name, expected))
        values = values[~bad_mask]
    if ranges is not None:
        values = reject_out_of_range(block, name, values, ranges[name])
    block.frame[name] = int_strings(values)


def reject_out_of_range(block: Block, name: str, values, bounds: tuple[int, int]):
    """Rejects rows whose feature index of `name` is outside the inclusive `bounds`; returns
    the remaining rows' values."""
    lo, hi = bounds
    out = (values < lo) | (values > hi)
    if out.any():
        block.reject(
            out, OUT_OF_RANGE, bad_details(block.frame, out, name, f"index outside [{lo}, {hi}]:")
        )
        values = values[~out]
    return values


class LibfmIndexSpec(DatasetSpec):
    """A dataset shipped as NFM/AFN libFM files or as their BARS CSV conversion: categorical
    fields whose values are libFM feature indices, official train/valid/test splits.

    Subclasses declare ``name``, ``field_names``, ``group_key``, ``default_min_count``,
    ``expected`` (the accepted files, for error messages), ``title`` (e.g. "Frappe"),
    ``libfm_patterns`` (split -> glob patterns) and optionally ``ranges`` (field -> inclusive
    index range; indices outside are rejected).
    """

    field_names: tuple[str, ...] = ()
    expected: str = ""
    title: str = ""
    libfm_patterns: dict[str, list[str]] = {}
    ranges: dict[str, tuple[int, int]] | None = None

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls.fields = tuple(FieldSpec(n) for n in cls.field_names)

    def resolve(self, raw: str) -> list[RawFile]:
        check_split_dir(raw, self.expected)
        csv_files = resolve_csv_splits(raw, f"{self.title} BARS CSV")
        if csv_files is not None:
            return csv_files
        return [
            RawFile(fileio.glob_one(raw, p, f"{self.title} libFM {s} split"), s)
            for s, p in self.libfm_patterns.items()
        ]

    def parse(self, lines, first_line, file, state, context) -> Block:
        fields = list(self.field_names)
        if ".csv" not in fileio.basename(file.path):
            return parse_libfm(lines, first_line, fields, self.ranges)
        return parse_index_csv(lines, first_line, state, file, fields, self.ranges)
