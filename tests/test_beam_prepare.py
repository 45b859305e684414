"""Preprocessing on Apache Beam: the same dataset as the in-process path (manifest, vocabularies,
split rows, the multiset of decoded records per split, the malformed-row report), the same
failures, nothing published by a failed or killed job, and ``--runner beam`` on the CLI.

The parity jobs run on Beam's local runner with 2 worker processes (the distributed path:
pickled steps, a fresh interpreter per worker, data between them through the runner); the
failure and CLI checks on its in-memory runner (one worker, the same pipeline, without each
worker's start-up cost). Beam's ``multi_threading`` mode is not used: on this stack it failed
in 1 of 4 runs decoding its own data stream (``Invalid PaneInfoEncoding``).
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("apache_beam", reason="the [beam] extra (requirements.txt pins it)")

from pipelines.data import DataError, fileio, load_manifest  # noqa: E402
from pipelines.data.beam import files as beam_files  # noqa: E402
from pipelines.data.beam import prepare_beam  # noqa: E402
from pipelines.data.datasets.base import RawFile  # noqa: E402
from pipelines.data.generate import generate_criteo  # noqa: E402
from pipelines.data.prepare import prepare  # noqa: E402
from pipelines.data.prepare_cli import main as prepare_main  # noqa: E402
from tests.pipeline_fixtures import read_split  # noqa: E402
from tests.test_own_data import _rows, schema_file, write_csv, write_parquet  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PROCESSES = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
IN_MEMORY: list[str] = []
# Manifest keys that name this run (time, where the shards are, their bytes), not the dataset.
RUN_KEYS = {"created"}


def _beam(*args, pipeline_args=IN_MEMORY, **kwargs):
    return prepare_beam(*args, runner="beam", pipeline_args=pipeline_args, **kwargs)


def _records(data_dir: Path) -> dict[str, Counter]:
    """Each split's decoded records as a multiset of (label, field values...); float values
    by their bits, so NaN equals NaN and 1 ulp is a difference."""
    out = {}
    manifest = load_manifest(data_dir)
    for split in ("train", "valid", "test"):
        columns = read_split(data_dir, split)
        parts = [columns["label"].reshape(len(columns["label"]), -1)]
        for name in manifest.field_names:
            values = columns[name].reshape(len(columns["label"]), -1)
            parts.append(values.view(np.int32) if values.dtype == np.float32 else values)
        rows = np.concatenate([p.astype(np.int64) for p in parts], axis=1)
        out[split] = Counter(map(tuple, rows.tolist()))
    return out


def assert_same_dataset(beam_dir: Path, local_dir: Path) -> dict:
    """The Beam output is the in-process one: manifest (less run facts and shard files),
    vocabulary files byte for byte, split rows, records per split."""
    a = json.loads((beam_dir / "manifest.json").read_text())
    b = json.loads((local_dir / "manifest.json").read_text())
    assert sorted(a) == sorted(b)
    for key in sorted(set(a) - RUN_KEYS - {"splits"}):
        assert a[key] == b[key], key
    for split in ("train", "valid", "test"):
        sa, sb = a["splits"][split], b["splits"][split]
        assert (sa["rows"], sa["positives"]) == (sb["rows"], sb["positives"]), split
        assert [s["file"] for s in sa["shards"]] == [s["file"] for s in sb["shards"]]
        assert sum(s["rows"] for s in sa["shards"]) == sa["rows"]
    vocab = sorted(p.name for p in (local_dir / "vocab").iterdir())
    assert sorted(p.name for p in (beam_dir / "vocab").iterdir()) == vocab
    for name in vocab:
        assert (beam_dir / "vocab" / name).read_bytes() == (local_dir / "vocab" / name).read_bytes()
    assert load_manifest(beam_dir).shard_problems(verify=True) == []
    assert _records(beam_dir) == _records(local_dir)
    return a


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


# ------------------------------------------------------------------ units and blocks


@pytest.mark.parametrize("block_bytes", [1, 7, 64, 1 << 20])
@pytest.mark.parametrize(
    "text",
    [
        b"a\tb\nc\td\n",
        b"a\r\nbb\r\n\r\nccc",  # CRLF, an empty line, no final terminator
        b"x" * 100 + b"\ny\n",  # a line longer than the block
        b"one line, no terminator\r",
    ],
)
def test_line_spans_cut_the_in_process_blocks(tmp_path, text, block_bytes):
    path = tmp_path / "raw.txt"
    path.write_bytes(text)
    want = list(fileio.iter_line_blocks(str(path), block_bytes))
    with open(path, "rb") as f:
        spans = list(fileio.line_spans(f, str(path), block_bytes))
    got = [
        (first, [ln.removesuffix(b"\r") for ln in data.split(b"\n")]) for first, _, data in spans
    ]
    assert got == want
    for _, offset, data in spans:  # each block's bytes sit at its offset in the file
        assert text[offset : offset + len(data)] == data


def test_empty_and_truncated_files_fail_naming_the_file(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with open(empty, "rb") as f, pytest.raises(DataError, match="empty.txt: file is empty"):
        list(fileio.line_spans(f, str(empty), 64))
    raw = tmp_path / "cut.txt.gz"
    generate_criteo(str(raw), 2000, seed=1)
    raw.write_bytes(raw.read_bytes()[:5000])
    with (
        beam_files._open(str(raw), compressed=True) as f,
        pytest.raises(DataError, match=r"cut.txt.gz: truncated gzip file"),
    ):
        list(fileio.line_spans(f, str(raw), 1 << 20))


def test_units_of_a_plain_file_are_its_blocks_and_a_gzip_file_is_one(tmp_path):
    from pipelines.data.datasets import get_spec

    spec = get_spec(str(schema_file(tmp_path)))
    plain = write_csv(tmp_path / "clicks.csv", _rows(200))
    units = list(beam_files.units(spec, 3, RawFile(str(plain), None), 1024))
    blocks = list(fileio.iter_line_blocks(str(plain), 1024))
    assert [(u.block_index, u.first_line) for u in units] == [
        (i, first) for i, (first, _) in enumerate(blocks)
    ]
    header = plain.read_bytes().split(b"\n", 1)[0]
    assert units[0].head == b"" and {u.head for u in units[1:]} == {header}
    assert {u.file_index for u in units} == {3}
    packed = tmp_path / "clicks.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert list(beam_files.units(spec, 0, RawFile(str(packed), None), 1024)) == [beam_files.Unit(0)]


# ------------------------------------------------------------------ parity


@pytest.fixture(scope="module")
def criteo_raw(tmp_path_factory):
    """Generated Criteo rows with malformed lines spread through the file (wrong column
    count, a non-numeric integer, an unknown label), in two files split by hash."""
    root = tmp_path_factory.mktemp("beam-criteo")
    paths = []
    for i, rows in enumerate((12_000, 6_000)):
        plain = root / f"part{i}.txt"
        generate_criteo(str(plain), rows, seed=10 + i)
        lines = plain.read_bytes().split(b"\n")
        lines[7] = b"1\t2\t3"
        lines[500] = b"x" + lines[500]
        cells = lines[4000].split(b"\t")
        cells[3] = b"12.5"
        lines[4000] = b"\t".join(cells)
        plain.write_bytes(b"\n".join(lines))
        paths.append(plain)
    # the second file gzip-compressed: one unit, read block by block by one worker
    packed = root / "part1.txt.gz"
    packed.write_bytes(gzip.compress(paths[1].read_bytes(), mtime=0))
    paths[1].unlink()
    return root, f"{root}/part*"


@pytest.fixture(scope="module")
def criteo_pair(criteo_raw):
    root, raw = criteo_raw
    options = dict(min_count=2, block_bytes=256 << 10, max_bad_fraction=0.01)
    local = prepare("criteo", raw, root / "local", **options)
    start = time.perf_counter()
    beam = _beam("criteo", raw, root / "beam", pipeline_args=PROCESSES, **options)
    return local, beam, time.perf_counter() - start


def test_beam_on_2_worker_processes_prepares_the_in_process_criteo_dataset(criteo_pair):
    local, beam, _ = criteo_pair
    manifest = assert_same_dataset(beam, local)
    assert sum(s["rows"] for s in manifest["splits"].values()) == 18_000 - 6
    reasons = Counter()
    for split in manifest["malformed"].values():
        for counts in split.values():
            reasons.update(counts)
    assert reasons == {"wrong_column_count": 2, "unknown_label": 2, "non_numeric_integer": 2}
    examples = manifest["malformed_examples"]
    assert examples[0] == "part0.txt line 8: expected 40 tab-separated columns, got 3"
    assert len(examples) == 6 and examples[3].startswith("part1.txt.gz line 8:")


def test_a_beam_dataset_is_reused_by_either_runner(criteo_raw, criteo_pair):
    root, raw = criteo_raw
    local, beam, _ = criteo_pair
    assert load_manifest(beam).fingerprint == load_manifest(local).fingerprint
    stamp = (beam / "manifest.json").stat().st_mtime_ns
    options = dict(min_count=2, block_bytes=256 << 10)
    assert prepare("criteo", raw, root / "beam", **options) == beam  # in process: reused
    assert _beam("criteo", raw, root / "beam", **options) == beam
    assert (beam / "manifest.json").stat().st_mtime_ns == stamp


@pytest.fixture(scope="module")
def own_raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("beam-own")
    rows = _rows(3000, seed=4)
    return root, rows, write_csv(root / "clicks.csv", rows)


@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "parquet"])
def test_beam_prepares_the_in_process_dataset_of_a_user_schema(own_raw, fmt):
    # categorical with a min count, a transform, a sequence, dense numerics (standard and
    # minmax), bucketized numerics, a hashed field, an int code; a header line per block
    root, rows, csv = own_raw
    schema = schema_file(root)
    if fmt == "csv":
        raw = csv
    elif fmt == "csv.gz":
        raw = root / "clicks.csv.gz"
        raw.write_bytes(gzip.compress(csv.read_bytes(), mtime=0))
    else:
        raw = write_parquet(root / "clicks.parquet", rows)
        data = yaml.safe_load(schema.read_text())
        data.pop("header")
        schema = root / "clicks-parquet.yaml"
        schema.write_text(json.dumps(data | {"format": "parquet"}))
    options = dict(block_bytes=8 << 10)
    local = prepare(str(schema), str(raw), root / f"local-{fmt}", **options)
    beam = _beam(str(schema), str(raw), root / f"beam-{fmt}", pipeline_args=PROCESSES, **options)
    manifest = assert_same_dataset(beam, local)
    dense = [f for f in manifest["fields"] if f["kind"] == "numeric"]
    assert {f["name"] for f in dense} == {"year", "hour"}
    assert all(f["normalization"]["count"] > 2000 for f in dense)


# ------------------------------------------------------------------ failures


def test_too_many_malformed_rows_fail_as_in_process_and_publish_nothing(tmp_path):
    raw = tmp_path / "bad.txt"
    generate_criteo(str(raw), 3000, seed=2)
    lines = raw.read_bytes().split(b"\n")
    for i in range(0, 3000, 40):  # 2.5 % malformed
        lines[i] = b"0\tnot a row"
    raw.write_bytes(b"\n".join(lines))
    with pytest.raises(DataError) as local:
        prepare("criteo", str(raw), tmp_path / "local", min_count=1, block_bytes=32 << 10)
    out = tmp_path / "beam"
    with pytest.raises(DataError) as beam:
        _beam("criteo", str(raw), out, min_count=1, block_bytes=32 << 10)
    assert str(beam.value) == str(local.value)
    assert str(beam.value).startswith("bad.txt: 75 of 3000 rows malformed (2.50% > ")
    assert beam.value.report == local.value.report
    assert _leftovers(out) == []


def test_an_unreadable_file_fails_naming_it_and_publishes_nothing(tmp_path):
    raw = tmp_path / "cut.txt.gz"
    generate_criteo(str(raw), 3000, seed=1)
    raw.write_bytes(raw.read_bytes()[:20_000])
    with pytest.raises(DataError, match=r"cut.txt.gz: truncated gzip file"):
        _beam("criteo", str(raw), tmp_path / "out", min_count=1)
    assert _leftovers(tmp_path / "out") == []
    header_only = write_csv(tmp_path / "clicks.csv", [])
    with pytest.raises(DataError, match=r"clicks.csv: no data rows; expected csv rows of clicks"):
        _beam(str(schema_file(tmp_path)), str(header_only), tmp_path / "out")
    with pytest.raises(ValueError, match="a URI that the workers of DataflowRunner can write"):
        prepare_beam("criteo", str(raw), tmp_path / "out", runner="DataflowRunner")


_KILLED_JOB = """
import sys
from pipelines.data.beam import prepare_beam
prepare_beam("criteo", sys.argv[1], sys.argv[2], min_count=1, block_bytes=512 << 10)
"""


def test_a_killed_job_leaves_nothing_that_looks_prepared_and_a_rerun_finishes(tmp_path):
    raw = tmp_path / "c.txt"
    generate_criteo(str(raw), 40_000, seed=3)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_JOB, str(raw), str(out)],
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    try:  # kill it once pass 2 is writing shards into the job's directory
        while time.monotonic() < deadline and proc.poll() is None:
            if any(p.name.startswith("beam-temp-") for p in out.glob("criteo.tmp-*/*")):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the job ended before it was killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    left = _leftovers(out)
    assert left and all(".tmp-" in n for n in left)  # the half-written job, under its tmp name
    with pytest.raises(FileNotFoundError, match="no manifest"):
        load_manifest(out / "criteo")
    local = prepare("criteo", str(raw), tmp_path / "local", min_count=1, block_bytes=512 << 10)
    beam = _beam("criteo", str(raw), out, min_count=1, block_bytes=512 << 10)
    assert _leftovers(out) == ["criteo"]  # the rerun removed the killed job's directory
    assert_same_dataset(beam, local)


# ------------------------------------------------------------------ command line


def test_the_cli_runs_beam_with_its_pipeline_options(tmp_path, capsys):
    raw = tmp_path / "c.txt"
    generate_criteo(str(raw), 2000, seed=6)
    args = ["--dataset", "criteo", "--raw", str(raw), "--out", str(tmp_path), "--min-count", "1"]
    assert prepare_main([*args, "--runner", "beam", *IN_MEMORY, "--shards", "3"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert printed == str(tmp_path / "criteo")
    manifest = load_manifest(tmp_path / "criteo")
    assert [len(s.shards) for s in manifest.splits.values()] == [3, 3, 3]
    assert sum(s.rows for s in manifest.splits.values()) == 2000
    with pytest.raises(SystemExit) as stop:  # Beam options without a Beam runner
        prepare_main([*args, "--direct_num_workers=2"])
    assert stop.value.code == 2
    assert "need --runner beam" in capsys.readouterr().err


def test_train_prepares_raw_data_through_the_configured_runner(tmp_path, monkeypatch):
    from pipelines.training import inputs
    from pipelines.training.config import resolve_config

    raw = tmp_path / "c.txt"
    generate_criteo(str(raw), 1000, seed=7)
    seen = {}

    def fake_prepare(*args, **kwargs):
        seen.update(kwargs)
        return tmp_path

    monkeypatch.setattr("pipelines.data.beam.prepare_beam", fake_prepare)
    from pipelines.training.cli import build_parser, config_from_args

    args = build_parser().parse_args(
        [
            "--dataset",
            "criteo",
            "--data",
            str(raw),
            "--data-dir",
            str(tmp_path / "data"),
            "--runner",
            "beam",
            "--beam-options=--direct_num_workers=2 --direct_running_mode=multi_processing",
        ]
    )
    config = config_from_args(args)
    assert inputs.resolve_dataset(config) == tmp_path
    assert seen["runner"] == "beam" and seen["pipeline_args"] == PROCESSES
    assert "runner" not in resolve_config("criteo").to_dict()["data"]  # unset: not in the config


def test_beam_job_logs_the_malformed_examples_it_skipped(criteo_raw, criteo_pair, caplog):
    root, raw = criteo_raw
    with caplog.at_level("WARNING", logger="pipelines.data.beam.pipeline"):
        _beam("criteo", raw, root / "again", min_count=2, block_bytes=256 << 10)
    logged = [r.getMessage() for r in caplog.records if "Skipping malformed row" in r.getMessage()]
    assert logged[0] == (
        "Skipping malformed row: part0.txt line 8: expected 40 tab-separated columns, got 3"
    )
