"""MovielensLatest_x1 (ML-tag): BARS CSV or the NFM libFM files, official 7:2:1 splits.

Three categorical fields ``user_id``, ``item_id``, ``tag_id`` whose values are the libFM feature
indices (BARS converts the AFN libsvm files that way, by token position). Min count 2; gAUC group
``user_id``.

Accepted raw input: a directory with BARS ``train.csv``, ``valid.csv``, ``test.csv`` (header
``label,user_id,item_id,tag_id``) or with NFM ``ml-tag.train.libfm``, ``ml-tag.validation.libfm``,
``ml-tag.test.libfm`` (each optionally ``.gz``).
"""

from __future__ import annotations

from pipelines.data import fileio
from pipelines.data.datasets.base import (
    BINARY_LABELS,
    NON_NUMERIC,
    UNKNOWN_LABEL,
    Block,
    DatasetSpec,
    FieldSpec,
    RawFile,
    bad_details,
    check_split_dir,
    int_strings,
    integers_from,
    labels_from,
    parse_csv_block,
    resolve_csv_splits,
)
from pipelines.data.datasets.libfm import parse_index_csv, parse_libfm

FIELDS = ("user_id", "item_id", "tag_id")
EXPECTED = (
    "train.csv, valid.csv and test.csv (BARS) or ml-tag.train.libfm, ml-tag.validation.libfm and "
    "ml-tag.test.libfm (NFM), each optionally .gz"
)


class MovielensLatestSpec(DatasetSpec):
    """ML-tag: user_id, item_id, tag_id; group ``user_id``."""

    name = "movielenslatest"
    fields = tuple(FieldSpec(n) for n in FIELDS)
    group_key = "user_id"
    default_min_count = 2

    def resolve(self, raw: str) -> list[RawFile]:
        check_split_dir(raw, EXPECTED)
        csv_files = resolve_csv_splits(raw, "ML-tag BARS CSV")
        if csv_files is not None:
            return csv_files
        names = {"train": "train", "valid": "validation", "test": "test"}
        return [
            RawFile(
                fileio.glob_one(
                    raw, [f"ml-tag.{n}.libfm", f"ml-tag.{n}.libfm.gz"], f"ML-tag libFM {s} split"
                ),
                s,
            )
            for s, n in names.items()
        ]

    def parse(self, lines, first_line, file, state, context) -> Block:
        if ".csv" not in fileio.basename(file.path):
            return parse_libfm(lines, first_line, list(FIELDS))
        return parse_index_csv(lines, first_line, state, file, list(FIELDS))
