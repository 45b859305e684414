"""TensorFlow's thread pools and serving speed: the exported Criteo model under thread settings.

A served CTR request is small: at batch 1 the graph is a few hundred tiny ops, and handing
them between TensorFlow's inter-op threads (and splitting each over intra-op threads) costs
more than the ops. TF Serving sets both pools with ``--tensorflow_inter_op_parallelism`` and
``--tensorflow_intra_op_parallelism``; this benchmark measures what each setting gives the
exported ``serving_default`` (the fused graph ``python -m export`` writes) at batch 1 (p50,
p99 over single-row requests) and batch 1024 (rows/s), on the same 1024 raw test rows.

A process's thread pools are fixed when TensorFlow starts, so each setting runs in its own
child process; rounds run every setting once, the order rotating from round to round (A B C,
B C A, ...), and each ratio is against the default setting of the same round. The children also
return their predictions: every setting must predict what the default does (threads change
only how a matmul's sums are split, so the largest difference is reported, not assumed 0).

    flock /tmp/bench.lock python benchmarks/serving_threads.py [--run RUN] [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as `python benchmarks/<script>.py` from anywhere

from benchmarks.report import replace_section  # noqa: E402
from benchmarks.serving_bench import BATCH, RESULTS, flat_call, test_rows, train_run  # noqa: E402

# name -> (inter-op threads, intra-op threads); 0 lets TensorFlow choose (the number of cores)
SETTINGS = {"default": (0, 0), "inter 1": (1, 0), "inter 1, intra 1": (1, 1)}


def child(version: Path, rows: Path, inter: int, intra: int, requests: int, batches: int) -> dict:
    """Measures the export in this process with the given thread pools."""
    import tensorflow as tf

    if inter:
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    if intra:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    from export import OUTPUT_NAME, SERVING_SIGNATURE

    raw = dict(np.load(rows, allow_pickle=True))
    signature = tf.saved_model.load(str(version)).signatures[SERVING_SIGNATURE]
    names = sorted(raw)
    call = flat_call(signature, names)
    raw_tf = {k: tf.constant(v) for k, v in raw.items()}
    one = [{k: v[i : i + 1] for k, v in raw_tf.items()} for i in range(BATCH)]
    for i in range(100):  # warm up: tracing, first-call allocations
        call(one[i])
    for _ in range(3):
        call(raw_tf)
    single = np.empty(requests)
    for i in range(requests):
        start = time.perf_counter()
        call(one[i % BATCH])
        single[i] = time.perf_counter() - start
    large = np.empty(batches)
    for i in range(batches):
        start = time.perf_counter()
        call(raw_tf)
        large[i] = time.perf_counter() - start
    return {
        "p50": float(np.percentile(single * 1e3, 50)),
        "p99": float(np.percentile(single * 1e3, 99)),
        "rows_s": BATCH / float(np.median(large)),
        "predictions": call(raw_tf)[OUTPUT_NAME].numpy().reshape(-1).tolist(),
    }


def run_child(version: Path, rows: Path, setting: str, requests: int, batches: int) -> dict:
    inter, intra = SETTINGS[setting]
    command = [sys.executable, __file__, "--child", str(version), str(rows), str(inter)]
    command += [str(intra), "--requests", str(requests), "--batches", str(batches)]
    out = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if out.returncode != 0:
        raise RuntimeError(f"{setting}: {' '.join(command)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarize(rounds: list[dict[str, dict]]) -> dict[str, dict]:
    """Per setting: the medians over rounds of p50, p99 and rows/s, and of each ratio to the
    same round's default (with its range)."""
    out = {}
    for setting in SETTINGS:
        row = {
            k: statistics.median(r[setting][k] for r in rounds) for k in ("p50", "p99", "rows_s")
        }
        for k in ("p50", "p99", "rows_s"):
            ratios = [r[setting][k] / r["default"][k] for r in rounds]
            row[f"{k}_ratio"] = (statistics.median(ratios), min(ratios), max(ratios))
        out[setting] = row
    return out


def section(summary: dict, rounds: int, requests: int, batches: int, diff: float, cmd: str) -> str:
    lines = [
        f"## Thread pools (`{cmd}`)",
        "",
        f"Measured {datetime.date.today().isoformat()} on CPU, {os.cpu_count()} cores, load "
        f"average {os.getloadavg()[0]:.1f} at the end. The exported Criteo model (fused "
        f"`serving_default`, raw values, flat call) in one child process per setting and round, "
        f"{rounds} rounds with the order rotating; batch 1: {requests} single-row requests, "
        f"batch {BATCH}: the median of {batches} calls. Ratios are against the default setting "
        "(TensorFlow picks both pools) of the same round: median (range). TF Serving's flags: "
        "`--tensorflow_inter_op_parallelism`, `--tensorflow_intra_op_parallelism`.",
        "",
        "| setting (inter, intra) | p50 ms (batch 1) | ratio | p99 ms (batch 1) | ratio | rows/s "
        f"(batch {BATCH}) | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for setting, (inter, intra) in SETTINGS.items():
        r = summary[setting]

        def ratio(k, r=r):
            m, lo, hi = r[f"{k}_ratio"]
            return f"{m:.2f}x ({lo:.2f}-{hi:.2f})"

        lines.append(
            f"| {setting} ({inter or 'auto'}, {intra or 'auto'}) | {r['p50']:.2f} | "
            f"{ratio('p50')} | {r['p99']:.2f} | {ratio('p99')} | {r['rows_s']:,.0f} | "
            f"{ratio('rows_s')} |"
        )
    lines += [
        "",
        f"Largest difference of any setting's predictions from the default's on the {BATCH} "
        f"rows: {diff:.1e}.",
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", help="a finished Criteo run (default: train one, 1 epoch)")
    p.add_argument("--criteo-rows", type=int, default=200_000, help="generated rows to train on")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--requests", type=int, default=1500, help="batch-1 requests per child")
    p.add_argument("--batches", type=int, default=30, help="batch-1024 calls per child")
    p.add_argument("--child", nargs=4, metavar=("VERSION", "ROWS", "INTER", "INTRA"))
    p.add_argument("--no-write", action="store_true", help="print, do not write the results file")
    args = p.parse_args()
    if args.child:
        version, rows, inter, intra = args.child
        result = child(
            Path(version), Path(rows), int(inter), int(intra), args.requests, args.batches
        )
        print(json.dumps(result))
        return

    from export import export_run

    tmp = Path(tempfile.mkdtemp(prefix="serving-threads-"))
    run_dir = Path(args.run) if args.run else train_run("criteo", tmp, args.criteo_rows)
    _, _, raw = test_rows(run_dir)
    rows = tmp / "rows.npz"
    np.savez(rows, **raw)
    version = export_run(run_dir, tmp / "models", model_name="criteo-threads")
    settings = list(SETTINGS)
    rounds = []
    for i in range(args.rounds):
        order = settings[i % len(settings) :] + settings[: i % len(settings)]
        rounds.append({s: run_child(version, rows, s, args.requests, args.batches) for s in order})
        print(
            f"round {i + 1}: " + ", ".join(f"{s} p50 {r['p50']:.2f}" for s, r in rounds[-1].items())
        )
    base = np.asarray(rounds[0]["default"]["predictions"])
    diff = max(
        float(np.max(np.abs(np.asarray(r[s]["predictions"]) - base))) for r in rounds for s in r
    )
    command = "python benchmarks/serving_threads.py " + " ".join(sys.argv[1:])
    text = section(
        summarize(rounds), args.rounds, args.requests, args.batches, diff, command.strip()
    )
    if args.no_write:
        print(text)
        return
    print(replace_section(RESULTS, "serving_threads", text, title="# Serving results"))


if __name__ == "__main__":
    main()
