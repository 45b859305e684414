"""KKBox (KKBox_x1): the BARS CSV files, official 8:1:1 splits.

Thirteen fields (reference section 5.4): nine categorical strings, two sequences
(``genre_ids``, ``artist_name``, max_len 3), ``isrc`` reduced to its first two characters (the
country code) and ``bd`` (age) bucketized to "1".."7" ([1, 10] -> "1", (10, 20] -> "2", ...,
> 60 -> "7"; < 1, > 95 or empty -> missing -> OOV). Min count 2 (TF4CTR); gAUC group ``msno``.

Sequence cells are split on ``sequence_sep`` (default ``"|"``, the Kaggle separator) **both when
counting and when encoding** (:meth:`KKBoxSpec.tokens`). The reference counted whole cells but
split on whitespace when encoding, so most multi-word artists became OOV; that bug is not
reproduced. Tokens are stripped; empty tokens are dropped; the first ``max_len`` tokens are
kept (post-truncation, as FuxiCTR's ``pad_sequences``).

Accepted raw input: a directory with ``train.csv``, ``valid.csv``, ``test.csv`` (optionally
``.gz``) whose header names ``label`` and the 13 fields (other columns are ignored).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pipelines.data.datasets.base import (
    labelled_block,
    BINARY_LABELS,
    NON_NUMERIC,
    UNKNOWN_LABEL,
    Block,
    DatasetSpec,
    FieldSpec,
    RawFile,
    bad_details,
    check_split_dir,
    integers_from,
    labels_from,
    parse_csv_block,
    resolve_csv_splits,
    split_tokens,
)
from pipelines.data.errors import DataError

CATEGORICAL = (
    "msno",
    "song_id",
    "source_system_tab",
    "source_screen_name",
    "source_type",
    "city",
    "gender",
    "registered_via",
    "language",
)
SEQUENCES = ("genre_ids", "artist_name")
FIELDS = (*CATEGORICAL, *SEQUENCES, "isrc", "bd")
MAX_LEN = 3
EXPECTED = "train.csv, valid.csv and test.csv (BARS KKBox_x1, optionally .gz)"


ISRC_COUNTRY = "isrc_country"  # the first two characters of the stripped ISRC
AGE_BUCKET = "age_bucket"  # bucketize_age below


def isrc_country_tf(values):
    """In-graph ``isrc`` transform for export: the stripped string's first two characters."""
    import tensorflow as tf

    return tf.strings.substr(tf.strings.strip(values), 0, 2, unit="UTF8_CHAR")


def bucketize_age_tf(values):
    """In-graph :func:`bucketize_age` for export: float ages (NaN = missing) -> bucket strings."""
    import tensorflow as tf

    x = tf.cast(values, tf.float64)
    valid = (x >= 1.0) & (x <= 95.0)  # False for NaN
    buckets = tf.clip_by_value(tf.math.ceil(tf.where(valid, x, 1.0) / 10.0), 1.0, 7.0)
    return tf.where(valid, tf.strings.as_string(tf.cast(buckets, tf.int64)), "")


def bucketize_age(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Age buckets of the reference: [1,10] -> "1", (10,20] -> "2", ..., >60 -> "7"; else ""."""
    out = np.full(len(values), "", dtype=object)
    valid = ~missing & (values >= 1) & (values <= 95)
    buckets = np.minimum(np.ceil(np.where(valid, values, 1) / 10.0), 7).astype(np.int64)
    buckets = np.maximum(buckets, 1)
    out[valid] = buckets[valid].astype(str)
    return out


class KKBoxSpec(DatasetSpec):
    """KKBox_x1: 9 categorical + 2 sequence + isrc country + bucketized age; group ``msno``."""

    name = "kkbox"
    fields = (
        tuple(FieldSpec(n) for n in CATEGORICAL)
        + tuple(FieldSpec(n, "sequence", max_len=MAX_LEN) for n in SEQUENCES)
        # The transforms are recorded in the manifest so export can apply them in-graph.
        + (FieldSpec("isrc", transform=ISRC_COUNTRY), FieldSpec("bd", transform=AGE_BUCKET))
    )
    group_key = "msno"
    default_min_count = 2

    def __init__(self, sequence_sep: str = "|", **options: Any):
        super().__init__(**options)
        if not sequence_sep or sequence_sep == ",":
            raise ValueError(
                f"`sequence_sep` must be a non-empty string other than ','. Received: {sequence_sep!r}"
            )
        self.sequence_sep = sequence_sep

    @property
    def options(self) -> dict[str, Any]:
        return {"sequence_sep": self.sequence_sep}

    def resolve(self, raw: str) -> list[RawFile]:
        check_split_dir(raw, EXPECTED)
        files = resolve_csv_splits(raw, "KKBox BARS CSV")
        if files is None:
            raise DataError(f"{raw}: expected {EXPECTED}")
        return files

    def parse(self, lines, first_line, file, state, context) -> Block:
        frame, numbers, bad = parse_csv_block(lines, first_line, state, file, ["label", *FIELDS])
        block = labelled_block(frame, numbers, bad, BINARY_LABELS, "0 or 1")
        ages, missing, bad_mask = integers_from(block.frame["bd"].astype(object).str.strip())
        if bad_mask.any():
            block.reject(
                bad_mask,
                NON_NUMERIC,
                bad_details(block.frame, bad_mask, "bd", "expected an integer age, got"),
            )
            ages, missing = ages[~bad_mask], missing[~bad_mask]
        block.frame["bd"] = bucketize_age(ages, missing)
        block.frame["isrc"] = block.frame["isrc"].astype(object).str.strip().str[:2]
        for name in CATEGORICAL:
            block.frame[name] = block.frame[name].astype(object).str.strip()
        return block

    def tokens(self, name: str, values: pd.Series) -> pd.Series:
        if name not in SEQUENCES:
            return super().tokens(name, values)
        return split_tokens(values, self.sequence_sep)
