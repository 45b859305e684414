"""Bad input: skipped and counted rows, failures that name file and line, nothing partial left."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.data import DataError, get_spec, load_manifest
from pipelines.data.prepare import prepare
from pipelines.data.prepare_cli import main as prepare_main
from tests.pipeline_fixtures import write_text

GOOD = "1\t5\t\t3\t" + "\t".join(["1"] * 10) + "\t" + "\t".join(f"{j:08x}" for j in range(26))


def _criteo(path: Path, bad: dict[int, str], rows: int = 200) -> Path:
    lines = [bad.get(i, GOOD) for i in range(1, rows + 1)]
    return write_text(path, "\n".join(lines) + "\n")


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(ValueError, match="criteo, frappe, kkbox, ml-1m, movielenslatest; "):
        get_spec("avazu")


@pytest.mark.parametrize(
    ("line", "message", "reason"),
    [
        (
            GOOD.rsplit("\t", 1)[0],
            "criteo.txt line 17: expected 40 tab-separated columns, got 39",
            "wrong_column_count",
        ),
        (
            GOOD.replace("\t5\t", "\tfive\t", 1),
            "criteo.txt line 17: I1: not an integer: 'five'",
            "non_numeric_integer",
        ),
        ("2" + GOOD[1:], "criteo.txt line 17: label: expected 0 or 1, got '2'", "unknown_label"),
    ],
    ids=["columns", "integer", "label"],
)
def test_too_many_bad_rows_fail_naming_file_and_line(tmp_path, line, message, reason):
    raw = _criteo(tmp_path / "criteo.txt", {17: line, 40: line, 41: line})
    out = tmp_path / "out"
    with pytest.raises(DataError) as info:
        prepare("criteo", str(raw), str(out), min_count=1)
    text = str(info.value)
    assert message in text
    assert "3 of 200 rows malformed (1.50% > max_bad_fraction 1.00%)" in text
    assert "line 40" in text and "line 41" in text
    counts = [
        r
        for files in info.value.report["malformed"].values()
        for f in files.values()
        for r in f.items()
    ]
    assert sum(n for r, n in counts if r == reason) == 3
    assert _leftovers(out) == []  # nothing partial: no dataset dir, no tmp dir


def test_a_few_bad_rows_are_skipped_and_counted(tmp_path):
    raw = _criteo(
        tmp_path / "criteo.txt", {17: GOOD.rsplit("\t", 1)[0], 90: "x" + GOOD[1:]}, rows=300
    )
    data_dir = prepare(
        "criteo", str(raw), str(tmp_path / "out"), min_count=1, max_bad_fraction=0.01
    )
    manifest = load_manifest(data_dir)
    assert sum(s.rows for s in manifest.splits.values()) == 298
    reasons = {}
    for files in manifest.raw["malformed"].values():
        for r, n in files["criteo.txt"].items():
            reasons[r] = reasons.get(r, 0) + n
    assert reasons == {"wrong_column_count": 1, "unknown_label": 1}
    assert manifest.raw["malformed_examples"] == [
        "criteo.txt line 17: expected 40 tab-separated columns, got 39",
        "criteo.txt line 90: label: expected 0 or 1, got 'x'",
    ]


def test_missing_and_empty_files_fail_at_once(tmp_path):
    with pytest.raises(
        DataError, match="nope.txt: not found; expected a tsv file, a directory of them or a glob"
    ):
        prepare("criteo", str(tmp_path / "nope.txt"), str(tmp_path / "out"))
    empty = write_text(tmp_path / "empty.txt.gz", "")
    with pytest.raises(DataError, match=r"empty.txt.gz: file is empty"):
        prepare("criteo", str(empty), str(tmp_path / "out"))
    assert _leftovers(tmp_path / "out") == []


def test_directory_without_expected_splits_says_what_it_expected(tmp_path):
    raw = tmp_path / "frappe"
    write_text(
        raw / "frappe.train.libfm",
        "1 0:1 957:1 5039:1 5046:1 5053:1 5055:1 5058:1 5060:1 5069:1 5149:1\n",
    )
    write_text(
        raw / "frappe.validation.libfm",
        "1 0:1 957:1 5039:1 5046:1 5053:1 5055:1 5058:1 5060:1 5069:1 5149:1\n",
    )
    with pytest.raises(
        DataError, match=r"no test file matching test: test.csv or .* or frappe.test.libfm"
    ):
        prepare("frappe", str(raw), str(tmp_path / "out"))
    with pytest.raises(DataError, match="expected a directory with"):
        prepare("frappe", str(raw / "frappe.train.libfm"), str(tmp_path / "out"))
    for name in ("train.csv", "valid.csv"):
        write_text(tmp_path / "bars" / name, "label,user_id,item_id,tag_id\n1,1,2,3\n")
    with pytest.raises(DataError, match="no test file matching test: test.csv or test.csv.gz"):
        prepare("movielenslatest", str(tmp_path / "bars"), str(tmp_path / "out"))
    write_text(tmp_path / "bars" / "test.csv", "label,user,item\n1,1,2\n")
    with pytest.raises(DataError, match=r"test.csv line 1: the header names no column 'user_id'"):
        prepare("movielenslatest", str(tmp_path / "bars"), str(tmp_path / "out"))
    assert _leftovers(tmp_path / "out") == []


def test_frappe_index_outside_its_field_range_is_rejected(tmp_path):
    ok = "1 0:1 957:1 5039:1 5046:1 5053:1 5055:1 5058:1 5060:1 5069:1 5149:1"
    bad = "1 0:1 957:1 5039:1 5046:1 5053:1 5055:1 5058:1 5060:1 5069:1 99:1"
    raw = tmp_path / "raw"
    for name in ("frappe.train.libfm", "frappe.validation.libfm", "frappe.test.libfm"):
        write_text(raw / name, "\n".join([ok] * 5 + [bad]) + "\n")
    with pytest.raises(
        DataError, match=r"frappe.train.libfm line 6: city: index outside \[5149, 5381\]: '99'"
    ):
        prepare("frappe", str(raw), str(tmp_path / "out"))


def test_fingerprint_reuses_and_rebuilds(tmp_path):
    raw = _criteo(tmp_path / "criteo.txt", {})
    out = tmp_path / "out"
    first = prepare("criteo", str(raw), str(out), min_count=1)
    stamp = (first / "manifest.json").stat().st_mtime_ns
    fingerprint = load_manifest(first).fingerprint
    assert prepare("criteo", str(raw), str(out), min_count=1) == first
    assert (first / "manifest.json").stat().st_mtime_ns == stamp  # reused, not rewritten
    changed = prepare("criteo", str(raw), str(out), min_count=2)  # option changed -> rebuilt
    assert load_manifest(changed).fingerprint != fingerprint
    assert load_manifest(changed).options["min_count"] == 2
    _criteo(raw, {}, rows=150)  # input changed -> rebuilt
    assert (
        sum(
            s.rows
            for s in load_manifest(
                prepare("criteo", str(raw), str(out), min_count=2)
            ).splits.values()
        )
        == 150
    )
    assert _leftovers(out) == ["criteo"]


def test_failure_mid_run_leaves_nothing_and_stale_tmp_dirs_are_removed(tmp_path, monkeypatch):
    raw = _criteo(tmp_path / "criteo.txt", {})
    out = tmp_path / "out"
    dead = out / "criteo.tmp-999999999"  # a killed run's leftovers (no such pid)
    dead.mkdir(parents=True)
    import pipelines.data.prepare as pp

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pp, "_encode_block", boom)
    with pytest.raises(KeyboardInterrupt):
        prepare("criteo", str(raw), str(out), min_count=1)
    assert _leftovers(out) == []


def test_killed_run_never_looks_finished(tmp_path):
    raw = _criteo(tmp_path / "criteo.txt", {}, rows=20_000)
    out = tmp_path / "out"
    code = (
        "import os, pipelines.data.prepare as pp\n"
        "def die(*a, **k): os._exit(9)\n"
        "pp._ShardWriters.write = die\n"
        f"pp.prepare('criteo', {str(raw)!r}, {str(out)!r}, min_count=1)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert proc.returncode == 9
    left = _leftovers(out)
    assert "criteo" not in left and all(".tmp-" in n for n in left)
    with pytest.raises(FileNotFoundError, match="no manifest"):
        load_manifest(out / "criteo")
    prepare("criteo", str(raw), str(out), min_count=1)  # the next run cleans up and finishes
    assert _leftovers(out) == ["criteo"]


def test_prepare_cli_exit_codes(tmp_path, caplog):
    raw = _criteo(tmp_path / "criteo.txt", {})
    assert (
        prepare_main(
            [
                "--dataset",
                "criteo",
                "--raw",
                str(raw),
                "--out",
                str(tmp_path / "out"),
                "--min-count",
                "1",
                "--shards",
                "2",
            ]
        )
        == 0
    )
    assert len(load_manifest(tmp_path / "out" / "criteo").splits["train"].shards) == 2
    assert (
        prepare_main(
            [
                "--dataset",
                "criteo",
                "--raw",
                str(tmp_path / "missing"),
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 2
    )
    assert "missing: not found" in caplog.text
