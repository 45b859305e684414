"""Frappe hyperparameter search and its report section in ``experiments/results/frappe.md``.

Runs (or resumes) ``python -m pipelines.tune --dataset frappe --data ../shared/data/frappe
--max-trials N --tuner bayesian``, then writes the search's trials with their valid and test
metrics and the best trial's test AUC beside the reference configuration's (the parity runs of
:mod:`experiments.parity` when present).

    python -m experiments.tuning [--max-trials 12]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.report import replace_section
from experiments import REPO, RESULTS
from experiments.parity import DATA, DATASET, RESULTS_FILE, RUNS, config_text
from experiments.tables import PROPOSED
from pipelines.data.fileio import write_atomic
from pipelines.training.rundir import RunDir
from pipelines.training.tune import SPACE

log = logging.getLogger(__name__)

TRIAL_FILE = "trial.json"  # KerasTuner's record of a trial
BEST_FILE = "best.yaml"  # pipelines.tune's best configuration


def completed_trials(tune_dir: Path) -> list[tuple[dict, dict]]:
    """``(trial, metrics)`` of the finished trials, best objective (valid AUC + gAUC) first."""
    trials = []
    for trial_file in sorted(tune_dir.glob(f"trial_*/{TRIAL_FILE}")):
        trial = json.loads(trial_file.read_text())
        run = RunDir(tune_dir / "runs" / trial["trial_id"])
        if trial["status"] == "COMPLETED" and run.finished():
            trials.append((trial, run.read_metrics()))
    trials.sort(key=lambda t: -(t[1]["valid"]["auc"] + t[1]["valid"]["gauc"]))
    return trials


def reference_runs(runs: Path = RUNS) -> list[RunDir]:
    """The finished parity runs of the proposed model's reference configuration."""
    found = sorted(runs.glob(f"{PROPOSED}-seed*"))
    return [r for r in map(RunDir, found) if r.finished()]


def section(trials: list[tuple[dict, dict]], shown: str, tune_dir: Path, reference) -> str:
    names = list(SPACE)
    lines = [
        "## Hyperparameter search (issue: pipelines.training.tune)",
        "",
        f"`python -m experiments.tuning` runs `{shown}`"
        f": {len(trials)} completed trials, Bayesian optimisation over the paper's space, each "
        "trial a full run with the reference schedule, objective valid AUC + gAUC. Sorted by "
        "the objective; test metrics are reported, never used for selection.",
        "",
        "| trial | "
        + " | ".join(names)
        + " | valid AUC | valid gAUC | test AUC | test gAUC | epochs |",
        "|" + "---|" * (len(names) + 6),
    ]
    for trial, m in trials:
        values = trial["hyperparameters"]["values"]
        cells = [
            f"{values[n]:.4g}" if isinstance(values.get(n), float) else str(values.get(n))
            for n in names
        ]
        lines.append(
            f"| {trial['trial_id']} | "
            + " | ".join(cells)
            + f" | {m['valid']['auc']:.6f} | {m['valid']['gauc']:.6f} | "
            f"{m['test']['auc']:.6f} | {m['test']['gauc']:.6f} | {m['epochs']} |"
        )
    if not trials:
        return "\n".join(lines)
    best = trials[0][1]
    best_file = (RESULTS / f"{tune_dir.name}-best.yaml").relative_to(REPO)
    lines += [
        "",
        f"Best trial ({trials[0][0]['trial_id']}): test AUC "
        f"{best['test']['auc']:.6f}, gAUC {best['test']['gauc']:.6f} (one seed, "
        f"{best['seed']}); its config: `{best_file.as_posix()}`.",
    ]
    if reference:
        aucs = [r.read_metrics()["test"]["auc"] for r in reference]
        spread = statistics.stdev(aucs) if len(aucs) > 1 else 0.0
        lines.append(
            f"Reference configuration ({config_text(reference[0].read_config(), short=True)}), "
            f"{len(aucs)} seed(s): test AUC {statistics.fmean(aucs):.6f} ± {spread:.6f}."
        )
        if best["test"]["auc"] < statistics.fmean(aucs):
            lines.append(
                f"The search's best trial is below the reference configuration. {len(trials)} "
                f"Bayesian trials over {len(names)} dimensions are few, and the reference "
                "configuration is itself the result of the authors' larger search; to "
                "refine it, narrow the space around it (`--space`, e.g. `selector: ser`, "
                "`embedding_l2: {min: 0.03, max: 0.3, sampling: log}`)."
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-trials", type=int, default=12)
    p.add_argument("--tune-dir", default=str(REPO / "tune" / "frappe-bayesian"))
    args = p.parse_args(argv)
    tune_dir = Path(args.tune_dir)
    cmd = [
        sys.executable,
        "-m",
        "pipelines.tune",
        "--dataset",
        DATASET,
        "--data",
        str(DATA),
        "--tuner",
        "bayesian",
        "--max-trials",
        str(args.max_trials),
        "--tune-dir",
        str(tune_dir),
    ]
    subprocess.run(cmd, cwd=REPO, check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    shown = " ".join(["python", *cmd[1:]])
    shown = shown.replace(str(REPO.parent / "shared"), "../shared").replace(str(REPO) + "/", "")
    text = section(completed_trials(tune_dir), shown, tune_dir, reference_runs())
    if (tune_dir / BEST_FILE).exists():
        target = RESULTS / f"{tune_dir.name}-best.yaml"
        write_atomic(target, (tune_dir / BEST_FILE).read_bytes())
    log.info("%s", replace_section(RESULTS_FILE, "tuning", text))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    main()
