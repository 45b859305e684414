"""Serving speed: the exported SavedModel (raw values, in-graph lookup) vs Keras ``predict``.

Measures, in one process and interleaved so machine load hits both alike:
- latency at batch 1 (p50, p99 over many single-row requests),
- throughput at batch 1024 (rows/s),
for the loaded ``serving_default`` signature fed raw values, and for the in-memory Keras model
fed encoded ids through ``predict`` and ``predict_on_batch``; prints the ratios.

    python benchmarks/serving_bench.py --run-dir runs/bench-frappe/tf4ctr-seed2023
    python benchmarks/serving_bench.py            # trains a 1-epoch Frappe model first
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as `python benchmarks/<script>.py` from anywhere

from benchmarks.report import replace_section  # noqa: E402

FRAPPE = REPO.parent / "shared" / "data" / "frappe"


def _finished_run(tmp: Path) -> Path:
    """A 1-epoch TF4CTR run on Frappe (reference architecture) when none is given."""
    import yaml

    from pipelines.data.prepare import prepare
    from pipelines.training.config import resolve_config
    from pipelines.training.run import train

    dataset_dir = prepare("frappe", str(FRAPPE), tmp / "data")
    config = resolve_config(
        "frappe", overrides={"train.max_epochs": 1, "data.path": str(dataset_dir)}
    )
    run_dir = tmp / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config.to_dict()))
    train(config, dataset_dir, run_dir, verbose=0)
    return run_dir


def _timed(fn, repeats: int) -> np.ndarray:
    out = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        fn(i)
        out[i] = time.perf_counter() - start
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run-dir", help="a finished pipelines.train run (default: train one)")
    p.add_argument("--requests", type=int, default=300, help="batch-1 requests per path")
    p.add_argument("--batches", type=int, default=20, help="batch-1024 calls per path")
    args = p.parse_args()

    import keras

    import tf4ctr_keras  # noqa: F401
    from export import SERVING_SIGNATURE, export_run
    from export.raw_rows import RawDecoder
    from pipelines.data.manifest import load_manifest
    from pipelines.data.reader import make_dataset

    tmp = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    run_dir = Path(args.run_dir) if args.run_dir else _finished_run(tmp)
    version = export_run(run_dir, tmp / "models", model_name="bench")
    signature = tf.saved_model.load(str(version)).signatures[SERVING_SIGNATURE]
    model = keras.saving.load_model(run_dir / "model.keras")
    import json

    manifest = load_manifest(json.loads((run_dir / "metrics.json").read_text())["dataset_dir"])
    features, _ = next(iter(make_dataset(manifest, "test", 1024, shuffle=False)))
    ids = {k: v.numpy() for k, v in features.items()}
    raw = RawDecoder(manifest).decode(ids)
    raw_t = {k: tf.constant(v if v.dtype == np.float64 else v.tolist()) for k, v in raw.items()}
    one_raw = [{k: v[i : i + 1] for k, v in raw_t.items()} for i in range(1024)]
    one_ids = [{k: v[i : i + 1] for k, v in ids.items()} for i in range(1024)]

    # warm up every path (tracing, first-call allocations)
    for _ in range(3):
        signature(**one_raw[0])
        signature(**raw_t)
        model.predict(one_ids[0], verbose=0)
        model.predict_on_batch(one_ids[0])
        model.predict(ids, batch_size=1024, verbose=0)
        model.predict_on_batch(ids)

    lat = {"savedmodel": [], "keras predict": [], "keras predict_on_batch": []}
    for _ in range(3):  # interleave rounds
        lat["savedmodel"].append(
            _timed(lambda i: signature(**one_raw[i % 1024]), args.requests // 3)
        )
        lat["keras predict"].append(
            _timed(lambda i: model.predict(one_ids[i % 1024], verbose=0), args.requests // 3)
        )
        lat["keras predict_on_batch"].append(
            _timed(lambda i: model.predict_on_batch(one_ids[i % 1024]), args.requests // 3)
        )
    thr = {"savedmodel": [], "keras predict": [], "keras predict_on_batch": []}
    for _ in range(2):
        thr["savedmodel"].append(_timed(lambda i: signature(**raw_t), args.batches // 2))
        thr["keras predict"].append(
            _timed(lambda i: model.predict(ids, batch_size=1024, verbose=0), args.batches // 2)
        )
        thr["keras predict_on_batch"].append(
            _timed(lambda i: model.predict_on_batch(ids), args.batches // 2)
        )

    lines = [
        "## In-process serving speed (`python benchmarks/serving_bench.py`)",
        "",
        f"Run `{run_dir}` ({len(manifest.fields)} fields), CPU, {os.cpu_count()} cores. "
        "`savedmodel` is the exported `serving_default` fed raw values (vocabulary lookups "
        "in the graph); the Keras paths get the encoded ids of the same test rows. Paths "
        "interleaved in one process.",
        "",
        "| path | p50 ms (batch 1) | p99 ms (batch 1) | rows/s (batch 1024) |",
        "|---|---|---|---|",
    ]
    stats = {}
    for name in lat:
        t1 = np.concatenate(lat[name]) * 1e3
        tb = np.concatenate(thr[name])
        stats[name] = (np.percentile(t1, 50), np.percentile(t1, 99), 1024 / np.median(tb))
        lines.append(
            f"| {name} | {stats[name][0]:.2f} | {stats[name][1]:.2f} | {stats[name][2]:,.0f} |"
        )
    lines.append("")
    sm = stats["savedmodel"]
    for name in ("keras predict", "keras predict_on_batch"):
        k = stats[name]
        lines.append(
            f"- SavedModel vs {name}: p50 latency {sm[0] / k[0]:.2f}x, p99 "
            f"{sm[1] / k[1]:.2f}x, throughput {sm[2] / k[2]:.2f}x."
        )
    print(
        replace_section(
            REPO / "benchmarks" / "results" / "serving.md",
            "serving",
            "\n".join(lines),
            title="# Serving results",
        )
    )


if __name__ == "__main__":
    main()
