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

from pipelines.data.datasets.libfm import LibfmIndexSpec

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


class FrappeSpec(LibfmIndexSpec):
    """Frappe_x1: 10 categorical fields holding libFM feature indices; group ``user``."""

    name = "frappe"
    title = "Frappe"
    field_names = FIELDS
    group_key = "user"
    default_min_count = 2
    expected = EXPECTED
    ranges = RANGES
    libfm_patterns = {
        "train": ["frappe.train*.libfm", "frappe.train*.libfm.gz"],
        "valid": ["frappe.validation.libfm", "frappe.validation.libfm.gz"],
        "test": ["frappe.test.libfm", "frappe.test.libfm.gz"],
    }
