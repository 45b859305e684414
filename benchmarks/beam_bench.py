"""Beam benchmark: preprocessing rows/s in process, on Beam with 1 and with 2 local workers, on
the same generated Criteo file, side by side; and an estimate for Criteo 1TB on N workers.

Each run is ``prepare(..., force=True)`` in a fresh subprocess, timed inside it (interpreter
and TensorFlow start-up excluded; Beam's own start-up -- workers, pipeline stages -- included):
in process; ``--runner beam`` with its in-memory runner (1 worker); ``--runner beam
--direct_num_workers=2 --direct_running_mode=multi_processing`` (2 worker processes). Every
configuration runs on two file sizes (``--rows`` and half of it) in the order A B C C B A, so
that a drift of the machine does not favour one; the *marginal* rate (extra rows / extra
seconds between the two sizes) is the per-row cost without the fixed start-up, which is what
a billion-row job pays. The Criteo 1TB estimate divides 4.4 billion rows by the measured
marginal rate per worker times N: an estimate that assumes the rate per worker holds as
workers are added (it ignores the shuffle of encoded records and storage throughput, and a
gzip file is one unit of work: the 24 ``day_*.gz`` files keep at most 24 workers busy unless
they are decompressed or split first).

Usage::

    python benchmarks/beam_bench.py                     # 600k rows (and 300k)
    python benchmarks/beam_bench.py --rows 200000 --no-write
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CRITEO_1TB_ROWS = 4.4e9
RESULTS = ROOT / "benchmarks" / "results" / "pipeline.md"
SECTION = "## Preprocessing on Apache Beam"
CONFIGS = {
    "in-process": ("in-process", []),
    "beam, 1 worker": ("beam", []),
    "beam, 2 workers": (
        "beam",
        ["--direct_num_workers=2", "--direct_running_mode=multi_processing"],
    ),
}
WORKERS = {"in-process": 1, "beam, 1 worker": 1, "beam, 2 workers": 2}

_CHILD = """
import json, sys, time
from pipelines.data.beam import prepare
from pipelines.data.manifest import load_manifest
raw, out, runner, args = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
start = time.perf_counter()
path = prepare("criteo", raw, out, force=True, runner=runner, pipeline_args=args)
seconds = time.perf_counter() - start
m = load_manifest(path)
print(json.dumps({"seconds": seconds, "rows": sum(s.rows for s in m.splits.values()),
                  "vocab_tokens": sum(f.num_tokens for f in m.fields)}))
"""


def run(raw: Path, out: Path, runner: str, args: list[str]) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(raw), str(out), runner, json.dumps(args)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        raise RuntimeError(f"{runner} {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=600_000)
    parser.add_argument("--workdir", default=None, help="scratch directory (default: a temp dir)")
    parser.add_argument("--no-write", action="store_true", help=f"do not update {RESULTS.name}")
    args = parser.parse_args(argv)
    from pipelines.data.generate import generate_criteo

    work = Path(args.workdir or tempfile.mkdtemp(prefix="beam-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    sizes = [args.rows // 2, args.rows]
    raws = {}
    for rows in sizes:
        raws[rows] = work / f"criteo-{rows}.txt"  # plain text: Beam splits it into blocks
        if not raws[rows].exists():
            generate_criteo(str(raws[rows]), rows, seed=0)
    results: dict[str, dict[int, list[float]]] = {name: {r: [] for r in sizes} for name in CONFIGS}
    order = list(CONFIGS) + list(reversed(CONFIGS))
    for name in order:
        runner, extra = CONFIGS[name]
        for rows in sizes:
            got = run(raws[rows], work / "out", runner, extra)
            assert got["rows"] == rows, (name, got)
            results[name][rows].append(got["seconds"])
            print(f"{name:16s} {rows:>9,d} rows {got['seconds']:7.1f} s", flush=True)

    small, big = sizes
    table = []
    for name in CONFIGS:
        t_small = sum(results[name][small]) / len(results[name][small])
        t_big = sum(results[name][big]) / len(results[name][big])
        marginal = (big - small) / (t_big - t_small)
        table.append((name, t_big, big / t_big, marginal, marginal / WORKERS[name]))
    base = table[0]
    lines = [
        f"| run | seconds at {big:,} rows | rows/s end to end | marginal rows/s | vs in-process | "
        "marginal rows/s per worker |",
        "|---|---|---|---|---|---|",
    ]
    for name, seconds, rate, marginal, per_worker in table:
        lines.append(
            f"| {name} | {seconds:.1f} | {rate:,.0f} | {marginal:,.0f} | "
            f"{marginal / base[3]:.2f}x | {per_worker:,.0f} |"
        )
    per_worker = table[2][4]  # the 2-process run: the distributed path's cost per row
    estimate = ["| workers | Criteo 1TB (4.4e9 rows), estimated hours |", "|---|---|"]
    for n in (1, 8, 24, 64, 256):
        estimate.append(f"| {n} | {CRITEO_1TB_ROWS / (per_worker * n) / 3600:.1f} |")
    print("\n".join(lines + [""] + estimate))
    if not args.no_write:
        write_section(lines, estimate, big, small, per_worker, argv)
    return 0


def write_section(table, estimate, big, small, per_worker, argv) -> None:
    command = "python benchmarks/beam_bench.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = "\n".join(
        [
            SECTION,
            "",
            f"`{command.strip()}` on this project's 2-core machine, "
            f"{datetime.date.today().isoformat()}: generated Criteo rows (plain TSV, 16 MiB "
            f"blocks), {small:,} and {big:,} rows, each configuration in a fresh process, "
            "A B C C B A. *Marginal* = extra rows / extra seconds between the two sizes (the "
            "cost per row without the fixed start-up of workers and stages).",
            "",
            *table,
            "",
            "Criteo 1TB **estimate** from the measured marginal rate per worker of the 2-process "
            f"run ({per_worker:,.0f} rows/s), assuming it holds as workers are added (no "
            "shuffle or storage limit; the 24 `day_*.gz` files are 24 units of work, so more "
            "than 24 workers need them decompressed or split):",
            "",
            *estimate,
            "",
        ]
    )
    old = RESULTS.read_text() if RESULTS.exists() else "# Pipeline benchmark\n"
    if SECTION in old:
        head, _, rest = old.partition(SECTION)
        tail = rest.split("\n## ", 1)
        old = head.rstrip() + "\n" + ("\n## " + tail[1] if len(tail) > 1 else "")
    RESULTS.write_text(old.rstrip() + "\n\n" + text)


if __name__ == "__main__":
    raise SystemExit(main())
