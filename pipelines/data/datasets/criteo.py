"""Criteo (Kaggle Display Advertising Challenge ``train.txt``), Criteo_x4 protocol.

Raw format: tab-separated, no header, 40 columns: label, I1-I13 (integers, may be empty or
negative), C1-C26 (8-hex-digit hashes, may be empty). Protocol (reference section 5.5): seeded
8:1:1 split, min count 10, integer features transformed by ``v > 2 -> floor(ln(v)^2)`` else
``int(v)`` and treated as categorical. Missing values map to id 0 (OOV), so "missing" is its own
id, distinct from the value 0. No gAUC group.

Accepted raw input: one file (``train.txt``, optionally ``.gz``; rows split by a seeded hash of
the row index, streaming) or a directory with ``train.txt[.gz]`` (hashed split) or with
``train``, ``valid`` and ``test`` files (``.txt``/``.tsv``, optionally ``.gz``) used as given.
"""

from __future__ import annotations

import numpy as np

from pipelines.data import fileio
from pipelines.data.datasets.base import (
    labelled_block,
    BINARY_LABELS,
    NON_NUMERIC,
    SPLITS,
    UNKNOWN_LABEL,
    Block,
    DatasetSpec,
    FieldSpec,
    RawFile,
    bad_details,
    frame_from_lines,
    integers_of,
    labels_from,
    split_by_count,
)
from pipelines.data.errors import DataError

INTEGER_FIELDS = tuple(f"I{i}" for i in range(1, 14))
CATEGORICAL_FIELDS = tuple(f"C{i}" for i in range(1, 27))
COLUMNS = ("label", *INTEGER_FIELDS, *CATEGORICAL_FIELDS)
LOG_SQUARED = "log_squared"


def log_squared(values: np.ndarray) -> np.ndarray:
    """Criteo_x4 integer transform: ``floor(ln(v)^2)`` if ``v > 2`` else ``int(v)``.

    Args:
        values: float64 array of integer values (NaN allowed, kept as NaN).

    Returns:
        float64 array of transformed integers.
    """
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        big = np.floor(np.log(np.where(values > 2, values, 3.0)) ** 2)
    return np.where(values > 2, big, np.trunc(values))


def log_squared_tf(values):
    """In-graph :func:`log_squared` for export: float64 in, int64 out (same integers).

    Computed in float64 like the pipeline, so ``floor`` agrees at integer boundaries.

    Args:
        values: numeric tensor of raw integer values (cast to float64).

    Returns:
        int64 tensor of transformed values; feed ``tf.strings.as_string`` of it to a
        ``StringLookup`` over the field's vocabulary file.
    """
    import tensorflow as tf

    x = tf.cast(values, tf.float64)
    big = tf.floor(tf.square(tf.math.log(tf.where(x > 2, x, tf.constant(3.0, tf.float64)))))
    return tf.cast(tf.where(x > 2, big, tf.where(x >= 0, tf.floor(x), tf.math.ceil(x))), tf.int64)


class CriteoSpec(DatasetSpec):
    """Criteo_x4: 13 log-squared integer fields + 26 categorical fields, no group key."""

    name = "criteo"
    fields = tuple(
        FieldSpec(n, "numeric-bucketed", transform=LOG_SQUARED) for n in INTEGER_FIELDS
    ) + tuple(FieldSpec(n) for n in CATEGORICAL_FIELDS)
    group_key = None
    default_min_count = 10
    default_seed = 2018

    def resolve(self, raw: str) -> list[RawFile]:
        if not fileio.exists(raw):
            raise DataError(
                f"{raw}: not found; expected a Criteo train.txt[.gz] file or a directory"
            )
        if not fileio.isdir(raw):
            return [RawFile(raw, None)]
        names = fileio.listdir(raw)
        suffixes = (".txt", ".tsv", ".txt.gz", ".tsv.gz")
        found = {
            s: [n for n in names if n.split(".")[0] == s and n.endswith(suffixes)] for s in SPLITS
        }
        if all(len(found[s]) == 1 for s in SPLITS):
            return [RawFile(fileio.join(raw, found[s][0]), s) for s in SPLITS]
        if len(found["train"]) == 1 and not found["valid"] and not found["test"]:
            return [RawFile(fileio.join(raw, found["train"][0]), None)]
        raise DataError(
            f"{raw}: expected train.txt[.gz] alone (split 8:1:1 by seeded hash) or one each of "
            f"train, valid and test .txt|.tsv[.gz]; found: {', '.join(names) or 'nothing'}"
        )

    def parse(self, lines, first_line, file, state, context) -> Block:
        good, numbers, bad = split_by_count(lines, first_line, b"\t", len(COLUMNS), "tab-separated")
        frame = frame_from_lines(good, "\t", list(COLUMNS), numeric=INTEGER_FIELDS)
        block = labelled_block(frame, numbers, bad, BINARY_LABELS, "0 or 1")
        for name in INTEGER_FIELDS:
            values, missing, bad_mask = integers_of(block.frame[name])
            if bad_mask.any():
                details = bad_details(block.frame, bad_mask, name, "not an integer:")
                block.reject(bad_mask, NON_NUMERIC, details)
                values = values[~bad_mask]
            # Numeric fields stay float64 (NaN = missing); tokens are their decimal strings.
            block.frame[name] = log_squared(values)
        return block
