"""The ``libfm`` reader: NFM/AFN libFM rows (``label idx:value ... idx:value``), as shipped for
Frappe and ML-tag, or their BARS CSV conversion.

BARS converts the libFM files to CSV by keeping each token's feature index, field by position;
this reader does the same, so both inputs give identical raw values: the schema's fields, in
order, take the index of token 1, 2, ... and the label column the first token. A file whose
name contains ``.csv`` is read as the BARS CSV (a header naming the label and the fields).
Lines are split on any whitespace (the staged Frappe files are CRLF).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from pipelines.data import fileio
from pipelines.data.datasets.base import (
    BAD_TOKEN,
    WRONG_COLUMNS,
    Block,
    RawFile,
    frame_from_lines,
    parse_delimited_block,
)


def parse_libfm(lines: list[bytes], first_line: int, columns: list[str]) -> Block:
    """Parses libFM lines with exactly one ``index:value`` token per field, in field order.

    Args:
        lines: raw lines (line terminators removed).
        first_line: 1-based number of ``lines[0]``.
        columns: the label column, then one column per token position.

    Returns:
        A :class:`Block` whose columns hold the label token and the feature indices (strings).
    """
    ncols = len(columns)
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
                    f"expected {ncols} whitespace-separated tokens (label + {ncols - 1} "
                    f"index:value), got {len(tokens)}",
                )
            )
    frame = frame_from_lines(good, " ", columns)
    block = Block(frame, np.asarray(good_numbers, dtype=np.int64), None, bad)
    for name in columns[1:]:
        parts = block.frame[name].astype(object).str.partition(":")
        index = parts[0].str.strip()
        malformed = (
            (parts[1] != ":").to_numpy()
            | (parts[2] == "").to_numpy()
            | ~index.str.fullmatch(r"-?\d+").fillna(False).to_numpy(dtype=bool)
        )
        if malformed.any():
            details = [
                f"{name}: expected index:value, got {v!r}"
                for v in block.frame.loc[malformed, name].tolist()
            ]
            block.reject(malformed, BAD_TOKEN, details)
            index = index[~malformed].reset_index(drop=True)
        block.frame[name] = index.to_numpy(dtype=object)
    return block


class LibfmReader:
    """libFM token files, or their BARS CSV conversion, field by token position."""

    def __init__(self, schema) -> None:
        self.schema = schema
        self.columns = [schema.label.column, *(f.source for f in schema.fields)]

    def blocks(self, file: RawFile, block_bytes: int, **_) -> Iterator[Block]:
        if ".csv" in fileio.basename(file.path):
            state: dict = {}
            for first, lines in fileio.iter_line_blocks(file.path, block_bytes):
                frame, numbers, bad = parse_delimited_block(
                    lines,
                    first,
                    state,
                    file.path,
                    delimiter=",",
                    header=True,
                    columns=None,
                    required=self.columns,
                )
                yield Block(frame, numbers, None, bad)
            return
        for first, lines in fileio.iter_line_blocks(file.path, block_bytes):
            yield parse_libfm(lines, first, self.columns)
