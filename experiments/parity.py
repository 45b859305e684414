"""Frappe parity: TF4CTR (reference config) vs DNN and DualMLP, several seeds, one command each.

Runs ``python -m pipelines.train`` for every (model, seed) on the official Frappe splits
(``../shared/data/frappe``), reuses finished runs (the CLI reports a finished run), and writes
the parity section of ``experiments/results/frappe.md``: test AUC / gAUC / logloss as mean and
standard deviation, epochs, and training seconds per epoch measured in the same session,
next to the reference logs, the paper, and the authors' code on this same data
(``experiments/paper/authors.yaml``).

    python -m experiments.parity [--seeds 2023 2024 2025] [--models tf4ctr dualmlp dnn]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.report import replace_section
from experiments import REPO, RESULTS, calibration
from experiments.runs import seeds as first_seeds
from experiments.tables import AUTHORS, NAMES, PAPER_T4, PROPOSED, TABLE4, TABLE6
from pipelines.training.rundir import RunDir

log = logging.getLogger(__name__)

DATASET = "frappe"
DATA = REPO.parent / "shared" / "data" / DATASET
RESULTS_FILE = RESULTS / f"{DATASET}.md"
RUNS = REPO / "runs" / "bench-frappe"
# TF4CTR, its two towers alone, and the one-tower reference of Table VI
MODELS = (PROPOSED, TABLE4["twin_baseline"], TABLE6["reference"])


def run_dir(model: str, seed: int, runs: Path = RUNS) -> RunDir:
    return RunDir(runs / f"{model}-seed{seed}")


def run(model: str, seed: int, runs: Path) -> dict:
    run = run_dir(model, seed, runs)
    cmd = [
        sys.executable,
        "-m",
        "pipelines.train",
        "--dataset",
        DATASET,
        "--data",
        str(DATA),
        "--model",
        model,
        "--seed",
        str(seed),
        "--run-dir",
        str(run.path),
        "--quiet",
    ]
    start = time.time()
    result = subprocess.run(
        cmd,
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stderr[-4000:]}")
    metrics = run.read_metrics()
    log.info(
        "%s seed %d: test AUC %.6f (%d epochs, %.0fs)",
        model,
        seed,
        metrics["test"]["auc"],
        metrics["epochs"],
        time.time() - start,
    )
    return metrics


def _stat(values: list[float], digits: int = 6) -> str:
    mean = statistics.fmean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {spread:.{digits}f}"


def config_text(config: dict, short: bool = False) -> str:
    """The reference configuration of a parity run as the section names it (``short``: its
    modules and TF loss only)."""
    m, lo, t = config["model"], config["loss"], config["train"]
    if short:
        return (
            f"{NAMES[m['selector']]} + {NAMES[m['fusion']]}, alpha {lo['alpha']:g}, "
            f"c {lo['c']:g}, gamma {lo['gamma']:g}"
        )
    monitor = " + ".join(
        {"auc": "AUC", "gauc": "gAUC"}.get(x, x) for x in str(t["monitor"]).split("+")
    )
    return (
        f"{NAMES[m['selector']]} + {NAMES[m['fusion']]}, simple {m['simple_units']}, complex "
        f"{m['complex_units']}, alpha {lo['alpha']:g}, c {lo['c']:g}, gamma {lo['gamma']:g}, "
        f"dropout {m['dropout']:g}, embedding L2 {m['embedding_l2']:g}, batch "
        f"{t['batch_size']}, monitor {monitor}"
    )


def paper_auc(model: str) -> str:
    value = PAPER_T4.get(DATASET, {}).get(model)
    return "-" if value is None else f"{value:.2f}"


def section(results: dict[str, list[dict]], seeds: list[int], config: dict | None = None) -> str:
    """The parity section from the runs' metrics (``{model: [metrics per seed]}``) and the
    resolved config of the proposed model's first run."""
    setup = f" ({config_text(config)})" if config else ""
    lines = [
        "## Parity: TF4CTR against DNN and DualMLP (issue: training CLI)",
        "",
        f"`python -m experiments.parity` — official Frappe valid/test, rebuilt train "
        f"(`../shared/data/frappe`), seeds {', '.join(map(str, seeds))}, each run one "
        "`python -m pipelines.train --dataset frappe --data ../shared/data/frappe --model M "
        f"--seed S` with the dataset's reference config{setup}. Mean ± sample standard "
        "deviation over seeds.",
        "",
        "| model | loss | test AUC | test gAUC | test logloss | epochs (best) | train s/epoch "
        "| params |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model, runs in results.items():
        auc = [r["test"]["auc"] for r in runs]
        gauc = [r["test"]["gauc"] for r in runs]
        ll = [r["test"]["logloss"] for r in runs]
        epochs = ", ".join(f"{r['epochs']} ({r['best_epoch']})" for r in runs)
        secs = [r["train_seconds_per_epoch"] for r in runs]
        lines.append(
            f"| {model} | {runs[0]['loss']} | {_stat(auc)} | {_stat(gauc)} | {_stat(ll)} | "
            f"{epochs} | {_stat(secs, 1)} | {runs[0]['trainable_params']:,} |"
        )
    by_id = {m: runs for m, runs in results.items() if all("gauc_by_id" in r["test"] for r in runs)}
    if by_id:
        lines += [
            "",
            "gAUC groups by the raw user, as the reference (`group_id: copy_from(user), remap: "
            "False`); before issue 17 it grouped by the encoded id, which merges every user "
            "below the min count or unseen in train into id 0. The same test predictions "
            "under both definitions:",
            "",
            "| model | test gAUC by raw user | by encoded id | raw - id per seed |",
            "|---|---|---|---|",
        ]
        for model, runs in by_id.items():
            raw = [r["test"]["gauc"] for r in runs]
            ids = [r["test"]["gauc_by_id"] for r in runs]
            diffs = ", ".join(f"{a - b:+.6f}" for a, b in zip(raw, ids, strict=True))
            lines.append(f"| {model} | {_stat(raw)} | {_stat(ids)} | {diffs} |")
    lines += [
        "",
        "Reference points:",
        "",
        "| model | authors' code on this data (seed 2023) | reference log | paper |",
        "|---|---|---|---|",
    ]
    code = AUTHORS["code"].get(DATASET, {})
    logs = AUTHORS["logs"].get(DATASET, {})
    for model in results:
        a = code.get(model)
        # accuracy only: the authors' runs are bit-for-bit repeatable per seed, their speed
        # is not (benchmarks/vs_authors.py measures it beside ours in one run)
        authors = f"AUC {a['auc']}, gAUC {a['gauc']}, logloss {a['logloss']}" if a else "-"
        logged = logs.get(model)
        lines.append(
            f"| {model} | {authors} | {logged if isinstance(logged, str) else '-'} | "
            f"{paper_auc(model)} |"
        )
    twin = TABLE4["twin_baseline"]
    if PROPOSED in results and twin in results:
        t = statistics.fmean(r["test"]["auc"] for r in results[PROPOSED])
        d = statistics.fmean(r["test"]["auc"] for r in results[twin])
        paper = PAPER_T4.get(DATASET, {})
        gap = (
            f" (paper: {(paper[PROPOSED] - paper[twin]) / 100:+.4f})"
            if PROPOSED in paper and twin in paper
            else ""
        )
        lines += [
            "",
            f"{NAMES[PROPOSED]} − {NAMES[twin]} test AUC: {t - d:+.6f}{gap}.",
        ]
    lines += calibration_lines(results)
    loads = [r["load_average"] for runs in results.values() for r in runs if "load_average" in r]
    load = f", load average {min(loads):.0f}-{max(loads):.0f}" if loads else ""
    lines += [
        "",
        "Train seconds per epoch are wall-clock while the runs shared the machine with "
        f"whatever else ran{load} on {os.cpu_count()} cores; `benchmarks/train_speed.py` "
        "measures speed alone, TF4CTR and DNN interleaved.",
    ]
    return "\n".join(lines)


RELIABILITY_PNG = f"{DATASET}-reliability.png"


def calibration_lines(results: dict[str, list[dict]]) -> list[str]:
    """The calibration of each model's test predictions over its seeds, the reliability
    diagram (``RELIABILITY_PNG``) and, against the proposed model, the differences of the means
    with their standard error; computed from the runs' ``metrics.json``."""
    have = {m: runs for m, runs in results.items() if calibration.recorded(runs)}
    if not have:
        return []
    lines = [
        "",
        "### Calibration of the test predictions",
        "",
        f"![reliability diagram]({RELIABILITY_PNG})",
        "",
        "Calibration ratio = mean prediction / observed click rate (1 is calibrated; above 1 "
        "over-predicts clicks) and expected calibration error over 15 equal-width bins, per "
        "seed, mean ± sample standard deviation; the diagram pools each model's seeds (bins "
        "of all their predictions together). A difference is called beyond the seed noise "
        "when it exceeds twice its standard error.",
        "",
        "| model | loss | calibration ratio | ECE | valid ECE |",
        "|---|---|---|---|---|",
    ]
    for model, runs in have.items():
        test = calibration.summary(runs)
        valid = calibration.summary(runs, "valid")
        lines.append(
            f"| {model} | {runs[0]['loss']} | {calibration.stat(test['ratio'])} | "
            f"{calibration.stat(test['ece'])} | "
            f"{calibration.stat(valid['ece']) if valid else '-'} |"
        )
    if PROPOSED in have:
        ours = calibration.summary(have[PROPOSED])
        lines += [
            "",
            f"{NAMES[PROPOSED]} (TF loss) minus each model trained with log loss (the models "
            "also differ in structure; the reproduction's Table II calibration compares the "
            "losses on one structure):",
            "",
        ]
        for model, runs in have.items():
            if model == PROPOSED:
                continue
            other = calibration.summary(runs)
            lines.append(
                f"- {model}: ECE {calibration.difference_text(ours['ece'], other['ece'])}, "
                f"ratio {calibration.difference_text(ours['ratio'], other['ratio'])}."
            )
    return lines


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=first_seeds(3))
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--runs", default=str(RUNS))
    args = p.parse_args(argv)
    results = {m: [] for m in args.models}
    for seed in args.seeds:  # interleave models so machine load affects them alike
        for model in args.models:
            results[model].append(run(model, seed, Path(args.runs)))
    config = run_dir(args.models[0], args.seeds[0], Path(args.runs)).read_config()
    curves = {m: runs for m, runs in results.items() if calibration.recorded(runs)}
    if curves:
        calibration.plot_reliability(
            curves,
            RESULTS / RELIABILITY_PNG,
            f"Frappe test, {', '.join(curves)}: seeds {', '.join(map(str, args.seeds))}",
        )
    log.info("%s", replace_section(RESULTS_FILE, "parity", section(results, args.seeds, config)))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    main()
