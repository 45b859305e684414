"""Ours against the authors' PyTorch code, side by side in one run, on the shared Frappe data.

Each pair runs, one after the other, our CLI (``python -m pipelines.train --dataset frappe``, the
reference configuration, seed 2023) and the authors' own code through its runner
(``../shared/peers/authors-tf4ctr/run.py``: their TF4CTRv2 or the bundled FuxiCTR DNN, the same
configuration and seed). Pairs alternate their order (A B, B A, ...) so a drift of this shared
machine hits both alike. Every figure is a ratio ours / theirs within one pair; the report gives
each pair's ratio, their median and range. Nothing is measured in-process: both are whole
processes, start-up (imports, tracing, data checks) included.

Per run it records the per-epoch training and validation seconds (ours from the run's
``history.json``, theirs from the runner's JSON lines), the whole process's wall-clock and CPU
time (user + system of the child, from ``getrusage``), and, for full runs to early stopping
(``--full-pairs``), the training time up to the end of the best validation epoch and the test
AUC. One warm-up run of each side (preparing our TFRecords, their CSVs and venv) is not counted.

It also reports the targets of the speed issue, each met or not by the measured median ratio
(:data:`TARGETS`), and how close our training step comes to this machine: in this process, at
the start and at the end of the run, it times a float32 ``tf.matmul`` at each of the model's
matrix-multiply shapes (:func:`matmul_rates`) and compares with the FLOP/s our epochs achieved
(:func:`model_matmuls` gives the counting rule).

    python -m benchmarks.vs_authors [--pairs 3] [--epochs 3] [--models tf4ctr dnn] [--full-pairs 1]
    python -m benchmarks.vs_authors --report-only     # re-render from the saved measurements

Writes ``benchmarks/results/vs_authors.md`` and the raw measurements ``vs_authors.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.report import mean_difference, replace_section
from pipelines.data.fileio import write_atomic
from pipelines.data.manifest import load_manifest
from pipelines.training.rundir import RunDir

REPO = Path(__file__).resolve().parents[1]
PEER = REPO.parent / "shared" / "peers" / "authors-tf4ctr" / "run.py"
DATA = REPO.parent / "shared" / "data" / "frappe"
RESULTS = REPO / "benchmarks" / "results" / "vs_authors.md"
RAW = REPO / "benchmarks" / "results" / "vs_authors.json"
# our model name -> the authors' model of the same architecture and configuration
PEER_MODELS = {"tf4ctr": "TF4CTRv2", "dnn": "DNN"}
# the seed of the reference configuration; full runs use SEED + pair index
SEED = 2023

log = logging.getLogger("benchmarks.vs_authors")


def _timed(cmd: list[str], cwd: Path) -> tuple[str, float, float]:
    """Runs ``cmd``; returns its stdout, wall seconds and CPU seconds (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc.stdout, wall, cpu


def _key(shape) -> str:
    return " x ".join(str(d) for d in shape)


def prepared_frappe(data_dir: Path) -> Path:
    """Our prepared Frappe dataset (the warm-up runs made it; this only finds it)."""
    from pipelines.data.prepare import prepare

    return Path(prepare("frappe", str(DATA), data_dir))


def run_ours(model: str, epochs: int | None, data_dir: Path, seed: int = SEED) -> dict:
    """One run of our CLI in a fresh run directory."""
    with tempfile.TemporaryDirectory(prefix="vs-authors-") as tmp:
        run = RunDir(Path(tmp) / "run")
        cmd = [
            sys.executable,
            "-m",
            "pipelines.train",
            "--dataset",
            "frappe",
            "--data",
            str(DATA),
            "--data-dir",
            str(data_dir),
            "--model",
            model,
            "--seed",
            str(seed),
            "--run-dir",
            str(run.path),
            "--quiet",
        ]
        if epochs is not None:
            cmd += ["--epochs", str(epochs)]
        _, wall, cpu = _timed(cmd, REPO)
        history, metrics = run.read_history(), run.read_metrics()
    return {
        "train_s": [h["train_seconds"] for h in history],
        "eval_s": [h["eval_seconds"] for h in history],
        "monitor": [h["monitor"] for h in history],
        "best_epoch": metrics["best_epoch"],
        "test_auc": metrics["test"]["auc"],
        "wall_s": wall,
        "cpu_s": cpu,
    }


def parse_peer(stdout: str) -> dict:
    """The runner's JSON lines -> the same record as :func:`run_ours` (wall and CPU apart).

    The best epoch is the one with the highest monitor, AUC + gAUC (the authors' ``monitor``),
    the first of equals, as their early stopping keeps it."""
    epochs, done = [], None
    for line in stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        if event.get("event") == "epoch":
            epochs.append(event)
        elif event.get("event") == "done":
            done = event
    if done is None or not epochs:
        raise RuntimeError(f"the authors' runner printed no epochs or no 'done' line:\n{stdout}")
    monitor = [e["val"]["AUC"] + e["val"]["gAUC"] for e in epochs]
    return {
        "train_s": [e["train_s"] for e in epochs],
        "eval_s": [e["eval_s"] for e in epochs],
        "monitor": monitor,
        "best_epoch": monitor.index(max(monitor)) + 1,
        "test_auc": done["test"]["AUC"],
    }


def run_peer(model: str, epochs: int | None, seed: int = SEED) -> dict:
    cmd = [sys.executable, str(PEER), "--model", PEER_MODELS[model], "--seed", str(seed)]
    if epochs is not None:
        cmd += ["--epochs", str(epochs)]
    stdout, wall, cpu = _timed(cmd, REPO)
    return {**parse_peer(stdout), "wall_s": wall, "cpu_s": cpu}


def to_best(record: dict) -> float:
    """Training seconds up to the end of the best epoch's validation."""
    n = record["best_epoch"]
    return sum(record["train_s"][:n]) + sum(record["eval_s"][:n])


METRICS = {
    "train epoch (median s)": lambda r: statistics.median(r["train_s"]),
    "validation (median s)": lambda r: statistics.median(r["eval_s"]),
    "whole process wall (s)": lambda r: r["wall_s"],
    "whole process CPU (s)": lambda r: r["cpu_s"],
}
FULL_METRICS = {
    **METRICS,
    "training to the best epoch (s)": to_best,
}


# (runs, model, metric) -> the largest median ratio ours / theirs the issue accepts
TARGETS = {
    ("short", "tf4ctr", "train epoch (median s)"): 0.6,
    ("short", "tf4ctr", "whole process wall (s)"): 0.7,
    ("short", "dnn", "train epoch (median s)"): 0.6,
    ("full", "tf4ctr", "training to the best epoch (s)"): 0.6,
}
MATMUL_TARGET = 0.6  # achieved FLOP/s over the matrix-multiply rate measured in the same run


def model_matmuls(model_name: str, dataset_dir: Path) -> list[tuple[int, int, int]]:
    """The ``(batch, in, out)`` shape of every Dense kernel of ``model_name`` built with the
    Frappe reference configuration on ``dataset_dir`` (2-D weights whose path ends in
    ``kernel``), one entry per kernel.

    Counting rule: a Dense layer ``(in, out)`` on a batch of ``b`` rows costs ``2 b in out``
    FLOPs forward and twice that backward (the gradients of the input and of the kernel; every
    tower's input needs its gradient, the embeddings being trained), so ``6 b in out`` per
    training step. Element-wise work (BatchNorm, activations, dropout, the loss, Adam) and the
    embedding lookups are not counted: the fraction below is of the matrix-multiply bound.
    """
    import keras

    from pipelines.data.manifest import load_manifest
    from pipelines.training.common import build_from_config
    from pipelines.training.config import resolve_config

    config = resolve_config("frappe", overrides={"model.name": model_name})
    keras.utils.set_random_seed(config.train.seed)
    model = build_from_config(config, load_manifest(dataset_dir))
    model.build()
    batch = config.train.batch_size
    return [
        (batch, int(w.shape[0]), int(w.shape[1]))
        for w in model.trainable_weights
        if len(w.shape) == 2 and w.path.endswith("kernel")
    ]


def matmul_rates(shapes, reps: int = 10, rounds: int = 5) -> dict[tuple, float]:
    """This process's float32 ``tf.matmul`` rate (FLOP/s) at each ``(m, k, n)``: the median of
    ``rounds`` timings of ``reps`` back-to-back calls of one traced function."""
    import tensorflow as tf

    rates = {}
    for m, k, n in sorted(set(shapes)):
        a = tf.random.normal((m, k), seed=1)
        b = tf.random.normal((k, n), seed=2)
        fn = tf.function(tf.matmul)
        fn(a, b).numpy()
        seconds = []
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(reps):
                out = fn(a, b)
            out.numpy()
            seconds.append((time.perf_counter() - start) / reps)
        rates[(m, k, n)] = 2 * m * k * n / statistics.median(seconds)
    return rates


def machine_fraction(shapes, rates_runs: list[dict], rows: int, epoch_seconds: float) -> dict:
    """FLOPs of a training epoch of ``rows`` rows (counting rule: :func:`model_matmuls`), the
    FLOP/s an epoch of ``epoch_seconds`` achieves, the matrix-multiply rate at the same shapes
    and the achieved fraction of it. The rate per shape is the median of the measurements in
    ``rates_runs`` (taken at the start and at the end of the benchmark); the model's rate is
    FLOP-weighted: the epoch's FLOPs over the time its matrix multiplies take at those rates."""
    flops = sum(6 * rows * k * n for _, k, n in shapes)
    rates = {s: statistics.median(r[s] for r in rates_runs) for s in rates_runs[0]}
    bound = sum(6 * rows * k * n / rates[(b, k, n)] for b, k, n in shapes)
    achieved = flops / epoch_seconds
    rate = flops / bound
    return {
        "flops_per_epoch": flops,
        "achieved_flops": achieved,
        "matmul_flops": rate,
        "fraction": achieved / rate,
        "matmul_bound_s": bound,
    }


def summarize(pairs: list[dict], metrics: dict) -> list[dict]:
    """Per metric: each pair's (ours, theirs, ours / theirs) and the ratios' median and range."""
    rows = []
    for name, fn in metrics.items():
        values = [(fn(p["ours"]), fn(p["theirs"])) for p in pairs]
        ratios = [o / t for o, t in values]
        rows.append(
            {
                "metric": name,
                "pairs": values,
                "ratios": ratios,
                "median": statistics.median(ratios),
                "low": min(ratios),
                "high": max(ratios),
            }
        )
    return rows


def _table(title: str, pairs: list[dict], metrics: dict) -> list[str]:
    lines = [
        f"### {title}",
        "",
        "| measure | "
        + " | ".join(f"pair {i + 1} ours / theirs" for i in range(len(pairs)))
        + " | ratio median (range) |",
        "|---|" + "---|" * len(pairs) + "---|",
    ]
    for row in summarize(pairs, metrics):
        cells = [f"{o:.2f} / {t:.2f} = {o / t:.2f}x" for o, t in row["pairs"]]
        lines.append(
            f"| {row['metric']} | {' | '.join(cells)} | "
            f"**{row['median']:.2f}x** ({row['low']:.2f}-{row['high']:.2f}) |"
        )
    return lines


def _targets(raw: dict) -> list[str]:
    lines = [
        "### Targets",
        "",
        "| runs | model | measure | target | measured median (range) | met |",
        "|---|---|---|---|---|---|",
    ]
    for (kind, model, metric), target in TARGETS.items():
        runs = raw.get(kind, {}).get(model)
        if not runs:
            continue
        metrics = FULL_METRICS if kind == "full" else METRICS
        row = next(r for r in summarize(runs, metrics) if r["metric"] == metric)
        met = row["median"] <= target
        label = f"{raw['epochs']} epochs" if kind == "short" else "to early stopping"
        lines.append(
            f"| {label} | {model} | {metric} | <= {target:.2f}x | {row['median']:.2f}x "
            f"({row['low']:.2f}-{row['high']:.2f}) | {'yes' if met else '**no**'} |"
        )
    full = raw.get("full", {}).get("tf4ctr", [])
    if full:
        verdict = auc_verdict(
            [p["ours"]["test_auc"] for p in full], [p["theirs"]["test_auc"] for p in full]
        )
        lines.append(
            f"| to early stopping | tf4ctr | test AUC over seeds "
            f"{', '.join(str(p.get('seed', SEED)) for p in full)}, ours vs theirs | same or "
            f"better | {verdict['text']} | {'yes' if verdict['met'] else '**no**'} |"
        )
    return lines


def auc_verdict(ours: list[float], theirs: list[float]) -> dict:
    """Whether our test AUC is the same as theirs or better: our mean is at least theirs, or
    below it by less than the standard error of the difference of the means (the seeds'
    noise, ``sqrt(s_ours^2 / n + s_theirs^2 / n)``); one seed a side has no noise estimate and
    must be at least theirs."""
    mean_o, mean_t = statistics.fmean(ours), statistics.fmean(theirs)
    diff, se = mean_difference(ours, theirs)
    se = se or 0.0
    met = diff >= -se
    spread = (
        f" ± {statistics.stdev(ours):.6f} vs {mean_t:.6f} ± {statistics.stdev(theirs):.6f}"
        if len(ours) > 1 and len(theirs) > 1
        else f" vs {mean_t:.6f}"
    )
    text = (
        f"{mean_o:.6f}{spread} (mean ± sd, n={len(ours)}); difference {diff:+.6f}, standard "
        f"error {se:.6f}"
    )
    return {"met": met, "diff": diff, "se": se, "text": text}


def _machine(raw: dict) -> list[str]:
    machine = raw.get("machine")
    if not machine:
        return []
    lines = [
        "### How close to this machine",
        "",
        "Float32 `tf.matmul` in the benchmark's own process at each of the model's shapes, "
        "timed at the start and at the end of the run (median of both); FLOPs of a training "
        "epoch counted from the Dense kernels, 6 x rows x in x out (forward, and the input "
        "and kernel gradients; element-wise work not counted), over our median epoch time.",
        "",
        "| shape (batch x in x out) | GFLOP/s start | GFLOP/s end |",
        "|---|---|---|",
    ]
    start, end = machine["rates"]
    for key in start:
        lines.append(f"| {key} | {start[key] / 1e9:.0f} | {end[key] / 1e9:.0f} |")
    lines += [
        "",
        "| model | TFLOP per epoch | our epoch (s) | achieved GFLOP/s | matmul GFLOP/s at "
        "its shapes | fraction | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model, m in machine["models"].items():
        met = m["fraction"] >= MATMUL_TARGET
        lines.append(
            f"| {model} | {m['flops_per_epoch'] / 1e12:.3f} | {m['epoch_s']:.2f} | "
            f"{m['achieved_flops'] / 1e9:.0f} | {m['matmul_flops'] / 1e9:.0f} | "
            f"{m['fraction']:.0%} | >= {MATMUL_TARGET:.0%} | {'yes' if met else '**no**'} |"
        )
    lines.append("")
    return lines


def render(raw: dict) -> str:
    lines = [
        "## Ours vs the authors' code (`python -m benchmarks.vs_authors`)",
        "",
        f"Measured {raw['date']} on this machine ({raw['cpus']} CPU cores), command "
        f"`{raw['command']}`. Frappe (official splits, `../shared/data/frappe`), reference "
        "configuration on both sides, seed 2023 (full runs: 2023 + the pair's index, on both "
        "sides); ours `python -m pipelines.train`, theirs "
        "`../shared/peers/authors-tf4ctr/run.py` (their TF4CTRv2 / FuxiCTR DNN, their own "
        "loop, CPU). Each pair runs both processes one after the other, the order alternating; "
        "every ratio is ours / theirs within a pair (below 1: ours is faster).",
        "",
    ]
    lines += _targets(raw) + [""] + _machine(raw)
    for model, runs in raw["short"].items():
        lines += _table(
            f"{model} ({PEER_MODELS[model]}), {raw['epochs']} epochs per run", runs, METRICS
        )
        lines.append("")
    for model, runs in raw.get("full", {}).items():
        lines += _table(
            f"{model} ({PEER_MODELS[model]}), full runs to early stopping", runs, FULL_METRICS
        )
        lines.append("")
        for i, p in enumerate(runs):
            lines.append(
                f"Pair {i + 1} (seed {p.get('seed', SEED)}): test AUC ours {p['ours']['test_auc']:.6f} (best epoch "
                f"{p['ours']['best_epoch']} of {len(p['ours']['train_s'])}), theirs "
                f"{p['theirs']['test_auc']:.6f} (best epoch {p['theirs']['best_epoch']} of "
                f"{len(p['theirs']['train_s'])})."
            )
        lines.append("")
    return "\n".join(lines)


def measure(
    model: str, pairs: int, epochs: int | None, data_dir: Path, vary_seed: bool = False
) -> list[dict]:
    """``pairs`` pairs of runs of ``model``, ours first in odd pairs, theirs first in even;
    both sides of a pair use one seed: 2023, or with ``vary_seed`` 2023 + the pair's index
    (full runs: a test AUC is then compared over seeds, not one seed repeated)."""
    out = []
    for i in range(pairs):
        order = ("ours", "theirs") if i % 2 == 0 else ("theirs", "ours")
        seed = SEED + i if vary_seed else SEED
        pair = {"seed": seed}
        for side in order:
            log.info("%s pair %d (seed %d): %s", model, i + 1, seed, side)
            if side == "ours":
                pair[side] = run_ours(model, epochs, data_dir, seed)
            else:
                pair[side] = run_peer(model, epochs, seed)
        out.append(pair)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=3, help="pairs of short runs per model")
    p.add_argument("--epochs", type=int, default=3, help="epochs of a short run")
    p.add_argument("--models", nargs="+", default=list(PEER_MODELS), choices=list(PEER_MODELS))
    p.add_argument("--full-pairs", type=int, default=3, help="pairs of full TF4CTR runs (0: none)")
    p.add_argument("--data-dir", default=str(REPO / "data"), help="where ours prepares Frappe")
    p.add_argument("--report-only", action="store_true", help="render the saved measurements")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.report_only:
        raw = json.loads(RAW.read_text())
    else:
        data_dir = Path(args.data_dir)
        for model in args.models:  # warm-up: our TFRecords, their CSVs and venv; not counted
            run_ours(model, 1, data_dir)
            run_peer(model, 1)
        dataset_dir = prepared_frappe(data_dir)
        shapes = {m: model_matmuls(m, dataset_dir) for m in args.models}
        all_shapes = sorted({s for v in shapes.values() for s in v})
        rates_start = matmul_rates(all_shapes)
        raw = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "cpus": os.cpu_count(),
            "command": " ".join(["python -m benchmarks.vs_authors", *(argv or sys.argv[1:])]),
            "epochs": args.epochs,
            "short": {m: measure(m, args.pairs, args.epochs, data_dir) for m in args.models},
        }
        if args.full_pairs:
            raw["full"] = {
                "tf4ctr": measure("tf4ctr", args.full_pairs, None, data_dir, vary_seed=True)
            }
        rates_end = matmul_rates(all_shapes)
        rows = load_manifest(dataset_dir).splits["train"].rows
        raw["machine"] = {
            "rates": [{_key(k): v for k, v in r.items()} for r in (rates_start, rates_end)],
            "models": {},
        }
        for m in args.models:
            epoch_s = statistics.median(
                statistics.median(p["ours"]["train_s"]) for p in raw["short"][m]
            )
            raw["machine"]["models"][m] = {
                "epoch_s": epoch_s,
                "shapes": shapes[m],
                **machine_fraction(shapes[m], [rates_start, rates_end], rows, epoch_s),
            }
        write_atomic(RAW, json.dumps(raw, indent=1))
    text = replace_section(RESULTS, "vs_authors", render(raw), title="# Ours vs the authors' code")
    log.info("\n%s", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
