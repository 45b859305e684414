"""MovielensLatest_x1 (ML-tag): BARS CSV or the NFM libFM files, official 7:2:1 splits.

Three categorical fields ``user_id``, ``item_id``, ``tag_id`` whose values are the libFM feature
indices (BARS converts the AFN libsvm files that way, by token position). Min count 2; gAUC group
``user_id``.

Accepted raw input: a directory with BARS ``train.csv``, ``valid.csv``, ``test.csv`` (header
``label,user_id,item_id,tag_id``) or with NFM ``ml-tag.train.libfm``, ``ml-tag.validation.libfm``,
``ml-tag.test.libfm`` (each optionally ``.gz``).
"""

from __future__ import annotations

from pipelines.data.datasets.libfm import LibfmIndexSpec

FIELDS = ("user_id", "item_id", "tag_id")
EXPECTED = (
    "train.csv, valid.csv and test.csv (BARS) or ml-tag.train.libfm, ml-tag.validation.libfm and "
    "ml-tag.test.libfm (NFM), each optionally .gz"
)


class MovielensLatestSpec(LibfmIndexSpec):
    """ML-tag: user_id, item_id, tag_id; group ``user_id``."""

    name = "movielenslatest"
    title = "ML-tag"
    field_names = FIELDS
    group_key = "user_id"
    default_min_count = 2
    expected = EXPECTED
    libfm_patterns = {
        split: [f"ml-tag.{stem}.libfm", f"ml-tag.{stem}.libfm.gz"]
        for split, stem in (("train", "train"), ("valid", "validation"), ("test", "test"))
    }
