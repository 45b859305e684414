"""GPU check (at most 5 minutes on one GPU): training speed at Criteo shapes and the export of a
mixed_float16 model.

1. TF4CTR and DNN training samples/s at the reference's Criteo shapes (those of
   ``benchmarks/train_bench.py``: 39 fields, 910,747 ids, d 16, batch 4096, ids from memory) in
   float32, float32 + XLA, mixed_float16 and mixed_float16 + XLA, models interleaved, and the
   TF4CTR / DNN time ratio (paper Table VI: 1.30x on a GPU).
2. Export parity in mixed_float16: a 1-epoch TF4CTR run on generated Criteo data trained with
   ``--precision mixed_float16`` is exported; the SavedModel fed raw values must give the Keras
   model's predictions on the encoded ids (float32 output, largest difference reported).

    bash benchmarks/gpu_check.sh            # on a GPU machine; writes benchmarks/results/gpu.md
    bash benchmarks/gpu_check.sh --smoke    # tiny sizes, any device, prints only
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as `python benchmarks/<script>.py` from anywhere

from benchmarks.report import replace_section  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "gpu.md"
SETTINGS = ("float32", "float32+xla", "mixed_float16", "mixed_float16+xla")
PAPER_RATIO = 1.30


def train_speed(settings, steps: int, batch: int, repeats: int, smoke: bool) -> dict:
    """{setting: {model: samples/s}} of ``fit`` steps on in-memory batches, interleaved."""
    import numpy as np

    from benchmarks.train_bench import criteo_vocab, fit_rate

    vocab = criteo_vocab()
    if smoke:  # the same 39 fields, small tables
        vocab = {k: min(v, 1000) for k, v in vocab.items()}
    rng = np.random.default_rng(0)
    n = batch * 4
    ids = {k: np.minimum(rng.zipf(1.3, n) - 1, v - 1).astype("int64") for k, v in vocab.items()}
    labels = (rng.random(n) < 0.25).astype("float32")
    units = [32, 32] if smoke else [400, 400]

    def run(model_name: str, setting: str) -> float:
        seconds, _ = fit_rate(model_name, vocab, setting, ids, labels, batch, steps, units)
        return steps * batch / seconds

    rates = {s: {"tf4ctr": [], "dnn": []} for s in settings}
    for _ in range(repeats):
        for setting in settings:
            for model_name in ("tf4ctr", "dnn"):
                rates[setting][model_name].append(run(model_name, setting))
                print(f"{setting} {model_name}: {rates[setting][model_name][-1]:,.0f} samples/s")
    return {s: {m: statistics.median(v) for m, v in r.items()} for s, r in rates.items()}


def export_parity(tmp: Path, rows: int) -> dict:
    """Trains a mixed_float16 TF4CTR run (the training CLI), exports it, compares."""
    import keras
    import numpy as np
    import tensorflow as tf

    import tf4ctr_keras  # noqa: F401
    from export import OUTPUT_NAME, SERVING_SIGNATURE, export_run
    from export.raw_rows import RawDecoder
    from pipelines.data.manifest import load_manifest
    from pipelines.data.reader import make_dataset

    run_dir = tmp / "run-mixed"
    command = [sys.executable, "-m", "pipelines.train", "--dataset", "criteo"]
    command += ["--rows", str(rows), "--epochs", "1", "--precision", "mixed_float16"]
    command += ["--run-dir", str(run_dir), "--data-dir", str(tmp / "data"), "--quiet"]
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    version = export_run(run_dir, tmp / "models", model_name="mixed")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    manifest = load_manifest(metrics["dataset_dir"])
    signature = tf.saved_model.load(str(version)).signatures[SERVING_SIGNATURE]
    model = keras.saving.load_model(run_dir / "model.keras")
    worst, count = 0.0, 0
    for features, _ in make_dataset(manifest, "test", 4096, shuffle=False):
        ids = {k: v.numpy() for k, v in features.items()}
        raw = RawDecoder(manifest).decode(ids)
        raw = {k: tf.constant(v if v.dtype == np.float64 else v.tolist()) for k, v in raw.items()}
        got = signature(**raw)[OUTPUT_NAME]
        assert got.dtype == tf.float32, got.dtype
        expected = np.asarray(model.predict_on_batch(ids)["ctr"], np.float32).reshape(-1)
        worst = max(worst, float(np.max(np.abs(got.numpy() - expected))))
        count += len(expected)
    return {"rows": count, "max_abs": worst, "policy": model.dtype_policy.name}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes on any device; prints only")
    p.add_argument("--steps", type=int, help="timed steps per setting and model (default 30)")
    p.add_argument("--repeats", type=int, default=1, help="interleaved repetitions (median)")
    p.add_argument("--rows", type=int, help="generated rows for the parity run (default 100000)")
    p.add_argument("--tolerance", type=float, default=1e-3, help="largest export difference")
    args = p.parse_args()

    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and not args.smoke:
        print("not measured: no GPU (run with --smoke to check the script on this device)")
        return 2
    device = (
        tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
        if gpus
        else f"CPU ({os.cpu_count()} cores)"
    )
    steps = args.steps or (2 if args.smoke else 30)
    batch = 256 if args.smoke else 4096
    rows = args.rows or (3000 if args.smoke else 100_000)
    start = time.perf_counter()
    speed = train_speed(SETTINGS, steps, batch, args.repeats, args.smoke)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        parity = export_parity(Path(tmp), rows)
    seconds = time.perf_counter() - start

    command = "bash benchmarks/gpu_check.sh " + " ".join(sys.argv[1:])
    lines = [
        f"## GPU check (`{command.strip()}`)",
        "",
        f"Measured {datetime.date.today().isoformat()} on {device} ({len(gpus)} GPU(s) "
        f"visible; TensorFlow {tf.__version__}), {seconds:.0f} s in all. Training: Criteo "
        f"shapes of `benchmarks/train_bench.py`{' (smoke: small tables and towers)' if args.smoke else ''}, "
        f"batch {batch}, {steps} timed `fit` steps after 3 warm-up steps per setting and "
        f"model, {args.repeats} interleaved repetition(s) (median).",
        "",
        "| setting | TF4CTR samples/s | DNN samples/s | TF4CTR / DNN time (paper 1.30x) |",
        "|---|---|---|---|",
    ]
    for setting, r in speed.items():
        lines.append(
            f"| {setting} | {r['tf4ctr']:,.0f} | {r['dnn']:,.0f} | {r['dnn'] / r['tf4ctr']:.2f}x |"
        )
    ok = parity["max_abs"] <= args.tolerance
    lines += [
        "",
        f"Export parity of a model trained in mixed_float16 (1 epoch on {rows:,} generated "
        f"Criteo rows; loaded policy `{parity['policy']}`): the SavedModel on raw values vs Keras "
        f"on the encoded ids over {parity['rows']:,} test rows, largest difference "
        f"{parity['max_abs']:.2e} ({'within' if ok else 'OVER'} {args.tolerance:g}); output "
        "float32.",
    ]
    text = "\n".join(lines)
    if args.smoke:
        print(text)
    else:
        print(replace_section(RESULTS, "gpu", text, title="# GPU results"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
