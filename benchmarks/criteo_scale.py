"""Criteo-scale benchmark: preprocess tens of millions of generated rows in bounded memory, then
train the reference Criteo TF4CTR configuration streaming from the prepared shards on disk.

One command::

    python benchmarks/criteo_scale.py --rows 45000000 --workdir /work/scratch/criteo45m

Stages (each heavy one in a child process whose resident memory is sampled from
``/proc/<pid>/status`` every ``--sample-every`` seconds):

1. **Generate** ``<workdir>/criteo_<rows>.txt.gz`` (seed 1) unless it exists; written to a
   temporary name and renamed, with the rate recorded beside it (``.gen.json``).
2. **Prepare** (``prepare("criteo", ...)``, count pass + encode pass): wall seconds, rows/s, peak
   RSS (``ru_maxrss``) and the sampled RSS at 10 %, 50 % and 90 % of the run and its maximum. The
   generator's cardinalities are bounded, so the vocabularies saturate early and RSS must plateau
   (not grow with rows). Also the kept vocabulary, the output size on disk and the shard count.
   The result is cached in ``<workdir>/prepare.json``; a re-run reuses it unless
   ``--force-prepare``.
3. **Reader** alone: ``make_dataset(train, 4096, shuffle=True, seed)`` samples/s.
4. **Training streaming from disk**: the reference Criteo configuration
   (``pipelines/configs/criteo.yaml``, built and compiled as the training CLI does) ``fit`` for
   ``--steps`` steps on the shuffled train split, vs the same model fed one in-memory batch
   repeated (the pure compute rate). Steady-state samples/s exclude the first ``--warmup-steps``
   (tracing, shuffle-buffer fill), measured with per-batch timestamps inside one ``fit``.

The table and a short interpretation go to the ``criteo_scale`` section of
``benchmarks/results/criteo_speed.md`` (other sections are kept). ``/proc/loadavg`` is recorded
at the start and end of every stage: the machine may be shared, so rates are lower bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GEN_SEED = 1
FRACTIONS = (0.1, 0.5, 0.9)


# --------------------------------------------------------------------------- helpers


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages, e.g. ``"2.31 2.10 1.95"``."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def read_rss_mb(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) of ``pid`` in MB (MiB) from ``/proc/<pid>/status``; None once it is gone."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    if "VmRSS" not in values:
        return None
    return values["VmRSS"], values.get("VmHWM", values["VmRSS"])


def rss_at_fractions(
    samples: list[tuple[float, float]], fractions=FRACTIONS, duration: float | None = None
) -> dict[float, float]:
    """RSS at given fractions of a run: for each ``f``, the sample whose time is nearest to
    ``f * duration`` (ties: the earlier sample).

    Args:
        samples: ``(seconds since start, rss)`` pairs, in time order.
        fractions: fractions of the run in [0, 1].
        duration: length of the run (default: the last sample's time).

    Returns:
        ``{f: rss}``.
    """
    if not samples:
        raise ValueError("no RSS samples")
    duration = samples[-1][0] if duration is None else duration
    out = {}
    for f in fractions:
        target = f * duration
        out[f] = min(samples, key=lambda s: abs(s[0] - target))[1]
    return out


def max_rss_between(samples: list[tuple[float, float]], start: float, end: float) -> float | None:
    """Largest RSS among samples with ``start <= t <= end`` (None if there are none)."""
    inside = [rss for t, rss in samples if start <= t <= end]
    return max(inside) if inside else None


def run_sampled(cmd: list[str], log: Path, every: float) -> dict:
    """Runs ``cmd`` (stdout -> ``log.with_suffix('.out')``, stderr -> ``log``), sampling its RSS.

    Returns the child's last stdout line parsed as JSON, plus ``wall_s``, ``samples`` ([t, MB])
    and ``hwm_mb`` (kernel high-water mark, last seen), ``load_start`` and ``load_end``.
    """
    out_path = log.with_suffix(".out")
    load_start = loadavg()
    started_at = time.time()
    start = time.perf_counter()
    samples: list[tuple[float, float]] = []
    hwm = 0.0
    with open(out_path, "w") as out, open(log, "w") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err)
        while proc.poll() is None:
            got = read_rss_mb(proc.pid)
            if got is not None:
                samples.append((time.perf_counter() - start, got[0]))
                hwm = max(hwm, got[1])
            deadline = time.perf_counter() + every
            while proc.poll() is None and time.perf_counter() < deadline:
                time.sleep(min(0.2, every))
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(cmd[:4])} ... exited {proc.returncode}; {log}:\n{tail}")
    result = json.loads(out_path.read_text().strip().splitlines()[-1])
    result.update(
        wall_s=wall,
        samples=[[round(t, 2), round(m, 1)] for t, m in samples],
        hwm_mb=hwm,
        started_at=started_at,
        sample_every=every,
        load_start=load_start,
        load_end=loadavg(),
    )
    return result


def _child_cmd(kind: str, args: argparse.Namespace, *extra: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--child", kind, *extra]


def dir_size(path: Path) -> tuple[int, int]:
    """(total bytes, number of ``.tfrecord.gz`` shards) under ``path``."""
    total, shards = 0, 0
    for p in path.rglob("*"):
        if p.is_file():
            total += p.stat().st_size
            shards += p.name.endswith(".tfrecord.gz")
    return total, shards


# --------------------------------------------------------------------------- children


def child_prepare(raw: str, out: str) -> dict:
    import logging
    import resource

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from pipelines.data.manifest import load_manifest
    from pipelines.data.prepare import prepare

    started_at = time.time()
    start = time.perf_counter()
    path = prepare("criteo", raw, out, force=True)
    seconds = time.perf_counter() - start
    m = load_manifest(path)
    return {
        "prepare_started_at": started_at,
        "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rows": sum(s.rows for s in m.splits.values()),
        "split_rows": {k: s.rows for k, s in m.splits.items()},
        "vocab_tokens": sum(f.num_tokens for f in m.fields),
        "vocab_size_sum": sum(m.vocab_sizes.values()),
        "dir": str(path),
    }


def _timed_fit(model, ds, steps: int, warmup: int) -> dict:
    import keras

    stamps: list[float] = []

    class Stamp(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            stamps.append(time.perf_counter())

    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[Stamp()])
    total = time.perf_counter() - start
    warmup = min(warmup, len(stamps) - 2)
    steady = (len(stamps) - 1 - warmup) / (stamps[-1] - stamps[warmup])
    return {
        "steps": len(stamps),
        "warmup_steps": warmup,
        "first_step_s": stamps[0] - start,
        "fit_s": total,
        "steady_steps_per_s": steady,
    }


def child_train(data: str, mode: str, steps: int, warmup: int, batch: int) -> dict:
    import resource

    import keras
    import tensorflow as tf

    from pipelines.data.manifest import load_manifest
    from pipelines.data.reader import make_dataset
    from pipelines.training.common import build_from_config, compile_model
    from pipelines.training.config import resolve_config
    from pipelines.training.keras_fit import with_targets

    config = resolve_config("criteo", overrides={"train.batch_size": batch})
    t = config.train
    keras.utils.set_random_seed(t.seed)
    keras.mixed_precision.set_dtype_policy(t.precision)
    manifest = load_manifest(data)
    model = build_from_config(config, manifest)
    compile_model(model, config)
    losses = config.output_losses()
    stream = make_dataset(
        data, "train", t.batch_size, shuffle=True, seed=t.seed, repeat=True, drop_remainder=True
    )
    if mode == "stream":
        ds = with_targets(stream, losses)
    else:  # one batch from the same reader, repeated: no input cost
        features, label = next(iter(stream))
        ds = with_targets(tf.data.Dataset.from_tensors((features, label)).repeat(), losses)
    result = _timed_fit(model, ds, steps, warmup)
    result.update(
        samples_per_s=result["steady_steps_per_s"] * t.batch_size,
        batch_size=t.batch_size,
        precision=str(t.precision),
        model=f"{config.model.name} ({model.count_params():,} params)",
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    return result


def child_reader(data: str, batch: int, seconds: float, seed: int) -> dict:
    import resource

    from pipelines.data.reader import make_dataset

    ds = make_dataset(data, "train", batch, shuffle=True, seed=seed, repeat=True)
    it = iter(ds)
    t0 = time.perf_counter()
    for _ in range(20):  # warm-up: fill the shuffle buffer and the prefetch
        next(it)
    warm = time.perf_counter() - t0
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        next(it)
        n += 1
    return {
        "samples_per_s": n * batch / (time.perf_counter() - start),
        "warmup_s": warm,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


# --------------------------------------------------------------------------- stages


def stage_generate(raw: Path, rows: int) -> dict:
    meta = Path(str(raw) + ".gen.json")
    if raw.exists():
        info = json.loads(meta.read_text()) if meta.exists() else {}
        return {**info, "reused": True}
    from pipelines.data.generate import generate_criteo

    load_start = loadavg()
    start = time.perf_counter()
    generate_criteo(str(raw), rows, seed=GEN_SEED)  # written beside and renamed when complete
    seconds = time.perf_counter() - start
    info = {
        "rows": rows,
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        "seed": GEN_SEED,
        "loadavg_start": load_start.split(),
        "loadavg_end": loadavg().split(),
    }
    from pipelines.data.fileio import write_atomic  # TensorFlow: import late

    write_atomic(meta, json.dumps(info) + "\n")
    return {**info, "reused": False}


def stage_prepare(raw: Path, workdir: Path, rows: int, every: float, force: bool) -> dict:
    cache = workdir / f"prepare_{rows}.json"
    if cache.exists() and not force:
        r = json.loads(cache.read_text())
        if (Path(r["dir"]) / "manifest.json").exists():
            return {**r, "reused": True}
    out = workdir / f"prepared_{rows}"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "prepare", str(raw), str(out)]
    r = run_sampled(cmd, workdir / f"prepare_{rows}.log", every)
    r["count_pass_end_s"] = count_pass_end(workdir / f"prepare_{rows}.log", r["started_at"])
    r["disk_bytes"], r["shards"] = dir_size(Path(r["dir"]))
    r["raw_bytes"] = raw.stat().st_size
    from pipelines.data.fileio import write_atomic  # TensorFlow: import late

    write_atomic(cache, json.dumps(r) + "\n")
    return {**r, "reused": False}


def count_pass_end(log: Path, started_at: float) -> float | None:
    """Seconds from the child's start to the end of pass 1 (count), from its log line."""
    for line in log.read_text(errors="replace").splitlines():
        # The pass's closing line ("... N train rows in X s"), not its progress lines.
        if " INFO Pass 1 (count): " in line and " train rows in " in line:
            stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            return stamp - started_at
    return None


def prepare_window(prep: dict) -> tuple[list[tuple[float, float]], float, float | None]:
    """The RSS samples of the ``prepare`` call itself (child start-up excluded), as
    ``(seconds since prepare started, MB)``, the call's duration, and when pass 1 ended."""
    offset = prep.get("prepare_started_at", prep["started_at"]) - prep["started_at"]
    duration = prep["seconds"]
    pairs = [(float(t) - offset, float(m)) for t, m in prep["samples"]]
    pairs = [(t, m) for t, m in pairs if -1.0 <= t <= duration + 1.0]
    end = prep.get("count_pass_end_s")
    return pairs, duration, None if end is None else end - offset


def summarize_rss(pairs: list[tuple[float, float]], duration: float) -> dict:
    """RSS at 10/50/90 % of a run, its maximum and the maxima of its two halves."""
    return {
        "at": rss_at_fractions(pairs, FRACTIONS, duration),
        "max": max(m for _, m in pairs),
        "max_first_half": max_rss_between(pairs, 0, duration / 2),
        "max_second_half": max_rss_between(pairs, duration / 2, duration),
        "n": len(pairs),
    }


# --------------------------------------------------------------------------- report


def _mb(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f} MB"


def _passes(prep: dict) -> str:
    pairs, duration, end = prepare_window(prep)
    if end is None:
        return "n/a (pass 1 log line not found)"
    encode = [(t - end, m) for t, m in pairs if t >= end]
    text = (
        f"{end:,.0f} s / {duration - end:,.0f} s; max RSS {_mb(max_rss_between(pairs, 0, end))}"
        f" / {_mb(max_rss_between(pairs, end, duration))}"
    )
    if len(encode) >= 2:
        at = rss_at_fractions(encode, FRACTIONS, duration - end)
        text += "; encode-pass RSS at 10/50/90 % " + " / ".join(_mb(at[f]) for f in FRACTIONS)
    return text


def render(args, gen: dict, prep: dict, reader: dict, stream: dict, memory: dict) -> str:
    rss = summarize_rss(*prepare_window(prep)[:2])
    rows = prep["rows"]
    prep_rate = rows / prep["seconds"]
    ratio = stream["samples_per_s"] / memory["samples_per_s"]
    gen_txt = (
        f"{gen['rows_per_s']:,.0f} rows/s ({gen['seconds']:,.0f} s"
        + (", earlier run" if gen.get("reused") else "")
        + f"; load {' '.join(gen.get('loadavg_start', []))} -> {' '.join(gen.get('loadavg_end', []))})"
        if "rows_per_s" in gen
        else "reused an existing file (rate not recorded)"
    )
    at = rss["at"]
    growth = at[0.9] - at[0.5]
    lines = [
        f"## Criteo scale: {rows:,} rows (`python benchmarks/criteo_scale.py --rows {args.rows} "
        f"--workdir {args.workdir}`)",
        "",
        f"{os.cpu_count()} CPU cores (shared with other jobs: load averages below), generated "
        f"Criteo-format rows (seed {GEN_SEED}), `prepare` with default options "
        f"({prep['shards']} gzip TFRecord shards), reference Criteo TF4CTR config "
        f"({stream['model']}, {stream['precision']}), batch {stream['batch_size']}.",
        "",
        "| measure | value | load 1/5/15 min (start -> end) |",
        "|---|---|---|",
        f"| generate (`generate_criteo`) | {gen_txt} | |",
        f"| raw file | {prep['raw_bytes'] / 2**30:,.2f} GiB gzip | |",
        f"| prepare wall time (2 passes, child process) | {prep['seconds']:,.0f} s = "
        f"**{prep_rate:,.0f} rows/s**"
        + (" (cached from an earlier run)" if prep.get("reused") else "")
        + f" | {prep['load_start']} -> {prep['load_end']} |",
        f"| prepare peak RSS (`ru_maxrss`) | **{_mb(prep['peak_rss_mb'])}** | |",
        f"| prepare RSS at 10 % / 50 % / 90 % of the `prepare` call | {_mb(at[0.1])} / {_mb(at[0.5])} / "
        f"{_mb(at[0.9])} (max sampled {_mb(rss['max'])}, {rss['n']} samples every "
        f"{prep.get('sample_every', args.sample_every):g} s) | |",
        f"| prepare max RSS, first half / second half | {_mb(rss['max_first_half'])} / "
        f"{_mb(rss['max_second_half'])} | |",
        f"| prepare passes: count / encode | {_passes(prep)} | |",
        f"| vocabulary kept (39 fields, min count 10) | {prep['vocab_tokens']:,} tokens "
        f"({prep['vocab_size_sum']:,} ids incl. OOV) | |",
        f"| prepared output | {prep['disk_bytes'] / 2**30:,.2f} GiB, {prep['shards']} shards; "
        + ", ".join(f"{k} {v:,}" for k, v in prep["split_rows"].items())
        + " rows | |",
        f"| reader alone (train, shuffled, seeded) | {reader['samples_per_s']:,.0f} samples/s "
        f"(peak RSS {_mb(reader['peak_rss_mb'])}) | {reader['load_start']} -> {reader['load_end']} |",
        f"| training streaming from disk ({stream['steps']} steps, steady after "
        f"{stream['warmup_steps']}) | **{stream['samples_per_s']:,.0f} samples/s**, first step "
        f"{stream['first_step_s']:,.1f} s, peak RSS {_mb(stream['peak_rss_mb'])} | "
        f"{stream['load_start']} -> {stream['load_end']} |",
        f"| training on one in-memory batch repeated ({memory['steps']} steps) | "
        f"{memory['samples_per_s']:,.0f} samples/s, peak RSS {_mb(memory['peak_rss_mb'])} | "
        f"{memory['load_start']} -> {memory['load_end']} |",
        f"| streaming / in-memory | **{ratio:.2f}** | |",
        "",
    ]
    plateau = growth <= max(50.0, 0.05 * at[0.5])
    lines.append(
        f"Memory: preprocessing RSS went {_mb(at[0.1])} -> {_mb(at[0.5])} -> {_mb(at[0.9])} at "
        f"10/50/90 % of the `prepare` call ({growth:+,.0f} MB between 50 % and 90 %): "
        + (
            "it plateaus once the vocabularies saturate, i.e. it does not grow with rows."
            if plateau
            else "it still grows in the second half (see the samples in prepare_<rows>.json)."
        )
    )
    if ratio >= 0.97:
        verdict = "so the disk input keeps up with the model on this machine;"
    elif ratio >= 0.85:
        verdict = (
            "so it nearly keeps up: the gap is the input work (gunzip, parse, shuffle) taking "
            "CPU from the model on the same cores, not a starved input;"
        )
    else:
        verdict = "so input costs training time here (reader and model share the same cores);"
    lines.append(
        f"Streaming: training from the gzip shards runs at {ratio:.0%} of the in-memory rate "
        + verdict
        + f" the reader alone delivers {reader['samples_per_s'] / memory['samples_per_s']:.1f}x "
        "what the model consumes."
    )
    lines.extend(args.note)
    lines.append(
        "Load: the machine was shared with other jobs (load averages above, on "
        f"{os.cpu_count()} cores), so every rate is a lower bound and comparisons between stages "
        "run at different times are approximate."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=45_000_000)
    parser.add_argument("--workdir", help="scratch dir, outside the repository (required)")
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=300, help="training steps when streaming")
    parser.add_argument("--memory-steps", type=int, default=150, help="in-memory training steps")
    parser.add_argument("--warmup-steps", type=int, default=20)
    parser.add_argument("--reader-seconds", type=float, default=30.0)
    parser.add_argument("--sample-every", type=float, default=5.0, help="RSS sampling period (s)")
    parser.add_argument("--force-prepare", action="store_true")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="re-render the section from <workdir>/results_<rows>.json without running anything",
    )
    parser.add_argument(
        "--results", default=str(ROOT / "benchmarks" / "results" / "criteo_speed.md")
    )
    parser.add_argument(
        "--note", action="append", default=[], help="extra interpretation line (repeatable)"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        kind, *rest = args.child
        if kind == "prepare":
            result = child_prepare(*rest)
        elif kind == "reader":
            result = child_reader(rest[0], args.batch_size, args.reader_seconds, 2023)
        else:
            steps = args.steps if kind == "stream" else args.memory_steps
            result = child_train(rest[0], kind, steps, args.warmup_steps, args.batch_size)
        print(json.dumps(result))
        return 0

    if not args.workdir:
        parser.error("--workdir is required")
    workdir = Path(args.workdir).resolve()
    if workdir == ROOT or ROOT in workdir.parents:
        parser.error("--workdir must be outside the repository (never commit data)")
    workdir.mkdir(parents=True, exist_ok=True)

    def say(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg} (load {loadavg()})", flush=True)

    from benchmarks.report import replace_section

    saved = workdir / f"results_{args.rows}.json"
    if args.report_only:
        r = json.loads(saved.read_text())
        log = workdir / f"prepare_{args.rows}.log"
        if log.exists():  # re-read: earlier versions matched the pass's progress lines
            r["prepare"]["count_pass_end_s"] = count_pass_end(log, r["prepare"]["started_at"])
        text = render(args, r["generate"], r["prepare"], r["reader"], r["stream"], r["memory"])
        replace_section(Path(args.results), "criteo_scale", text, title="# Criteo-scale results")
        print(text)
        return 0
    raw = workdir / f"criteo_{args.rows}.txt.gz"
    say(f"generate {raw}")
    gen = stage_generate(raw, args.rows)
    say(f"generate: {json.dumps(gen)}")
    say("prepare (child process)")
    prep = stage_prepare(raw, workdir, args.rows, args.sample_every, args.force_prepare)
    rss = summarize_rss(*prepare_window(prep)[:2])
    say(
        f"prepare: {prep['seconds']:.0f} s, {prep['rows'] / prep['seconds']:,.0f} rows/s, peak "
        f"{prep['peak_rss_mb']:,.0f} MB, RSS 10/50/90% {[round(v) for v in rss['at'].values()]}"
    )
    data = prep["dir"]
    common = [f"--batch-size={args.batch_size}", f"--warmup-steps={args.warmup_steps}"]
    say("reader (child process)")
    reader = run_sampled(
        _child_cmd("reader", args, data, *common, f"--reader-seconds={args.reader_seconds}"),
        workdir / "reader.log",
        args.sample_every,
    )
    say(f"reader: {reader['samples_per_s']:,.0f} samples/s")
    results = {}
    for mode in ("stream", "memory"):
        say(f"training, {mode} (child process)")
        results[mode] = run_sampled(
            _child_cmd(
                mode,
                args,
                data,
                *common,
                f"--steps={args.steps}",
                f"--memory-steps={args.memory_steps}",
            ),
            workdir / f"train_{mode}.log",
            args.sample_every,
        )
        say(f"training {mode}: {results[mode]['samples_per_s']:,.0f} samples/s")
    from pipelines.data.fileio import write_atomic  # TensorFlow: import late

    write_atomic(
        saved, json.dumps({"generate": gen, "prepare": prep, "reader": reader, **results}) + "\n"
    )
    text = render(args, gen, prep, reader, results["stream"], results["memory"])
    replace_section(Path(args.results), "criteo_scale", text, title="# Criteo-scale results")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
