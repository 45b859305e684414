"""The report of ``benchmarks/reproduce.py``: one Markdown section per table, from the cache.

Every cell is the mean ± sample standard deviation over the seeds found in the cache, with n;
a cell without runs says "not run". AUCs are shown in percent (as the paper) with 3 decimals;
deltas are percentage points.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from benchmarks.report import replace_section

NOT_RUN = "not run"

# Paper values (AUC %, test). Dataset names as in pipelines: frappe, criteo, kkbox,
# movielenslatest (ML-tag), ml-1m.
PAPER_T2 = {  # (model, loss) -> {dataset: AUC}
    ("dualmlp", "bce"): {
        "kkbox": 84.08,
        "criteo": 81.40,
        "movielenslatest": 96.96,
        "frappe": 98.37,
    },
    ("dualmlp", "focal"): {
        "kkbox": 83.83,
        "criteo": 81.42,
        "movielenslatest": 96.99,
        "frappe": 98.29,
    },
    ("dualmlp", "rce"): {
        "kkbox": 84.20,
        "criteo": 81.36,
        "movielenslatest": 97.07,
        "frappe": 98.35,
    },
    ("dualmlp", "tf"): {"kkbox": 84.29, "criteo": 81.48, "movielenslatest": 97.12, "frappe": 98.55},
    ("deepfm", "bce"): {"kkbox": 84.11, "criteo": 81.38, "movielenslatest": 96.92, "frappe": 98.37},
    ("deepfm", "focal"): {
        "kkbox": 83.81,
        "criteo": 81.33,
        "movielenslatest": 96.95,
        "frappe": 98.43,
    },
    ("deepfm", "rce"): {"kkbox": 84.11, "criteo": 81.41, "movielenslatest": 96.92, "frappe": 98.42},
    ("deepfm", "tf"): {"kkbox": 84.31, "criteo": 81.43, "movielenslatest": 96.99, "frappe": 98.48},
    ("dcnv2", "bce"): {"kkbox": 84.24, "criteo": 81.40, "movielenslatest": 96.92, "frappe": 98.45},
    ("dcnv2", "focal"): {
        "kkbox": 83.86,
        "criteo": 81.42,
        "movielenslatest": 96.99,
        "frappe": 98.50,
    },
    ("dcnv2", "rce"): {"kkbox": 84.18, "criteo": 81.40, "movielenslatest": 96.90, "frappe": 98.46},
    ("dcnv2", "tf"): {"kkbox": 84.32, "criteo": 81.45, "movielenslatest": 97.03, "frappe": 98.52},
}
_T3_FUSIONS = ("wsf", "vf", "cf", "moef", "sum")
_T3_ROWS = {  # dataset -> selector -> AUC/gAUC pairs in the order of _T3_FUSIONS
    "movielenslatest": {
        "ser": "97.46 96.50 96.96 96.02 97.25 96.33 97.23 96.26 97.44 96.50",
        "gate": "97.02 96.07 97.02 96.09 97.02 96.07 96.99 95.99 97.09 96.19",
        "mmoe": "96.79 95.72 96.95 95.94 96.82 95.79 96.77 95.72 96.79 95.77",
        "shared": "97.06 96.18 97.04 96.12 97.03 96.05 97.00 95.98 97.11 96.19",
    },
    "frappe": {
        "ser": "98.72 98.17 98.52 98.02 98.70 98.21 98.64 98.20 98.72 98.21",
        "gate": "98.57 98.06 98.40 97.88 98.41 97.84 98.42 97.92 98.57 97.97",
        "mmoe": "98.54 98.00 98.53 98.00 98.56 98.01 98.44 97.91 98.55 97.97",
        "shared": "98.52 98.02 98.51 97.98 98.54 98.04 98.41 97.85 98.51 97.98",
    },
    "kkbox": {
        "ser": "84.47 77.60 84.17 77.11 84.36 77.48 84.50 77.62 84.41 77.54",
        "gate": "83.92 76.82 83.78 76.60 83.98 76.95 83.97 76.88 83.97 77.00",
        "mmoe": "83.71 76.53 83.59 76.27 83.73 76.51 83.75 76.63 83.76 76.52",
        "shared": "84.05 77.03 83.83 76.66 84.11 77.07 84.08 77.07 84.09 77.17",
    },
    "ml-1m": {
        "ser": "81.94 77.50 81.57 77.01 81.32 76.79 81.46 76.73 81.83 77.39",
        "gate": "81.61 76.88 81.27 76.45 81.36 77.01 81.24 76.58 81.41 76.76",
        "mmoe": "81.27 76.56 81.26 76.42 81.29 76.55 81.31 76.74 81.19 76.39",
        "shared": "81.58 77.05 81.33 76.52 81.41 77.00 81.35 76.95 81.26 76.69",
    },
}
PAPER_T3 = {  # (selector, fusion) -> {dataset: (AUC, gAUC)}
    (sel, fus): {
        ds: tuple(float(v) for v in rows[sel].split()[2 * i : 2 * i + 2])
        for ds, rows in _T3_ROWS.items()
    }
    for sel in ("ser", "gate", "mmoe", "shared")
    for i, fus in enumerate(_T3_FUSIONS)
}
_T4_COLUMNS = [
    "widedeep",
    "deepfm",
    "dcn",
    "xdeepfm",
    "autoint",
    "afn",
    "dcnv2",
    "edcn",
    "cl4ctr",
    "eulernet",
    "tf4ctr",
]
_T4_ROWS = {
    "kkbox": "84.12 84.11 84.22 84.02 84.08 83.57 84.24 83.96 84.05 83.68 84.50 2.44e-4",
    "ml-1m": "81.22 81.37 81.38 81.37 81.30 81.37 81.44 81.22 81.13 81.45 81.94 4.79e-4",
    "movielenslatest": "96.92 96.92 96.91 96.92 96.97 96.84 96.92 96.03 96.83 96.79 97.46 1.49e-4",
    "frappe": "98.32 98.37 98.38 98.45 98.41 98.19 98.45 98.41 98.27 98.16 98.72 7.26e-5",
    "criteo": "81.38 81.38 81.39 81.40 81.39 81.31 81.40 81.39 81.36 81.37 81.50 4.29e-5",
}
PAPER_T4 = {
    ds: dict(zip(_T4_COLUMNS, map(float, row.split()[:-1]), strict=True))
    for ds, row in _T4_ROWS.items()
}
PAPER_T4_P = {ds: row.split()[-1] for ds, row in _T4_ROWS.items()}
for _ds in ("kkbox", "criteo", "movielenslatest", "frappe"):  # DualMLP (log loss) of Table II
    PAPER_T4[_ds]["dualmlp"] = PAPER_T2[("dualmlp", "bce")][_ds]
PAPER_T5 = {  # (base, with TF4CTR) -> {dataset: AUC}
    ("deepfm", False): {"movielenslatest": 96.92, "frappe": 98.37, "ml-1m": 81.37},
    ("deepfm", True): {"movielenslatest": 97.03, "frappe": 98.54, "ml-1m": 81.56},
    ("widedeep", False): {"movielenslatest": 96.92, "frappe": 98.32, "ml-1m": 81.22},
    ("widedeep", True): {"movielenslatest": 96.99, "frappe": 98.49, "ml-1m": 81.63},
    ("xdeepfm", False): {"movielenslatest": 96.92, "frappe": 98.45, "ml-1m": 81.37},
    ("xdeepfm", True): {"movielenslatest": 97.03, "frappe": 98.53, "ml-1m": 81.65},
}
PAPER_T6 = {  # KKBox, first epoch: model -> (train s, ratio, inference s, ratio)
    "dnn": (23, "-", 3, "-"),
    "xdeepfm": (35, "1.52x", 4, "1.33x"),
    "autoint": (36, "1.56x", 4, "1.33x"),
    "dualmlp": (25, "1.08x", 3, "1x"),
    "tf4ctr_moef": (30, "1.30x", 3, "1x"),
}
NAMES = {
    "widedeep": "WideDeep",
    "deepfm": "DeepFM",
    "dcn": "DCN",
    "xdeepfm": "xDeepFM",
    "autoint": "AutoInt+",
    "dcnv2": "DCNv2",
    "dnn": "DNN",
    "dualmlp": "DualMLP",
    "tf4ctr": "TF4CTR",
    "tf4ctr_moef": "TF4CTR (SER+MoEF)",
    "bce": "Log loss (base)",
    "focal": "Focal",
    "rce": "R-CE",
    "tf": "TF loss",
    "ser": "SER",
    "gate": "GM",
    "mmoe": "MMoE",
    "shared": "Share",
    "wsf": "WSF",
    "vf": "VF",
    "cf": "CF",
    "moef": "MoEF",
    "sum": "Sum",
}
PAPER_COLUMN = {
    "frappe": "Frappe",
    "criteo": "Criteo",
    "kkbox": "KKBox",
    "movielenslatest": "ML-tag",
    "ml-1m": "ML-1M",
}


def _paper_t3_aucs(dataset: str) -> dict[tuple[str, str], float]:
    return {k: v[dataset][0] for k, v in PAPER_T3.items() if dataset in v}


def paper_t3_best(dataset: str) -> str:
    """`` (paper on X: best cells, gain over Share + Sum)`` or "" without a paper Table III."""
    paper = _paper_t3_aucs(dataset)
    if not paper:
        return ""
    top = max(paper.values())
    cells = " / ".join(f"{NAMES[a]} + {NAMES[b]}" for (a, b), v in paper.items() if v == top)
    gain = top - paper[("shared", "sum")]
    return f" (paper on {PAPER_COLUMN[dataset]}: {cells}, {gain:+.2f})"


def paper_t3_summary(dataset: str) -> str:
    """One sentence on the paper's Table III for ``dataset`` (its spread, top cells, how often
    SER is the best selector of a column)."""
    paper = _paper_t3_aucs(dataset)
    if not paper:
        return f" The paper has no Table III on {PAPER_COLUMN.get(dataset, dataset)}."
    top, low = max(paper.values()), min(paper.values())
    cells = " and ".join(f"{NAMES[a]} + {NAMES[b]}" for (a, b), v in paper.items() if v == top)
    ser_best = sum(
        paper[("ser", f)] == max(paper[(sel, f)] for sel in ("ser", "gate", "mmoe", "shared"))
        for f in _T3_FUSIONS
    )
    return (
        f" The paper's {PAPER_COLUMN[dataset]} grid spans {top - low:.2f} points, {cells} on "
        f"top ({top:.2f}), SER the best selector in {ser_best} of {len(_T3_FUSIONS)} columns."
    )


# -- cell arithmetic ----------------------------------------------------------------------------
def values(runs: list[dict], metric: str = "auc", split: str = "test") -> list[float]:
    return [float(r[split][metric]) for r in runs if metric in r.get(split, {})]


def mean_std(xs: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def fmt_cell(xs: list[float], scale: float = 100.0, digits: int = 3) -> str:
    """``mean ± std (n=k)`` scaled (AUC in percent), ``mean (n=1)``, or ``not run``."""
    if not xs:
        return NOT_RUN
    mean, std = mean_std([x * scale for x in xs])
    if len(xs) == 1:
        return f"{mean:.{digits}f} (n=1)"
    return f"{mean:.{digits}f} ± {std:.{digits}f} (n={len(xs)})"


def fmt_delta(xs: list[float], base: list[float], scale: float = 100.0) -> str:
    """Difference of means (percentage points), or ``-`` when either side is missing."""
    if not xs or not base:
        return "-"
    return f"{(statistics.fmean(xs) - statistics.fmean(base)) * scale:+.3f}"


def fmt_paper(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def welch(a: list[float], b: list[float]) -> dict | None:
    """Two-tailed Welch t-test (``scipy.stats.ttest_ind(equal_var=False)``); None if n < 2."""
    if len(a) < 2 or len(b) < 2:
        return None
    from scipy import stats

    result = stats.ttest_ind(a, b, equal_var=False)
    return {"t": float(result.statistic), "p": float(result.pvalue), "n": (len(a), len(b))}


# -- sections -----------------------------------------------------------------------------------
class Report:
    """Renders the sections from a study's cache (``Study.index()``) and its JSON results."""

    def __init__(self, study, index: dict, command: str = "") -> None:
        self.study = study
        self.index = index
        self.dataset = study.dataset
        self.command = command or f"python benchmarks/reproduce.py --dataset {study.dataset}"
        self.missing: list[str] = []

    def runs(self, spec, label: str) -> list[dict]:
        found = self.index.get(self.study.cell(spec), [])
        if not found:
            self.missing.append(label)
        return found

    def paper_col(self) -> str:
        return PAPER_COLUMN.get(self.dataset, self.dataset)

    def table2(self) -> str:
        from benchmarks.reproduce import T2_LOSSES, T2_MODELS, table2_specs

        specs = table2_specs()
        col = self.paper_col()
        lines = [
            "## Table II: compatibility of the TF loss",
            "",
            "Each base model trained with log loss, Focal, R-CE and the TF loss (the TF loss gets "
            "the model's two towers' logits: DualMLP's two MLPs, DeepFM's FM and MLP, DCNv2's "
            "cross network and MLP, with auxiliary logit heads as the reference). Test AUC "
            f"(%); Δ = difference of means against the same model with log loss; paper: "
            f"{col} column. Every loss keeps the dataset's reference hyperparameters (TF loss "
            "alpha, c, gamma as TF4CTR's; Focal gamma 2; R-CE gamma 0.01), with no per-model "
            "tuning: the paper's DualMLP + TF loss log on Frappe used alpha 0.2, gamma 2 and a "
            "one-layer simple MLP [400] (tf4ctr_reference.md section 4.3).",
            "",
            "| model | loss | test AUC (%) | Δ AUC | test logloss | epochs | paper AUC | paper Δ |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for model in T2_MODELS:
            base = values(self.runs(specs[(model, "bce")], f"Table II {model}+bce"))
            paper_base = PAPER_T2[(model, "bce")].get(self.dataset)
            for loss in T2_LOSSES:
                runs = self.runs(specs[(model, loss)], f"Table II {model}+{loss}")
                auc = values(runs)
                paper = PAPER_T2[(model, loss)].get(self.dataset)
                paper_delta = (
                    "-"
                    if loss == "bce" or paper is None or paper_base is None
                    else f"{paper - paper_base:+.2f}"
                )
                lines.append(
                    f"| {NAMES[model]} | {NAMES[loss]} | {fmt_cell(auc)} | "
                    f"{'-' if loss == 'bce' else fmt_delta(auc, base)} | "
                    f"{fmt_cell(values(runs, 'logloss'), 1.0, 5)} | "
                    f"{', '.join(str(r['epochs']) for r in runs) or '-'} | "
                    f"{fmt_paper(paper)} | {paper_delta} |"
                )
        return "\n".join(lines)

    def table3(self) -> str:
        from benchmarks.reproduce import T3_FUSIONS, T3_SELECTORS, table3_specs

        specs = table3_specs()
        cells = {key: self.runs(s, f"Table III {key[0]}+{key[1]}") for key, s in specs.items()}
        means = {k: statistics.fmean(values(r)) for k, r in cells.items() if r}
        best = max(means, key=means.get) if means else None
        head = " | ".join(f"{NAMES[f]} AUC | {NAMES[f]} gAUC" for f in T3_FUSIONS)
        lines = [
            "## Table III: SSEM x DFM",
            "",
            "TF4CTR (reference config: simple MLP [400, 400], complex MLP [400, 400, 400], TF "
            "loss alpha 0.25, c 0.7, gamma 1) with every sample selector and fusion. Test AUC "
            "and gAUC (%), mean over the cached seeds (n in each cell when > 1); **bold** = "
            "best mean AUC.",
            "",
            f"| SSEM | {head} |",
            "|---|" + "---|" * (2 * len(T3_FUSIONS)),
        ]
        for sel in T3_SELECTORS:
            row = []
            for fus in T3_FUSIONS:
                runs = cells[(sel, fus)]
                if not runs:
                    row += [NOT_RUN, NOT_RUN]
                    continue
                n = f" (n={len(runs)})" if len(runs) > 1 else ""
                auc = f"{statistics.fmean(values(runs)) * 100:.3f}{n}"
                gauc = values(runs, "gauc")
                gauc_text = f"{statistics.fmean(gauc) * 100:.3f}" if gauc else "-"
                if (sel, fus) == best:
                    auc, gauc_text = f"**{auc}**", f"**{gauc_text}**"
                row += [auc, gauc_text]
            lines.append(f"| {NAMES[sel]} | " + " | ".join(row) + " |")
        paper = {k: v.get(self.dataset) for k, v in PAPER_T3.items()}
        if any(paper.values()):
            lines += ["", f"Paper ({self.paper_col()}):", "", f"| SSEM | {head} |"]
            lines.append("|---|" + "---|" * (2 * len(T3_FUSIONS)))
            for sel in T3_SELECTORS:
                row = []
                for fus in T3_FUSIONS:
                    row += [f"{x:.2f}" for x in paper[(sel, fus)]]
                lines.append(f"| {NAMES[sel]} | " + " | ".join(row) + " |")
        if best is not None and ("shared", "sum") in means:
            gain = (means[best] - means[("shared", "sum")]) * 100
            lines += [
                "",
                f"Best cell: {NAMES[best[0]]} + {NAMES[best[1]]}; its gain over Share + Sum: "
                f"{gain:+.3f} AUC points{paper_t3_best(self.dataset)}.",
            ]
        return "\n".join(lines)

    def table4_data(self) -> dict[str, list[dict]]:
        from benchmarks.reproduce import table4_specs

        return {m: self.runs(s, f"Table IV {m}") for m, s in table4_specs().items()}

    def table4(self) -> str:
        data = self.table4_data()
        paper = PAPER_T4.get(self.dataset, {})
        lines = [
            "## Table IV: TF4CTR against the baselines",
            "",
            "Reference config for every model (baselines: log loss; TF4CTR: SER + WSF, TF "
            "loss). Test metrics, mean ± sample std over the cached seeds (n). AFN+, EDCN, "
            "CL4CTR and EulerNet are not implemented here.",
            "",
            "| model | test AUC (%) | test gAUC (%) | test logloss | epochs | params | paper AUC |",
            "|---|---|---|---|---|---|---|",
        ]
        for model, runs in data.items():
            params = f"{runs[0]['trainable_params']:,}" if runs else "-"
            gauc = values(runs, "gauc")
            gauc_text = fmt_cell(gauc) if gauc or not runs else "-"  # "-": no user key
            lines.append(
                f"| {NAMES[model]} | {fmt_cell(values(runs))} | "
                f"{gauc_text} | {fmt_cell(values(runs, 'logloss'), 1.0, 5)} "
                f"| {', '.join(str(r['epochs']) for r in runs) or '-'} | {params} | "
                f"{fmt_paper(paper.get(model))} |"
            )
        lines += ["", self.ttest_text(data)]
        return "\n".join(lines)

    def best_baseline(self, data: dict[str, list[dict]]) -> str | None:
        means = {m: statistics.fmean(values(r)) for m, r in data.items() if r and m != "tf4ctr"}
        return max(means, key=means.get) if means else None

    def ttest_text(self, data: dict[str, list[dict]]) -> str:
        best = self.best_baseline(data)
        ours = values(data.get("tf4ctr", []))
        if best is None or not ours:
            return "t-test: not possible yet (TF4CTR or every baseline not run)."
        paper_p = PAPER_T4_P.get(self.dataset)
        paper = f" Paper ({self.paper_col()}, 5 runs each): p = {paper_p}." if paper_p else ""
        texts = [self._ttest_one(ours, data, best, "Best baseline by mean test AUC")]
        multi = [m for m in data if m != "tf4ctr" and len(data[m]) > 1]
        if len(values(data[best])) < 2 and multi:
            other = max(multi, key=lambda m: statistics.fmean(values(data[m])))
            texts.append(self._ttest_one(ours, data, other, "Best baseline with n ≥ 2"))
        return " ".join(texts) + paper

    def _ttest_one(self, ours: list[float], data: dict, base: str, what: str) -> str:
        theirs = values(data[base])
        diff = (statistics.fmean(ours) - statistics.fmean(theirs)) * 100
        head = (
            f"{what}: {NAMES[base]}. TF4CTR − {NAMES[base]}: {diff:+.3f} AUC points (n = "
            f"{len(ours)} and {len(theirs)} seeds)."
        )
        test = welch(ours, theirs)
        if test is None:
            return (
                f"{head} Two-tailed Welch t-test: not possible with n < 2 on either side; "
                f"run `{self.command} --tables 4 --table4-seeds 3`."
            )
        return (
            f"{head} Two-tailed Welch t-test (scipy.stats.ttest_ind, equal_var=False) on test "
            f"AUC: t = {test['t']:.3f}, p = {test['p']:.3g} (n = {test['n'][0]} vs "
            f"{test['n'][1]})."
        )

    def table5(self) -> str:
        from benchmarks.reproduce import T5_ENCODERS, table5_specs

        specs = table5_specs()
        lines = [
            "## Table V: base models with and without the TF4CTR framework",
            "",
            "With the framework: TF4CTR's reference config (SER + WSF, TF loss, complex MLP "
            "[400, 400, 400]) with the base model's explicit part as the simple encoder (DeepFM: "
            "FM, WideDeep: linear, xDeepFM: CIN). Without: the base model with log loss (the "
            "Table IV runs). Test AUC (%). The only log behind the paper's column (DeepFM on "
            "Frappe, 98.54) used alpha 0.15, c 0.8 and the reference's broken FM term "
            "(tf4ctr_reference.md sections 1.7, 4.4); WideDeep and xDeepFM have no logs.",
            "",
            "| model | without | with TF4CTR | Δ AUC | paper without | paper with | paper Δ |",
            "|---|---|---|---|---|---|---|",
        ]
        for base, encoder in T5_ENCODERS.items():
            without = values(self.runs(specs[(base, False)], f"Table V {base}"))
            with_ = values(self.runs(specs[(base, True)], f"Table V {base} in TF4CTR ({encoder})"))
            p0 = PAPER_T5[(base, False)].get(self.dataset)
            p1 = PAPER_T5[(base, True)].get(self.dataset)
            pd = "-" if p0 is None or p1 is None else f"{p1 - p0:+.2f}"
            lines.append(
                f"| {NAMES[base]} | {fmt_cell(without)} | {fmt_cell(with_)} | "
                f"{fmt_delta(with_, without)} | {fmt_paper(p0)} | {fmt_paper(p1)} | {pd} |"
            )
        return "\n".join(lines)

    def table6(self, timing: dict | None) -> str:
        lines = [
            "## Table VI: training and inference time relative to DNN",
            "",
        ]
        if not timing:
            self.missing.append("Table VI timing")
            return "\n".join(lines + [f"{NOT_RUN}: `{self.command} --tables 6`."])
        base = timing["models"]["dnn"]
        lines += [
            f"One process, models interleaved epoch by epoch: per model one warm-up epoch, then "
            f"{timing['epochs']} timed training epochs and {timing['epochs']} timed "
            f"predictions of the valid split (medians), batch {timing['batch_size']:,}, "
            f"{timing['cores']} CPU cores, float32, no XLA; wall clock and the process's CPU "
            "time (all threads; a stall of a shared machine lengthens the wall clock only)"
            + (
                ", from the first batch to the last (a Keras callback), as the trainer times "
                "its epochs"
                if "train_call_all" in base
                else ""
            )
            + ". Paper: KKBox, first epoch, RTX 4090.",
            "",
            "| model | train s/epoch | ratio | train CPU s/epoch | ratio | inference s (valid) "
            "| ratio | inference CPU s | ratio | paper train ratio | paper inference ratio |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]

        def pair(t: dict, key: str) -> str:
            if key not in t:
                return "- | -"
            return f"{t[key]:.2f} | {t[key] / base[key]:.2f}x"

        for name, t in timing["models"].items():
            paper = PAPER_T6.get(name)
            lines.append(
                f"| {NAMES[name]} | {pair(t, 'train_s')} | {pair(t, 'train_cpu_s')} | "
                f"{pair(t, 'infer_s')} | {pair(t, 'infer_cpu_s')} | "
                f"{paper[1] if paper else '-'} | {paper[3] if paper else '-'} |"
            )

        def epochs(key: str) -> str:
            return "; ".join(
                f"{NAMES[name]} {', '.join(f'{x:.2f}' for x in t[key])}"
                for name, t in timing["models"].items()
            )

        lines += ["", f"Wall-clock epochs, in timing order: {epochs('train_all')}."]
        if "train_call_all" in base:
            lines += [
                "",
                f"The whole `fit()` call of those epochs: {epochs('train_call_all')}. It adds the "
                "deletion of the epoch's tf.data iterator, which in TF 2.21 waits for the "
                "pipeline's autotuning thread; that thread wakes 10 ms x (2^k - 1) after the "
                "iterator was created, so calls can end at 10.23 s or 20.47 s "
                "(`benchmarks/timing.py`).",
            ]
        return "\n".join(lines)

    def fig10(self, counts: dict | None, png: str) -> str:
        lines = ["## Figure 10: samples by difficulty per epoch", ""]
        if not counts:
            self.missing.append("Figure 10")
            return "\n".join(lines + [f"{NOT_RUN}: `{self.command} --tables fig10`."])
        lines += [
            f"![difficulty per epoch]({png})",
            "",
            f"DualMLP (log loss) and TF4CTR (reference config) trained {counts['epochs']} epochs "
            "each with the reference schedule (LR x0.1 on every non-improving epoch) but no early "
            "stop, as the paper's larger patience. After every epoch both splits are predicted "
            "and each sample falls in one class by the probability given to its true label, "
            "p_t = y·p + (1 − y)(1 − p): misclassified p_t < 0.3, poorly classified "
            "0.3 ≤ p_t < 0.6, well classified p_t ≥ 0.6 (the paper's thresholds {0.3, 0.6}; "
            "our reading of its text). Positives and negatives are counted apart, as the "
            "paper's panels (a) and (b).",
            "",
            "Last epoch (counts):",
            "",
            "| split | label | model | misclassified | poorly | well |",
            "|---|---|---|---|---|---|",
        ]
        for split in ("valid", "test"):
            for label in ("positive", "negative"):
                for model in counts["models"]:
                    c = counts["models"][model][split][-1][label]
                    lines.append(
                        f"| {split} | {label} | {NAMES[model]} | {c['misclassified']:,} | "
                        f"{c['poorly']:,} | {c['well']:,} |"
                    )
        return "\n".join(lines)

    def fig5(self, norms: dict | None, png: str) -> str:
        lines = ["## Figure 5: gradient norms of the twin logits over the first epoch", ""]
        if not norms:
            self.missing.append("Figure 5")
            return "\n".join(lines + [f"{NOT_RUN}: `{self.command} --tables fig5`."])
        lines += [
            f"![logit gradient norms]({png})",
            "",
            f"TF4CTR framework with sum fusion (ctr = sigmoid(z_s + z_c), as the reference's "
            f"TF4CTR_test.py), otherwise the reference config, one epoch at batch "
            f"{norms['batch_size']:,} ({norms['steps']} full batches; the paper's Figure 5 is Criteo, "
            "ours the study's dataset, and a batch of 10,000 would give too few points), "
            "trained from the same initial weights with L_ctr + L_TF (alpha 0.25, c 0.7, "
            "gamma 1) and with L_ctr alone. Per batch: the L2 norm over the batch of "
            "dL/dz_s and dL/dz_c, L the total training loss.",
            "",
            "| loss | mean norm z_s (first 10% / last 10% of steps) | mean norm z_c (first / "
            "last) |",
            "|---|---|---|",
        ]
        for key, name in (("ctr_tf", "L_ctr + L_TF"), ("ctr", "L_ctr")):
            s, c = norms["runs"][key]["z_s"], norms["runs"][key]["z_c"]
            k = max(1, len(s) // 10)
            lines.append(
                f"| {name} | {statistics.fmean(s[:k]):.4f} / {statistics.fmean(s[-k:]):.4f} | "
                f"{statistics.fmean(c[:k]):.4f} / {statistics.fmean(c[-k:]):.4f} |"
            )
        return "\n".join(lines)

    def missing_text(self) -> str:
        lines = ["## Missing cells", ""]
        if not self.missing:
            return "\n".join(lines + ["None: every cell above comes from cached runs."])
        shown = sorted(set(self.missing))
        lines += [
            f"{len(shown)} cell(s) are not run yet: {'; '.join(shown)}.",
            "",
            f"Complete them (cached runs are skipped): `{self.command} --table4-seeds 3`, then "
            f"rebuild this file with `{self.command} --report-only`.",
        ]
        return "\n".join(lines)


NOISE = 0.05  # AUC points: about twice the seed standard deviation seen on Frappe


def _seeds(counts: list[int]) -> str:
    lo, hi = min(counts), max(counts)
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _noise(delta: float, n: int = 1) -> str:
    if n < 2 and abs(delta) < NOISE:
        return "within single-seed noise"
    return "above the seed noise" if abs(delta) >= NOISE else "below the seed noise"


def _mean(xs: list[float]) -> float:
    return statistics.fmean(xs) * 100


def discussion(report: Report, t4: dict[str, list[dict]], stored: dict) -> str:
    """Statements computed from the cache (so they stay true as runs are added), then the
    caveats that hold for any numbers."""
    from benchmarks.reproduce import (
        T2_LOSSES,
        T2_MODELS,
        T5_ENCODERS,
        table2_specs,
        table3_specs,
        table5_specs,
    )

    ds, idx, cell = report.dataset, report.index, report.study.cell
    lines = ["## Discussion", "", "Computed from the cached runs above:", ""]
    ours = {m: values(r) for m, r in t4.items()}
    paper4 = PAPER_T4.get(ds, {})
    t, d = ours.get("tf4ctr"), ours.get("dualmlp")
    if t and d:
        gain = _mean(t) - _mean(d)
        pg = paper4.get("tf4ctr", 0) - paper4.get("dualmlp", 0) if "dualmlp" in paper4 else None
        cmp = (
            ""
            if pg is None
            else (f" (paper: {pg:+.2f}; ours is {'smaller' if gain < pg else 'larger'})")
        )
        lines.append(
            f"- TF4CTR − DualMLP (log loss): {gain:+.3f} AUC points, n = {len(t)} / {len(d)} "
            f"seeds{cmp}."
        )
    if t and "tf4ctr" in paper4:
        base_gaps = [
            _mean(v) - paper4[m] for m, v in ours.items() if v and m in paper4 and m != "tf4ctr"
        ]
        if base_gaps:
            lines.append(
                f"- Against the paper's absolute numbers: our TF4CTR is "
                f"{_mean(t) - paper4['tf4ctr']:+.3f} AUC points from its "
                f"{paper4['tf4ctr']:.2f}, while our baselines are on average "
                f"{statistics.fmean(base_gaps):+.3f} points from the paper's ({len(base_gaps)} "
                "models, from "
                f"{min(base_gaps):+.3f} to {max(base_gaps):+.3f})."
                + (
                    " The smaller TF4CTR margin here comes from stronger baselines, not from a "
                    "weaker TF4CTR."
                    if _mean(t) - paper4["tf4ctr"] > -NOISE and statistics.fmean(base_gaps) > NOISE
                    else ""
                )
            )
    best = report.best_baseline(t4)
    if t and best:
        gain = _mean(t) - _mean(ours[best])
        pbest = max((v for k, v in paper4.items() if k != "tf4ctr"), default=None)
        pg = f" (paper: {paper4['tf4ctr'] - pbest:+.2f} over its best)" if pbest else ""
        test = welch(t, ours[best])
        verdict = (
            f"Welch p = {test['p']:.3g} with n = {test['n'][0]} vs {test['n'][1]}"
            if test
            else "no t-test against it (n < 2; see Table IV)"
        )
        lines.append(
            f"- TF4CTR − best baseline ({NAMES[best]}): {gain:+.3f} AUC points{pg}; {verdict}."
        )
        ranked = sorted(
            ((m, _mean(v)) for m, v in ours.items() if v and m != "tf4ctr"), key=lambda x: -x[1]
        )
        if len(ranked) > 1:
            spread = ranked[0][1] - ranked[-1][1]
            pvals = [paper4[m] for m, _ in ranked if m in paper4]
            pspan = (
                f"; the paper's same baselines span {max(pvals) - min(pvals):.2f}"
                if len(pvals) > 1
                else ""
            )
            lines.append(
                f"- Baselines span {spread:.3f} AUC points ({NAMES[ranked[-1][0]]} to "
                f"{NAMES[ranked[0][0]]}){pspan}. Single-seed gaps between neighbouring "
                f"baselines below {NOISE} points rank nothing."
            )
    specs2 = table2_specs()
    parts, tf_deltas, tf_tests, seeds_t2 = [], [], [], []
    for model in T2_MODELS:
        base = values(idx.get(cell(specs2[(model, "bce")]), []))
        deltas = []
        for loss in T2_LOSSES[1:]:
            runs = values(idx.get(cell(specs2[(model, loss)]), []))
            if base and runs:
                delta = _mean(runs) - _mean(base)
                paper = PAPER_T2[(model, loss)].get(ds)
                pb = PAPER_T2[(model, "bce")].get(ds)
                pd = f" (paper {paper - pb:+.2f})" if paper is not None and pb is not None else ""
                deltas.append(f"{NAMES[loss]} {delta:+.3f}{pd}")
                seeds_t2 += [len(runs), len(base)]
                if loss == "tf":
                    tf_deltas.append(delta)
                    test = welch(runs, base)
                    if test:
                        tf_tests.append(f"{NAMES[model]} p = {test['p']:.2g}")
        if deltas:
            parts.append(f"{NAMES[model]}: {', '.join(deltas)}")
    if parts:
        lines.append(
            "- Table II, difference to log loss in AUC points: "
            + "; ".join(parts)
            + ". "
            + (
                f"Differences below {NOISE} points are within single-seed noise."
                if min(seeds_t2) < 2
                else f"Means over {_seeds(seeds_t2)} seeds per cell."
            )
        )
    if tf_deltas:
        up = sum(d >= NOISE for d in tf_deltas)
        down = sum(d <= -NOISE for d in tf_deltas)
        lines.append(
            f"- The TF loss beats log loss by {NOISE} points or more on {up} of "
            f"{len(tf_deltas)} base models and loses by as much on {down}; the paper reports a "
            "gain for every base model on every dataset. Here it keeps TF4CTR's alpha, c and "
            f"gamma on every model (no per-model tuning), with {_seeds(seeds_t2)} "
            f"seed{'s' if max(seeds_t2) > 1 else ''} per cell"
            + (
                f"; two-tailed Welch t-test of the TF loss against log loss: {', '.join(tf_tests)}."
                if tf_tests
                else "."
            )
        )
    grid = {k: values(idx.get(cell(s), [])) for k, s in table3_specs().items()}
    done = {k: _mean(v) for k, v in grid.items() if v}
    if len(done) > 1:
        best3 = max(done, key=done.get)
        worst3 = min(done, key=done.get)
        rows = {}
        for (sel, _), v in done.items():
            rows.setdefault(sel, []).append(v)
        row_means = ", ".join(f"{NAMES[k]} {statistics.fmean(v):.3f}" for k, v in rows.items())
        lines.append(
            f"- Table III ({len(done)}/20 cells run): best {NAMES[best3[0]]} + "
            f"{NAMES[best3[1]]} {done[best3]:.3f}, worst {NAMES[worst3[0]]} + "
            f"{NAMES[worst3[1]]} {done[worst3]:.3f} (spread {done[best3] - done[worst3]:.3f} "
            f"points); mean AUC per selector over its run cells: {row_means}."
            + paper_t3_summary(ds)
        )
    specs5 = table5_specs()
    parts = []
    for base in T5_ENCODERS:
        wo = values(idx.get(cell(specs5[(base, False)]), []))
        wi = values(idx.get(cell(specs5[(base, True)]), []))
        if wo and wi:
            p0, p1 = (PAPER_T5[(base, w)].get(ds) for w in (False, True))
            pd = f" (paper {p1 - p0:+.2f})" if p0 is not None and p1 is not None else ""
            parts.append(f"{NAMES[base]} {_mean(wi) - _mean(wo):+.3f}{pd}")
    if parts:
        lines.append(f"- Table V, gain from the framework in AUC points: {', '.join(parts)}.")
    timing = stored.get("6")
    if timing:
        m = timing["models"]
        key = "train_cpu_s" if "train_cpu_s" in m["dnn"] else "train_s"
        ratios = ", ".join(
            f"{NAMES[k]} {v[key] / m['dnn'][key]:.2f}x" for k, v in m.items() if k != "dnn"
        )
        lines.append(
            f"- Table VI, training {'CPU ' if key == 'train_cpu_s' else ''}time per epoch "
            f"relative to DNN: {ratios} (paper, KKBox on a GPU: DualMLP 1.08x, xDeepFM 1.52x, "
            "AutoInt+ 1.56x, TF4CTR SER+MoEF 1.30x)."
        )
    counts = stored.get("fig10")
    if counts and {"dualmlp", "tf4ctr"} <= set(counts["models"]):
        parts = []
        for split in ("valid", "test"):
            last = {k: counts["models"][k][split][-1] for k in ("dualmlp", "tf4ctr")}
            for cls in ("well", "poorly", "misclassified"):
                a = sum(last["dualmlp"][lab][cls] for lab in ("positive", "negative"))
                b = sum(last["tf4ctr"][lab][cls] for lab in ("positive", "negative"))
                parts.append(f"{split} #{cls} {a:,} -> {b:,}")
        lines.append(
            f"- Figure 10, DualMLP -> TF4CTR after epoch {counts['epochs']}: "
            + ", ".join(parts)
            + " (the paper: TF4CTR has more well and fewer poorly classified samples)."
        )
    norms = stored.get("fig5")
    if norms:
        r = norms["runs"]
        same = max(abs(a - b) for a, b in zip(r["ctr"]["z_s"], r["ctr"]["z_c"], strict=True))
        k = max(1, len(r["ctr_tf"]["z_s"]) // 10)
        first = {z: statistics.fmean(r["ctr_tf"][z][:k]) for z in ("z_s", "z_c")}
        last = {z: statistics.fmean(r["ctr_tf"][z][-k:]) for z in ("z_s", "z_c")}
        change = {z: (last[z] / first[z] - 1) * 100 for z in first}
        trend = (
            "as the paper describes"
            if change["z_c"] > 0 > change["z_s"]
            else "not the paper's trend: it describes z_c's norm rising while z_s's falls"
        )
        lines.append(
            f"- Figure 5: with L_ctr alone the two logits get the same gradient (largest "
            f"per-batch difference of the norms {same:.1e}), as Eq. 13 says. With L_TF they "
            f"separate, as in the paper's panel (a): the complex logit gets "
            f"{first['z_c'] / first['z_s']:.2f}x the simple logit's gradient norm over the "
            f"first 10% of the epoch and {last['z_c'] / last['z_s']:.2f}x over the last 10%. "
            f"From the first to the last 10% the norm changes by {change['z_s']:+.0f}% for "
            f"z_s and {change['z_c']:+.0f}% for z_c, {trend} (Criteo there, "
            f"{PAPER_COLUMN.get(ds, ds)} here)."
        )
    return "\n".join(lines)


CAVEATS = """\
Reading these numbers:

- Seed noise. Over 3 seeds the sample standard deviation of test AUC is 0.015-0.045 AUC
  points for TF4CTR, DualMLP and DNN on Frappe (parity section of
  `benchmarks/results/frappe.md`); other datasets have their own. A single-seed difference
  below about 0.05 points (0.0005 AUC) is inside that noise and supports no ranking: most cells
  of Tables II, III and V are single-seed (n=1), so their order is not evidence for or against
  the paper. Only Table IV's TF4CTR and best-baseline rows get several seeds and a test. The
  paper reports no seeds or spreads for Tables II, III and V either, and its own deltas there
  are mostly 0.01-0.1 points.
- Setup. Every model here uses the same reference schedule (Adam 1e-3, LR x0.1 per
  non-improving epoch, early stop after 2, monitor AUC + gAUC on valid) and the same embedding
  and MLP sizes, with no per-model tuning; the paper's baselines were tuned from FuxiCTR's
  optimal values. Our baseline AUCs can therefore sit above or below the paper's.
- DeepFM. The FM term is implemented correctly here, while the reference's DeepFM variant sums
  it wrongly (tf4ctr_reference.md section 1.7), so Table V's DeepFM rows are not expected to
  match the paper's.
- Table VI is timed on 2 shared CPU cores in float32 on this dataset; the paper times KKBox on
  an RTX 4090. On CPU time follows FLOPs, while on a GPU small models are bound by kernel
  launches, so the ratios need not agree.
"""


def write_report(study, path: Path, args) -> None:
    """Rebuilds every reproduction section of ``path`` and the figures beside it."""
    from benchmarks import repro_experiments

    index = study.index()
    report = Report(study, index)
    name = path.stem
    stored = {}
    for key in ("fig10", "fig5", "6"):
        cache = repro_experiments.cache_path(study, key, args)
        stored[key] = json.loads(cache.read_text()) if cache.exists() else None
    fig10_png = f"{name}-fig10-difficulty.png"
    fig5_png = f"{name}-fig5-logit-grad-norms.png"
    if stored["fig10"]:
        repro_experiments.plot_fig10(stored["fig10"], path.parent / fig10_png)
    if stored["fig5"]:
        repro_experiments.plot_fig5(stored["fig5"], path.parent / fig5_png)
    t4 = report.table4_data()
    title = f"# {PAPER_COLUMN.get(study.dataset, study.dataset)} results"
    header = (
        "## Reproducing the paper (`benchmarks/reproduce.py`)\n\n"
        f"`python benchmarks/reproduce.py --dataset {study.dataset} --table4-seeds 3` trains "
        "every run of Tables II-V through `python -m pipelines.train` (the prepared splits, the "
        "dataset's reference config plus each table's overrides, reference schedule with early "
        "stopping), caches each run under `runs/reproduce/<dataset>/<model>-<fingerprint>` and "
        "rebuilds the sections below from the cache after each run. Seeds start at 2023. AUCs "
        "in percent; ± is the sample standard deviation over seeds, n the number of seeds."
    )
    sections = [
        ("repro", header),
        ("repro-table2", report.table2()),
        ("repro-table3", report.table3()),
        ("repro-table4", report.table4()),
        ("repro-table5", report.table5()),
        ("repro-table6", report.table6(stored["6"])),
        ("repro-fig10", report.fig10(stored["fig10"], fig10_png)),
        ("repro-fig5", report.fig5(stored["fig5"], fig5_png)),
        ("repro-discussion", discussion(report, t4, stored) + "\n\n" + CAVEATS),
    ]
    best = report.best_baseline(t4)
    if best and welch(values(t4.get("tf4ctr", [])), values(t4[best])) is None:
        report.missing.append("Table IV seeds 2024-2025 for the t-test")
    sections.append(("repro-missing", report.missing_text()))
    for key, body in sections:
        replace_section(path, key, body, title=title)
