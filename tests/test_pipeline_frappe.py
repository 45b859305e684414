"""Frappe_x1 on the real staged files: rows, labels, vocabularies and ids checked by hand."""

from __future__ import annotations

import gzip
from collections import Counter

import numpy as np
import pytest

from pipelines.data import load_manifest
from pipelines.data.prepare import prepare
from pipelines.data.schema import load_schema
from tests.pipeline_fixtures import FRAPPE_DIR, read_split, require_shared, vocab_ids, write_text

FIELDS = tuple(load_schema("frappe").field_names)

# FuxiCTR convention (PAD + OOV) sizes logged by the reference on the official train file.
REFERENCE_SIZES = {
    "user": 942,
    "item": 4084,
    "daytime": 9,
    "weekday": 9,
    "isweekend": 4,
    "homework": 5,
    "cost": 4,
    "weather": 11,
    "country": 82,
    "city": 233,
}
FILES = {
    "train": "frappe.train.rebuilt.libfm.gz",
    "valid": "frappe.validation.libfm.gz",
    "test": "frappe.test.libfm.gz",
}


def _rows(split: str) -> list[tuple[int, list[str]]]:
    text = gzip.decompress((FRAPPE_DIR / FILES[split]).read_bytes()).decode()
    rows = []
    for line in text.splitlines():
        tokens = line.split()
        rows.append((1 if tokens[0] == "1" else 0, [t.split(":")[0] for t in tokens[1:]]))
    return rows


@pytest.fixture(scope="module")
def frappe(tmp_path_factory):
    require_shared(FRAPPE_DIR)
    out = tmp_path_factory.mktemp("frappe")
    return prepare("frappe", str(FRAPPE_DIR), str(out)), {s: _rows(s) for s in FILES}


@pytest.mark.slow
def test_frappe_rows_and_label_balance(frappe):
    data_dir, raw = frappe
    manifest = load_manifest(data_dir)
    got = {s: (manifest.splits[s].rows, manifest.splits[s].positives) for s in FILES}
    assert got == {"train": (202_027, 67_604), "valid": (57_722, 19_063), "test": (28_860, 9_536)}
    assert manifest.group_key == "user"
    assert manifest.options["min_count"] == 2
    assert len(manifest.splits["train"].shards) == 8
    assert all(v == {} for files in manifest.raw["malformed"].values() for v in files.values())


@pytest.mark.slow
def test_frappe_vocabulary_sizes_against_the_reference(frappe):
    data_dir, raw = frappe
    manifest = load_manifest(data_dir)
    sizes = {f.name: f.reference_vocab_size for f in manifest.fields}
    # Exact sizes on the rebuilt train file (reference convention: tokens + PAD + OOV).
    assert sizes == {
        "user": 933,
        "item": 4084,
        "daytime": 9,
        "weekday": 9,
        "isweekend": 4,
        "homework": 5,
        "cost": 4,
        "weather": 11,
        "country": 81,
        "city": 230,
    }
    # Time and situation context fields equal the reference; item too (all apps appear >= 2).
    for name in ("item", "daytime", "weekday", "isweekend", "homework", "cost", "weather"):
        assert sizes[name] == REFERENCE_SIZES[name], name
    # The rebuilt train leaves 13 fewer ids above the min count (reference section 9):
    # user -9, country -1, city -3 (negatives re-drew which user/location rows appear twice).
    assert sum(sizes.values()) == sum(REFERENCE_SIZES.values()) - 13 == 5370
    assert manifest.raw["reference_vocab_total"] == 5370
    # Keras convention: one reserved id (OOV) instead of two.
    assert manifest.vocab_sizes["user"] == 932


@pytest.mark.slow
def test_frappe_vocabularies_and_ids_equal_hand_encoding(frappe):
    data_dir, raw = frappe
    manifest = load_manifest(data_dir)
    counts = {f: Counter() for f in FIELDS}
    for _, values in raw["train"]:
        for f, v in zip(FIELDS, values, strict=True):
            counts[f][v] += 1
    for f in FIELDS:
        expected = sorted(
            (t for t, c in counts[f].items() if c >= 2), key=lambda t: (-counts[f][t], t)
        )
        assert manifest.vocabulary(f) == expected, f
    vocab = {f: vocab_ids(data_dir, f) for f in FIELDS}
    for split in ("valid", "test"):  # raw order
        got = read_split(data_dir, split)
        want = np.array(
            [
                [vocab[f].get(v, 0) for f, v in zip(FIELDS, vals, strict=True)]
                for _, vals in raw[split]
            ]
        )
        np.testing.assert_array_equal(np.stack([got[f] for f in FIELDS], axis=1), want)
        np.testing.assert_array_equal(got["label"], [y for y, _ in raw[split]])
    # The first test row, literally: "-1 204:1 4798:1 5041:1 5046:1 5053:1 5055:1 5058:1 5060:1 5073:1 5183:1".
    got = read_split(data_dir, "test")
    assert raw["test"][0][1][0] == "204" and got["label"][0] == 0
    assert got["user"][0] == vocab["user"]["204"]
    assert got["item"][0] == vocab["item"]["4798"]
    assert got["city"][0] == vocab["city"]["5183"]
    # Unseen in train (or seen once) -> 0.
    rare_users = [u for u, c in counts["user"].items() if c < 2]
    assert rare_users and all(u not in vocab["user"] for u in rare_users)


@pytest.mark.slow
def test_frappe_bars_csv_gives_the_same_ids_as_libfm(frappe, tmp_path):
    data_dir, raw = frappe
    header = "label," + ",".join(FIELDS)
    for split, name in (("train", "train.csv"), ("valid", "valid.csv"), ("test", "test.csv")):
        lines = [f"{y}," + ",".join(v) for y, v in raw[split][:3000]]
        write_text(tmp_path / "csv" / name, header + "\r\n" + "\r\n".join(lines) + "\r\n")
        libfm = [
            ("1" if y else "-1") + " " + " ".join(f"{x}:1" for x in v) for y, v in raw[split][:3000]
        ]
        names = {
            "train": "frappe.train.libfm",
            "valid": "frappe.validation.libfm",
            "test": "frappe.test.libfm",
        }
        write_text(tmp_path / "libfm" / (names[split] + ".gz"), "\r\n".join(libfm) + "\r\n")
    from_csv = prepare("frappe", str(tmp_path / "csv"), str(tmp_path / "out_csv"))
    from_libfm = prepare("frappe", str(tmp_path / "libfm"), str(tmp_path / "out_libfm"))
    for f in FIELDS:
        assert load_manifest(from_csv).vocabulary(f) == load_manifest(from_libfm).vocabulary(f)
    for split in ("train", "valid", "test"):
        a, b = read_split(from_csv, split), read_split(from_libfm, split)
        for key in (*FIELDS, "label"):
            np.testing.assert_array_equal(a[key], b[key])


def test_gauc_groups_are_frappes_raw_users_not_encoded_ids(frappe):
    """The reference groups gAUC by the raw user (``group_id: copy_from(user), remap:
    False``): every user below the min count or unseen in train keeps its own group, where
    the encoded id puts them all in group 0 (valid: 884 users, 870 ids; test: 811, 802)."""
    from pipelines.data import make_dataset
    from pipelines.data.manifest import GROUP_FEATURE

    data_dir, rows = frappe
    for split, users, ids in (("valid", 884, 870), ("test", 811, 802)):
        batch, _ = next(iter(make_dataset(data_dir, split, 100_000, with_group=True)))
        groups, encoded = batch[GROUP_FEATURE].numpy(), batch["user"].numpy()
        raw_users = [tokens[0] for _, tokens in rows[split]]  # the libFM user index
        assert len(np.unique(groups)) == users == len(set(raw_users))
        assert len(np.unique(encoded)) == ids
        assert len(set(zip(groups.tolist(), encoded.tolist(), strict=True))) == users
        # one group per raw user, in the raw order
        first = {}
        for user, group in zip(raw_users, groups.tolist(), strict=True):
            assert first.setdefault(user, group) == group
    train, _ = next(iter(make_dataset(data_dir, "train", 10, with_group=False)))
    assert GROUP_FEATURE not in train  # not a model input
