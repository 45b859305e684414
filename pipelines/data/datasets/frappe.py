"""Frappe (Frappe_x1): NFM libFM files or the BARS CSV layout, official splits as given.

Ten categorical fields, each value the libFM feature index (as BARS does); each field owns a fixed
index range (``../shared/data/frappe/SOURCE.md``), and indices outside it are rejected. Min count
2 (TF4CTR; BARS uses 1). gAUC group: ``user``.

Accepted raw input: a directory with ``frappe.train*.libfm[.gz]``, ``frappe.validation.libfm[.gz]``
and ``frappe.test.libfm[.gz]`` (the staged train file is ``frappe.train.rebuilt.libfm.gz``), or a
directory with BARS ``train.csv``, ``valid.csv``, ``test.csv`` (header
``label,user,item,daytime,weekday,isweekend,homework,cost,weather,country,city``).
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

FIELDS = (
    "user",
    "item",
    "daytime",
    "weekday",
    "isweekend",
    "homework",
    "cost",
    "weather",
    "country",
    "city",
)
# Inclusive libFM index range of each field (NFM README; SOURCE.md table).
RANGES = {
    "user": (0, 956),
    "item": (957, 5038),
    "daytime": (5039, 5045),
    "weekday": (5046, 5052),
    "isweekend": (5053, 5054),
    "homework": (5055, 5057),
    "cost": (5058, 5059),
    "weather": (5060, 5068),
    "country": (5069, 5148),
    "city": (5149, 5381),
}
EXPECTED = (
    "frappe.train*.libfm[.gz], frappe.validation.libfm[.gz] and frappe.test.libfm[.gz] "
    "(NFM libFM) or train.csv, valid.csv and test.csv (BARS)"
)


class FrappeSpec(DatasetSpec):
    """Frappe_x1: 10 categorical fields holding libFM feature indices; group ``user``."""

    name = "frappe"
    fields = tuple(FieldSpec(n) for n in FIELDS)
    group_key = "user"
    default_min_count = 2

    def resolve(self, raw: str) -> list[RawFile]:
        check_split_dir(raw, EXPECTED)
        csv_files = resolve_csv_splits(raw, "Frappe BARS CSV")
        if csv_files is not None:
            return csv_files
        patterns = {
            "train": ["frappe.train*.libfm", "frappe.train*.libfm.gz"],
            "valid": ["frappe.validation.libfm", "frappe.validation.libfm.gz"],
            "test": ["frappe.test.libfm", "frappe.test.libfm.gz"],
        }
        return [
            RawFile(fileio.glob_one(raw, p, f"Frappe libFM {s} split"), s)
            for s, p in patterns.items()
        ]

    def parse(self, lines, first_line, file, state, context) -> Block:
        if ".csv" not in fileio.basename(file.path):
            return parse_libfm(lines, first_line, list(FIELDS), RANGES)
        return parse_index_csv(lines, first_line, state, file, list(FIELDS), RANGES)
