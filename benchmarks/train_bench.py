"""Training throughput at the reference's Criteo shapes: TF4CTR vs DNN, precisions, XLA.

Criteo_x4 shapes (tf4ctr_reference.md section 4.1): 39 fields, 910,747 ids in all, d = 16,
complex tower [400, 400, 400], simple tower [400, 400] (SER at d/2, WSF), embedding L2 1e-5,
batch 4096, Adam with clip-norm 10. Ids are drawn Zipf-like per field and fed from memory, so
this measures the model's consumption rate (the reader's rate is in `pipeline_bench.py`).
Settings are interleaved, TF4CTR and DNN back to back, and the TF4CTR/DNN time ratio is printed
per setting (the paper reports 1.30x; the target is at most 1.15x).

    python benchmarks/train_bench.py [--steps 20] [--settings float32 float32+xla ...]
    python benchmarks/train_bench.py --ablation      # where a step's time goes

A setting is a precision plus optional ``+xla`` (XLA-compiled step). Besides wall-clock
samples/s it records the process's CPU seconds per step (user + system), which a shared
machine disturbs less than wall time.
``--ablation`` removes one part at a time (TF loss, dropout, BatchNorm, simple tower) and
prints CPU ms per step, to show what TF4CTR's extra time is made of.

On a CPU, `mixed_float16` is emulated and very slow; measure it on a GPU.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as `python benchmarks/<script>.py` from anywhere

from benchmarks.report import replace_section  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "criteo_speed.md"
CRITEO_IDS = 910_747
BATCH = 4096


def criteo_vocab() -> dict[str, int]:
    """39 fields with Criteo_x4's total of 910,747 ids (13 small integer fields, 26 hashes)."""
    small = {f"I{i}": 100 for i in range(1, 14)}
    rest = CRITEO_IDS - sum(small.values())
    weights = [1.0 / (i + 1) for i in range(26)]  # a few huge fields, many small ones
    sizes = [max(10, int(rest * w / sum(weights))) for w in weights]
    sizes[0] += rest - sum(sizes)
    return {**small, **{f"C{i + 1}": s for i, s in enumerate(sizes)}}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def fit_rate(
    model_name: str,
    vocab: dict[str, int],
    setting: str,
    ids: dict,
    labels,
    batch: int,
    steps: int,
    units=(400, 400),
    loss_name: str | None = None,
    **overrides,
) -> tuple[float, float]:
    """``(seconds, CPU seconds)`` of ``steps`` ``fit`` steps after 3 warm-up steps, on
    in-memory batches of Criteo-shaped ids: the model at the reference's Criteo settings
    (complex MLP ``units`` + one more layer, simple MLP ``units`` except for DNN, embedding 16,
    L2 1e-5, dropout 0.2; Adam 1e-3, clip-norm 10), log loss and for ``loss_name`` "tf" (the
    default for TF4CTR) the TF loss with the reference's Criteo alpha, c, gamma. ``setting``
    is a dtype policy with "+xla" for XLA. Shared by this benchmark and gpu_check."""
    import keras
    import tensorflow as tf

    from tf4ctr_keras import TwinFocusLoss, build_model

    precision, *flags = setting.split("+")
    keras.mixed_precision.set_dtype_policy(precision)
    keras.utils.set_random_seed(0)
    units = list(units)
    kwargs = dict(
        complex_units=[*units, units[0]], embedding_dim=16, embedding_l2=1e-5, dropout=0.2
    )
    kwargs.update(overrides)
    if model_name != "dnn":
        kwargs["simple_units"] = units
    model = build_model(model_name, vocab, **kwargs)
    loss = {"ctr": "binary_crossentropy"}
    if (loss_name or ("tf" if model_name == "tf4ctr" else "bce")) == "tf":
        loss["twin_logits"] = TwinFocusLoss(alpha=0.35, c=0.9, gamma=1.0)
    model.compile(
        keras.optimizers.Adam(1e-3, epsilon=1e-8, global_clipnorm=10),
        loss=loss,
        jit_compile="xla" in flags,
    )
    data = tf.data.Dataset.from_tensor_slices((ids, {k: labels for k in loss}))
    data = data.batch(batch).cache().repeat()
    model.fit(data, steps_per_epoch=3, epochs=1, verbose=0)  # trace, compile, warm up
    start, cpu = time.perf_counter(), _cpu_seconds()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    keras.mixed_precision.set_dtype_policy("float32")
    return seconds, cpu


# Ablation variants: (model, loss, builder overrides).
VARIANTS = {
    "dnn": ("dnn", "bce", {}),
    "dnn, no dropout": ("dnn", "bce", {"dropout": 0.0}),
    "dnn, no BN": ("dnn", "bce", {"batch_norm": False}),
    "tf4ctr": ("tf4ctr", "tf", {}),
    "tf4ctr, log loss only": ("tf4ctr", "bce", {}),
    "tf4ctr, no dropout": ("tf4ctr", "tf", {"dropout": 0.0}),
    "tf4ctr, no BN": ("tf4ctr", "tf", {"batch_norm": False}),
    "dualmlp (shared table, sum)": ("dualmlp", "bce", {}),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20, help="timed steps per setting and model")
    p.add_argument(
        "--settings",
        nargs="+",
        default=["float32", "float32+xla", "mixed_bfloat16"],
        help="precision[+xla] combinations",
    )
    p.add_argument("--repeats", type=int, default=1, help="interleaved repetitions (median)")
    p.add_argument("--ablation", action="store_true", help="CPU ms/step per removed part")
    args = p.parse_args()

    import numpy as np

    vocab = criteo_vocab()
    rng = np.random.default_rng(0)
    n = BATCH * 8
    ids = {k: np.minimum(rng.zipf(1.3, n) - 1, v - 1).astype("int64") for k, v in vocab.items()}
    labels = (rng.random(n) < 0.25).astype("float32")

    def run(model_name: str, setting: str, loss_name: str | None = None, **overrides):
        """(samples/s, CPU ms per step) of `fit` steps on in-memory batches."""
        seconds, cpu = fit_rate(
            model_name, vocab, setting, ids, labels, BATCH, args.steps, loss_name=loss_name,
            **overrides,
        )  # fmt: skip
        return args.steps * BATCH / seconds, 1000 * cpu / args.steps

    load = os.getloadavg()[0]
    if args.ablation:
        setting = args.settings[0] if len(args.settings) == 1 else "float32"
        cpu_ms = {name: [] for name in VARIANTS}
        for _ in range(args.repeats):
            for name, (model_name, loss_name, overrides) in VARIANTS.items():
                cpu_ms[name].append(run(model_name, setting, loss_name, **overrides)[1])
                print(f"{name}: {cpu_ms[name][-1]:.0f} CPU ms/step", flush=True)
        base = statistics.median(cpu_ms["dnn"])
        lines = [
            "## Where a training step's time goes (`python benchmarks/train_bench.py --ablation`)",
            "",
            f"Criteo shapes as above, `{setting}`, {args.steps} steps per variant, "
            f"{args.repeats} interleaved repetition(s), median; CPU ms per step (user + system "
            f"of the process; load average {load:.1f} at the start).",
            "",
            "| variant | CPU ms/step | / DNN |",
            "|---|---|---|",
        ]
        for name, values in cpu_ms.items():
            median = statistics.median(values)
            lines.append(f"| {name} | {median:.0f} | {median / base:.2f}x |")
        print(
            replace_section(
                RESULTS, "criteo_ablation", "\n".join(lines), title="# Criteo-scale results"
            )
        )
        return

    results = {s: {"tf4ctr": [], "dnn": []} for s in args.settings}
    for _ in range(args.repeats):  # interleaved: machine load affects every setting alike
        for setting in args.settings:
            for model_name in ("tf4ctr", "dnn"):
                results[setting][model_name].append(run(model_name, setting))
                rate, cpu = results[setting][model_name][-1]
                print(f"{setting} {model_name}: {rate:,.0f} samples/s, {cpu:.0f} CPU ms/step")
    lines = [
        "## Training throughput at Criteo shapes (`python benchmarks/train_bench.py`)",
        "",
        f"39 fields, {CRITEO_IDS:,} ids, d 16, TF4CTR SER + WSF (simple [400, 400], complex "
        f"[400, 400, 400]) vs DNN [400, 400, 400], batch {BATCH}, ids from memory, "
        f"{args.steps} timed steps after 3 warm-up steps, {args.repeats} interleaved "
        f"repetition(s) (median), {os.cpu_count()} CPU cores, load average {load:.1f} at the "
        "start. CPU ms/step is the process's user + system time per step.",
        "",
        "| setting | TF4CTR samples/s | DNN samples/s | TF4CTR / DNN wall time "
        "| TF4CTR CPU ms/step | DNN CPU ms/step | TF4CTR / DNN CPU time |",
        "|---|---|---|---|---|---|---|",
    ]
    for setting in args.settings:
        t_rate, t_cpu = (
            statistics.median(v) for v in zip(*results[setting]["tf4ctr"], strict=True)
        )
        d_rate, d_cpu = (statistics.median(v) for v in zip(*results[setting]["dnn"], strict=True))
        lines.append(
            f"| {setting} | {t_rate:,.0f} | {d_rate:,.0f} | {d_rate / t_rate:.2f}x | "
            f"{t_cpu:.0f} | {d_cpu:.0f} | {t_cpu / d_cpu:.2f}x |"
        )
    print(
        replace_section(RESULTS, "criteo_speed", "\n".join(lines), title="# Criteo-scale results")
    )


if __name__ == "__main__":
    main()
