"""Frappe hyperparameter search and its report section in ``benchmarks/results/frappe.md``.

Runs (or resumes) ``python -m pipelines.tune --dataset frappe --data ../shared/data/frappe
--max-trials N --tuner bayesian``, then writes the search's trials with their valid and test
metrics and the best trial's test AUC beside the reference configuration's (the parity runs of
``benchmarks/frappe_parity.py`` when present).

    python benchmarks/frappe_tuning.py [--max-trials 12]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as `python benchmarks/<script>.py` from anywhere

from benchmarks.report import replace_section  # noqa: E402
from pipelines.training.tune import SPACE  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "frappe"
RESULTS = REPO / "benchmarks" / "results" / "frappe.md"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-trials", type=int, default=12)
    p.add_argument("--tune-dir", default=str(REPO / "tune" / "frappe-bayesian"))
    args = p.parse_args()
    tune_dir = Path(args.tune_dir)
    cmd = [
        sys.executable,
        "-m",
        "pipelines.tune",
        "--dataset",
        "frappe",
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

    trials = []
    for trial_file in sorted(tune_dir.glob("trial_*/trial.json")):
        trial = json.loads(trial_file.read_text())
        metrics_file = tune_dir / "runs" / trial["trial_id"] / "metrics.json"
        if trial["status"] == "COMPLETED" and metrics_file.exists():
            trials.append((trial, json.loads(metrics_file.read_text())))
    trials.sort(key=lambda t: -(t[1]["valid"]["auc"] + t[1]["valid"]["gauc"]))
    names = list(SPACE)
    shown = " ".join(["python", *cmd[1:]])
    shown = shown.replace(str(REPO.parent / "shared"), "../shared").replace(str(REPO) + "/", "")
    lines = [
        "## Hyperparameter search (issue: pipelines.training.tune)",
        "",
        f"`python benchmarks/frappe_tuning.py` runs `{shown}`"
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
    if trials:
        best = trials[0][1]
        lines += [
            "",
            f"Best trial ({trials[0][0]['trial_id']}): test AUC "
            f"{best['test']['auc']:.6f}, gAUC {best['test']['gauc']:.6f} (one seed, "
            f"2023); its config: `benchmarks/results/{tune_dir.name}-best.yaml`.",
        ]
        parity = sorted((REPO / "runs" / "bench-frappe").glob("tf4ctr-seed*/metrics.json"))
        if parity:
            aucs = [json.loads(p.read_text())["test"]["auc"] for p in parity]
            spread = statistics.stdev(aucs) if len(aucs) > 1 else 0.0
            lines.append(
                f"Reference configuration (SER + WSF, alpha 0.25, c 0.7, gamma 1), "
                f"{len(aucs)} seed(s): test AUC {statistics.fmean(aucs):.6f} ± "
                f"{spread:.6f}."
            )
            if best["test"]["auc"] < statistics.fmean(aucs):
                lines.append(
                    "The search's best trial is below the reference configuration. Twelve "
                    "Bayesian trials over nine dimensions are few, and the reference "
                    "configuration is itself the result of the authors' larger search; to "
                    "refine it, narrow the space around it (`--space`, e.g. `selector: ser`, "
                    "`embedding_l2: {min: 0.03, max: 0.3, sampling: log}`)."
                )
    if (tune_dir / "best.yaml").exists():
        shutil.copy(tune_dir / "best.yaml", RESULTS.parent / f"{tune_dir.name}-best.yaml")
    print(replace_section(RESULTS, "tuning", "\n".join(lines)))


if __name__ == "__main__":
    main()
