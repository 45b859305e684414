"""MovielensLatest_x1 (ML-tag): BARS CSV or the NFM libFM files, official 7:2:1 splits.

Three categorical fields ``user_id``, ``item_id``, ``tag_id`` whose values are the libFM feature
indices (BARS converts the AFN libsvm files that way, by token position). Min count 2; gAUC group
``user_id``.

Accepted raw input: a directory with BARS ``train.csv``, ``valid.csv``, ``test.csv`` (header
``label,user_id,item_id,tag_id``) or with NFM ``ml-tag.train.libfm``, ``ml-tag.validation.libfm``,
``ml-tag.test.libfm`` (each optionally ``.gz``).
"""

from __future__ import annotations

from pipelines import fileio
from pipelines.datasets.base import (
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
from pipelines.datasets.libfm import parse_libfm

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
        frame, numbers, bad = parse_csv_block(lines, first_line, state, file, ["label", *FIELDS])
        label, unknown = labels_from(frame["label"], BINARY_LABELS)
        details = bad_details(frame, unknown, "label", "expected 0 or 1, got")
        block = Block(frame.drop(columns="label"), numbers, label, bad)
        block.reject(unknown, UNKNOWN_LABEL, details)
        for name in FIELDS:
            values, missing, bad_mask = integers_from(block.frame[name])
            bad_mask |= missing
            if bad_mask.any():
                block.reject(
                    bad_mask,
                    NON_NUMERIC,
                    bad_details(block.frame, bad_mask, name, "expected a feature index, got"),
                )
                values = values[~bad_mask]
            block.frame[name] = int_strings(values)
        return block
