"""The report of ``python -m experiments.reproduce``: one Markdown section per table, computed
from the run cache.

Every cell is the mean ± sample standard deviation over the seeds found in the cache, with n;
a cell without runs says "not run". AUCs are shown in percent (as the paper) with 3 decimals;
deltas are percentage points. The paper's numbers come from its data files
(:mod:`experiments.tables`), the configuration named in the text from the resolved configs,
and the caveats (seed noise, seeds per cell, run vintages, the setup) from the runs
(:meth:`Report.caveats`).
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from benchmarks.report import replace_section
from experiments import calibration, figures
from experiments.tables import (
    AUTHORS,
    FIG5_SPEC,
    FIGURES,
    FIRST_SEED,
    NAMES,
    NOT_IMPLEMENTED,
    PAPER_COLUMN,
    PAPER_T2,
    PAPER_T3,
    PAPER_T4,
    PAPER_T4_P,
    PAPER_T5,
    PAPER_T6,
    PROPOSED,
    T2_LOSSES,
    T2_MODELS,
    T3_FUSIONS,
    T3_SELECTORS,
    T5_ENCODERS,
    TABLE3,
    TABLE4,
    TABLE6,
    spec,
    table2_specs,
    table3_specs,
    table4_specs,
    table5_specs,
)

NOT_RUN = "not run"
COMMAND = "python -m experiments.reproduce"
PROPOSED_CELL = tuple(TABLE3["proposed_cell"])
BASELINE_CELL = tuple(TABLE3["baseline_cell"])
# tf.data's autotuning thread wakes AUTOTUNE_WAKE_S x (2^k - 1) after an iterator was made.
AUTOTUNE_WAKE_S = 0.01


def _num(x) -> str:
    """A config value as the text writes it: 0.25, 0.7, 1 (not 1.0), 0.01."""
    return f"{x:g}" if isinstance(x, float) else str(x)


def _and(names: list[str]) -> str:
    """``A``, ``A and B``, ``A, B and C``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _cell_name(cell: tuple[str, str]) -> str:
    return f"{NAMES[cell[0]]} + {NAMES[cell[1]]}"


def _inline(name: str) -> str:
    """A display name inside a parenthesis: its own parentheses dropped."""
    return name.replace("(", "").replace(")", "")


def _paper_t3_aucs(dataset: str) -> dict[tuple[str, str], float]:
    return {k: v[dataset][0] for k, v in PAPER_T3.items() if dataset in v}


def paper_t3_best(dataset: str) -> str:
    """`` (paper on X: best cells, gain over Share + Sum)`` or "" without a paper Table III."""
    paper = _paper_t3_aucs(dataset)
    if not paper:
        return ""
    top = max(paper.values())
    cells = " / ".join(_cell_name(k) for k, v in paper.items() if v == top)
    gain = top - paper[BASELINE_CELL]
    return f" (paper on {PAPER_COLUMN[dataset]}: {cells}, {gain:+.2f})"


def paper_t3_summary(dataset: str) -> str:
    """One sentence on the paper's Table III for ``dataset`` (its spread, top cells, how often
    TF4CTR's selector is the best selector of a column)."""
    paper = _paper_t3_aucs(dataset)
    if not paper:
        return f" The paper has no Table III on {PAPER_COLUMN.get(dataset, dataset)}."
    top, low = max(paper.values()), min(paper.values())
    cells = " and ".join(_cell_name(k) for k, v in paper.items() if v == top)
    selector, fusions = PROPOSED_CELL[0], TABLE3["fusions"]
    best = sum(
        paper[(selector, f)] == max(paper[(sel, f)] for sel in TABLE3["selectors"]) for f in fusions
    )
    return (
        f" The paper's {PAPER_COLUMN[dataset]} grid spans {top - low:.2f} points, {cells} on "
        f"top ({top:.2f}), {NAMES[selector]} the best selector in {best} of {len(fusions)} "
        "columns."
    )


def paper_tf_loss_always_gains() -> bool:
    """Whether the paper's TF loss beats log loss for every base model on every dataset."""
    base, tf = T2_LOSSES[0], T2_LOSSES[-1]
    return all(
        PAPER_T2[(m, tf)][ds] > auc for m in T2_MODELS for ds, auc in PAPER_T2[(m, base)].items()
    )


def autotune_wakes(epoch_seconds: list[float]) -> list[float]:
    """The first wake of tf.data's autotuning thread after each of these epochs: where a
    ``fit()`` call that waits for it ends."""
    out = set()
    for x in epoch_seconds:
        k = max(1, math.ceil(math.log2(x / AUTOTUNE_WAKE_S + 1)))
        out.add(AUTOTUNE_WAKE_S * (2**k - 1))
    return sorted(out)


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
        self.command = command or f"{COMMAND} --dataset {study.dataset}"
        self.missing: list[str] = []

    def reference(self, model: str = PROPOSED, seed: int = FIRST_SEED):
        """The resolved reference config of ``model`` on this dataset (what the text names)."""
        return self.study.config(spec(model), seed)

    def runs(self, spec, label: str) -> list[dict]:
        found = self.index.get(self.study.cell(spec), [])
        if not found:
            self.missing.append(label)
        return found

    def paper_col(self) -> str:
        return PAPER_COLUMN.get(self.dataset, self.dataset)

    def table2(self) -> str:
        specs = table2_specs(self.dataset)
        col = self.paper_col()
        base_loss = T2_LOSSES[0]
        lcfg = self.reference().loss
        logs = "".join(
            f": the paper's {' + '.join(NAMES[x] for x in cell.split('+'))} log on "
            f"{PAPER_COLUMN.get(ds, ds)} used {text}"
            for ds, by_table in AUTHORS["logs"].items()
            for cell, text in by_table.get("table2", {}).items()
        )
        lines = [
            "## Table II: compatibility of the TF loss",
            "",
            "Each base model trained with log loss, Focal, R-CE and the TF loss (the TF loss gets "
            "the model's two towers' logits: DualMLP's two MLPs, DeepFM's FM and MLP, DCNv2's "
            "cross network and MLP, with auxiliary logit heads as the reference). Test AUC "
            f"(%); Δ = difference of means against the same model with log loss; paper: "
            f"{col} column. Every loss keeps the dataset's reference hyperparameters (TF loss "
            f"alpha, c, gamma as TF4CTR's; Focal gamma {_num(lcfg.focal_gamma)}; R-CE gamma "
            f"{_num(lcfg.rce_gamma)}), with no per-model tuning{logs}.",
            "",
            "| model | loss | test AUC (%) | Δ AUC | test logloss | epochs | paper AUC | paper Δ |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for model in T2_MODELS:
            base = values(self.runs(specs[(model, base_loss)], f"Table II {model}+{base_loss}"))
            paper_base = PAPER_T2[(model, base_loss)].get(self.dataset)
            for loss in T2_LOSSES:
                runs = self.runs(specs[(model, loss)], f"Table II {model}+{loss}")
                auc = values(runs)
                paper = PAPER_T2[(model, loss)].get(self.dataset)
                paper_delta = (
                    "-"
                    if loss == base_loss or paper is None or paper_base is None
                    else f"{paper - paper_base:+.2f}"
                )
                lines.append(
                    f"| {NAMES[model]} | {NAMES[loss]} | {fmt_cell(auc)} | "
                    f"{'-' if loss == base_loss else fmt_delta(auc, base)} | "
                    f"{fmt_cell(values(runs, 'logloss'), 1.0, 5)} | "
                    f"{', '.join(str(r['epochs']) for r in runs) or '-'} | "
                    f"{fmt_paper(paper)} | {paper_delta} |"
                )
        return "\n".join(lines)

    def _cached(self, s) -> list[dict]:
        """The cell's cached runs (not counted as missing: the tables do that)."""
        return self.index.get(self.study.cell(s), [])

    def table2_calibration(self) -> str:
        """Whether the TF loss changes the calibration of the fused prediction against log
        loss: Table II's models, each with log loss and with the TF loss, test calibration
        ratio and ECE over the seeds that record them (``experiments.calibration``)."""
        specs = table2_specs(self.dataset)
        base_loss, tf_loss = T2_LOSSES[0], T2_LOSSES[-1]
        lines = [
            "## Calibration: the TF loss against log loss (Table II models)",
            "",
            f"Test predictions of each Table II model trained with {NAMES[base_loss]} and with "
            f"the {NAMES[tf_loss]} (the same cells as Table II): calibration ratio = mean "
            "prediction / observed click rate (1 is calibrated) and expected calibration error "
            "over 15 equal-width bins, mean ± sample standard deviation over the seeds whose "
            "`metrics.json` records calibration; Δ = TF loss − log loss with the standard "
            "error of the difference (beyond the seed noise past twice it).",
            "",
            f"| model | ratio, {NAMES[base_loss]} | ratio, {NAMES[tf_loss]} | Δ ratio | ECE, "
            f"{NAMES[base_loss]} | ECE, {NAMES[tf_loss]} | Δ ECE |",
            "|---|---|---|---|---|---|---|",
        ]
        unrecorded = []
        for model in T2_MODELS:
            cells = {loss: self._cached(specs[(model, loss)]) for loss in (base_loss, tf_loss)}
            sums = {}
            for loss, runs in cells.items():
                sums[loss] = calibration.summary(runs) or {"n": 0, "ratio": [], "ece": []}
                if len(runs) > sums[loss]["n"]:
                    unrecorded.append(
                        f"{NAMES[model]} + {NAMES[loss]} ({len(runs) - sums[loss]['n']} of "
                        f"{len(runs)})"
                    )
            b, t = sums[base_loss], sums[tf_loss]
            lines.append(
                f"| {NAMES[model]} | {calibration.stat(b['ratio'])} | "
                f"{calibration.stat(t['ratio'])} | "
                f"{calibration.difference_text(t['ratio'], b['ratio'])} | "
                f"{calibration.stat(b['ece'])} | {calibration.stat(t['ece'])} | "
                f"{calibration.difference_text(t['ece'], b['ece'])} |"
            )
        if unrecorded:
            lines += [
                "",
                "Runs archived before calibration was recorded (their `metrics.json` has no "
                f"`calibration`; retrain them to fill the cells): {_and(unrecorded)}.",
            ]
        return "\n".join(lines)

    def caveats(self, t4: dict[str, list[dict]], timing: dict | None) -> str:
        """How to read the numbers, with every figure computed from the cached runs and the
        dataset's reference config (issue 17: no hand-written constants)."""
        cells = {
            "II": [self._cached(x) for x in table2_specs(self.dataset).values()],
            "III": [self._cached(x) for x in table3_specs().values()],
            "IV": list(t4.values()),
            "V": [self._cached(x) for x in table5_specs().values()],
        }
        counts = []
        for table, runs in cells.items():
            ns = sorted({len(r) for r in runs if r})
            single = sum(1 for r in runs if len(r) == 1)
            if ns:
                counts.append(
                    f"Table {table}: {sum(1 for r in runs if r)} of {len(runs)} cells run, "
                    f"{single} with one seed (n {', '.join(map(str, ns))})"
                )
        spread = sorted(
            (statistics.stdev(values(r)) * 100, NAMES[r[0]["model"]], len(r))
            for r in t4.values()
            if len(r) > 1
        )
        ref = self.reference()
        t = ref.train
        monitor = " + ".join({"auc": "AUC", "gauc": "gAUC"}.get(x, x) for x in t.monitor.split("+"))
        lines = ["Reading these numbers (computed from the cached runs):", ""]
        if spread:
            median = statistics.median(x for x, _, _ in spread)
            lines.append(
                f"- Seed noise. The sample standard deviation of test AUC over seeds in Table "
                f"IV is {spread[0][0]:.3f}-{spread[-1][0]:.3f} AUC points "
                f"({_and([f'{name} {sd:.3f} (n={n})' for sd, name, n in spread])}; median "
                f"{median:.3f}). Two single-seed runs differ by about sqrt(2) x that from seed "
                f"noise alone, {math.sqrt(2) * median:.3f} points at the median: a smaller "
                "single-seed difference supports no ranking. The paper reports no seeds or "
                "spreads for Tables II, III and V."
            )
        else:
            lines.append(
                "- Seed noise: no Table IV cell has two seeds yet, so none is measured; the "
                f"statements above take {DEFAULT_NOISE} AUC points as the noise until one has."
            )
        if counts:
            lines.append(f"- Seeds per cell. {'; '.join(counts)}.")
        # one record per run (a cell shared by two tables is counted once)
        everything = list({id(r): r for runs in cells.values() for c in runs for r in c}.values())
        older = sum(1 for r in everything if "calibration" not in r)
        both = [r["test"] for r in everything if "gauc_by_id" in r["test"]]
        shift = (
            f" (in the {len(both)} newer runs, which record both, the two definitions differ "
            f"by at most {max(abs(m['gauc'] - m['gauc_by_id']) for m in both) * 100:.4f} "
            "gAUC points)"
            if both
            else ""
        )
        if older:
            lines.append(
                f"- Run vintages. {older} of {len(everything)} cached runs predate the "
                "recorded calibration (their `metrics.json` has none): they were trained with "
                "the earlier data order (issue 19 made each epoch's order a function of seed "
                "and epoch only), and their gAUC, and so their monitor, grouped users by "
                f"encoded id, not by the raw user{shift}. A cell mixing both vintages is a "
                "mean over seeds of either order."
            )
        lines.append(
            f"- Setup. Every model here uses the same reference schedule (Adam "
            f"{t.learning_rate:g}, LR x{t.lr_factor:g} per non-improving epoch, early stop after "
            f"{t.patience}, monitor {monitor} on valid for {PAPER_COLUMN.get(self.dataset, self.dataset)}) "
            f"and the same embedding ({ref.model.embedding_dim}) and MLP sizes, with no "
            "per-model tuning; the paper's baselines were tuned from FuxiCTR's optimal values. "
            "Our baseline AUCs can therefore sit above or below the paper's."
        )
        lines.append(
            "- DeepFM. The FM term is implemented correctly here, while the reference's DeepFM "
            "variant sums it wrongly (tf4ctr_reference.md section 1.7), so Table V's DeepFM "
            "rows are not expected to match the paper's."
        )
        cores = f"{timing['cores']} shared CPU cores" if timing else "the CPU"
        lines.append(
            f"- Table VI is timed on {cores} in float32 on this dataset; the paper times "
            f"{PAPER_COLUMN.get(TABLE6['dataset'], TABLE6['dataset'])} on {TABLE6['hardware']}. "
            "On CPU time follows FLOPs, while on a GPU small models are bound by kernel "
            "launches, so the ratios need not agree."
        )
        return "\n".join(lines)

    def table3(self) -> str:
        specs = table3_specs()
        ref = self.reference()
        cells = {key: self.runs(s, f"Table III {key[0]}+{key[1]}") for key, s in specs.items()}
        means = {k: statistics.fmean(values(r)) for k, r in cells.items() if r}
        best = max(means, key=means.get) if means else None
        head = " | ".join(f"{NAMES[f]} AUC | {NAMES[f]} gAUC" for f in T3_FUSIONS)
        lines = [
            "## Table III: SSEM x DFM",
            "",
            f"{NAMES[PROPOSED]} (reference config: simple MLP {list(ref.model.simple_units)}, "
            f"complex MLP {list(ref.model.complex_units)}, TF loss {self.tf_loss_text(ref)}) "
            "with every sample selector and fusion. Test AUC "
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
        if best is not None and BASELINE_CELL in means:
            gain = (means[best] - means[BASELINE_CELL]) * 100
            lines += [
                "",
                f"Best cell: {_cell_name(best)}; its gain over {_cell_name(BASELINE_CELL)}: "
                f"{gain:+.3f} AUC points{paper_t3_best(self.dataset)}.",
            ]
        return "\n".join(lines)

    @staticmethod
    def tf_loss_text(config) -> str:
        """``alpha 0.25, c 0.7, gamma 1`` of a resolved config."""
        lo = config.loss
        return f"alpha {_num(lo.alpha)}, c {_num(lo.c)}, gamma {_num(lo.gamma)}"

    def framework_text(self, config) -> str:
        """``SER + WSF, TF loss`` of a resolved TF4CTR config."""
        m = config.model
        return f"{_cell_name((m.selector, m.fusion))}, {NAMES[config.loss_name]}"

    def table4_data(self) -> dict[str, list[dict]]:
        return {m: self.runs(s, f"Table IV {m}") for m, s in table4_specs().items()}

    def table4(self) -> str:
        data = self.table4_data()
        paper = PAPER_T4.get(self.dataset, {})
        lines = [
            "## Table IV: TF4CTR against the baselines",
            "",
            f"Reference config for every model (baselines: log loss; {NAMES[PROPOSED]}: "
            f"{self.framework_text(self.reference())}). Test metrics, mean ± sample std over the "
            "cached seeds (n)."
            + (
                f" {_and([NAMES[m] for m in NOT_IMPLEMENTED])} are not implemented here."
                if NOT_IMPLEMENTED
                else ""
            ),
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
        means = {m: statistics.fmean(values(r)) for m, r in data.items() if r and m != PROPOSED}
        return max(means, key=means.get) if means else None

    def ttest_text(self, data: dict[str, list[dict]]) -> str:
        best = self.best_baseline(data)
        ours = values(data.get(PROPOSED, []))
        if best is None or not ours:
            return "t-test: not possible yet (TF4CTR or every baseline not run)."
        paper_p = PAPER_T4_P.get(self.dataset)
        runs = TABLE4["runs_per_model"]
        paper = f" Paper ({self.paper_col()}, {runs} runs each): p = {paper_p}." if paper_p else ""
        texts = [self._ttest_one(ours, data, best, "Best baseline by mean test AUC")]
        multi = [m for m in data if m != PROPOSED and len(data[m]) > 1]
        if len(values(data[best])) < 2 and multi:
            other = max(multi, key=lambda m: statistics.fmean(values(data[m])))
            texts.append(self._ttest_one(ours, data, other, "Best baseline with n ≥ 2"))
        return " ".join(texts) + paper

    def _ttest_one(self, ours: list[float], data: dict, base: str, what: str) -> str:
        theirs = values(data[base])
        diff = (statistics.fmean(ours) - statistics.fmean(theirs)) * 100
        head = (
            f"{what}: {NAMES[base]}. {NAMES[PROPOSED]} − {NAMES[base]}: {diff:+.3f} AUC points (n = "
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
        specs = table5_specs()
        ref = self.reference()
        encoders = ", ".join(f"{NAMES[b]}: {NAMES[e]}" for b, e in T5_ENCODERS.items())
        lines = [
            "## Table V: base models with and without the TF4CTR framework",
            "",
            f"With the framework: {NAMES[PROPOSED]}'s reference config "
            f"({self.framework_text(ref)}, complex MLP {list(ref.model.complex_units)}) with the "
            f"base model's explicit part as the simple encoder ({encoders}). Without: the base "
            "model with log loss (the Table IV runs). Test AUC (%)." + self.table5_logs(),
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

    @staticmethod
    def table5_logs() -> str:
        """What the reference's logs behind the paper's Table V used, and which rows have none."""
        logs = [
            (f"{NAMES[b]} on {PAPER_COLUMN.get(ds, ds)}, {PAPER_T5[(b, True)][ds]:.2f}", text)
            for ds, by_table in AUTHORS["logs"].items()
            for b, text in by_table.get("table5", {}).items()
        ]
        if not logs:
            return ""
        logged = {b for by in AUTHORS["logs"].values() for b in by.get("table5", {})}
        if len(logs) == 1:
            text = f" The only log behind the paper's column ({logs[0][0]}) used {logs[0][1]}"
        else:
            text = " The logs behind the paper's column: " + "; ".join(
                f"{cell} used {used}" for cell, used in logs
            )
        unlogged = [NAMES[b] for b in T5_ENCODERS if b not in logged]
        return text + (f"; {_and(unlogged)} have no logs." if unlogged else ".")

    def table6(self, timing: dict | None) -> str:
        lines = [
            f"## Table VI: training and inference time relative to {NAMES[TABLE6['reference']]}",
            "",
        ]
        if not timing:
            self.missing.append("Table VI timing")
            return "\n".join(lines + [f"{NOT_RUN}: `{self.command} --tables 6`."])
        base = timing["models"][TABLE6["reference"]]
        paper_setup = (
            f"{PAPER_COLUMN.get(TABLE6['dataset'], TABLE6['dataset'])}, {TABLE6['epoch']}, "
            f"{TABLE6['hardware']}"
        )
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
            + f". Paper: {paper_setup}.",
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
            wakes = autotune_wakes([x for t in timing["models"].values() for x in t["train_all"]])
            lines += [
                "",
                f"The whole `fit()` call of those epochs: {epochs('train_call_all')}. It adds the "
                "deletion of the epoch's tf.data iterator, which in TF 2.21 waits for the "
                "pipeline's autotuning thread; that thread wakes "
                f"{AUTOTUNE_WAKE_S * 1000:.0f} ms x (2^k - 1) after the iterator was created, so "
                f"calls can end at {' or '.join(f'{w:.2f} s' for w in wakes)} "
                "(`benchmarks/timing.py`).",
            ]
        return "\n".join(lines)

    def fig10(self, counts: dict | None, png: str) -> str:
        lines = ["## Figure 10: samples by difficulty per epoch", ""]
        if not counts:
            self.missing.append("Figure 10")
            return "\n".join(lines + [f"{NOT_RUN}: `{self.command} --tables fig10`."])
        models = " and ".join(
            f"{NAMES[m]} ({'reference config' if m == PROPOSED else 'log loss'})"
            for m in counts["models"]
        )
        lo, hi = (_num(x) for x in counts["thresholds"])
        factor = _num(self.reference().train.lr_factor)
        lines += [
            f"![difficulty per epoch]({png})",
            "",
            f"{models} trained {counts['epochs']} epochs each with the reference schedule (LR "
            f"x{factor} on every non-improving epoch) but no early stop, as the paper's larger "
            "patience. After every epoch both splits are predicted and each sample falls in one "
            "class by the probability given to its true label, p_t = y·p + (1 − y)(1 − p): "
            f"misclassified p_t < {lo}, poorly classified {lo} ≤ p_t < {hi}, well classified "
            f"p_t ≥ {hi} (the paper's thresholds {{{lo}, {hi}}}; our reading of its text). "
            "Positives and negatives are counted apart, as the paper's panels (a) and (b).",
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
        config = self.study.config(FIG5_SPEC, FIRST_SEED)
        paper_ds = FIGURES["figure5"]["dataset"]
        lines += [
            f"![logit gradient norms]({png})",
            "",
            f"TF4CTR framework with sum fusion (ctr = sigmoid(z_s + z_c), as the reference's "
            f"TF4CTR_test.py), otherwise the reference config, one epoch at batch "
            f"{norms['batch_size']:,} ({norms['steps']} full batches; the paper's Figure 5 is "
            f"{PAPER_COLUMN.get(paper_ds, paper_ds)}, ours the study's dataset, and a batch of "
            f"{config.train.batch_size:,} would give too few points), trained from the same "
            f"initial weights with L_ctr + L_TF ({self.tf_loss_text(config)}) and with L_ctr "
            "alone. Per batch: the L2 norm over the batch of dL/dz_s and dL/dz_c, L the total "
            "training loss.",
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


# AUC points: the noise level used when no Table IV cell has two seeds yet (then the report
# says so); otherwise seed_noise() computes it from the runs.
DEFAULT_NOISE = 0.05


def seed_noise(t4: dict[str, list[dict]]) -> tuple[float, bool]:
    """``(points, measured)``: the expected spread of a difference between two single-seed
    runs, sqrt(2) x the median over Table IV's multi-seed cells of the sample standard
    deviation of test AUC (in AUC points); ``DEFAULT_NOISE`` and False without such a cell."""
    sds = [statistics.stdev(values(r)) * 100 for r in t4.values() if len(r) > 1]
    if not sds:
        return DEFAULT_NOISE, False
    return round(math.sqrt(2) * statistics.median(sds), 3), True


def _seeds(counts: list[int]) -> str:
    lo, hi = min(counts), max(counts)
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _mean(xs: list[float]) -> float:
    return statistics.fmean(xs) * 100


def discussion(report: Report, t4: dict[str, list[dict]], stored: dict) -> str:
    """Statements computed from the cache (so they stay true as runs are added), then the
    caveats that hold for any numbers."""
    noise, _ = seed_noise(t4)
    ds, idx, cell = report.dataset, report.index, report.study.cell
    lines = ["## Discussion", "", "Computed from the cached runs above:", ""]
    ours = {m: values(r) for m, r in t4.items()}
    paper4 = PAPER_T4.get(ds, {})
    twin = TABLE4["twin_baseline"]
    t, d = ours.get(PROPOSED), ours.get(twin)
    if t and d:
        gain = _mean(t) - _mean(d)
        pg = paper4.get(PROPOSED, 0) - paper4.get(twin, 0) if twin in paper4 else None
        cmp = (
            ""
            if pg is None
            else (f" (paper: {pg:+.2f}; ours is {'smaller' if gain < pg else 'larger'})")
        )
        lines.append(
            f"- TF4CTR − {NAMES[twin]} (log loss): {gain:+.3f} AUC points, n = {len(t)} / {len(d)} "
            f"seeds{cmp}."
        )
    if t and PROPOSED in paper4:
        base_gaps = [
            _mean(v) - paper4[m] for m, v in ours.items() if v and m in paper4 and m != PROPOSED
        ]
        if base_gaps:
            lines.append(
                f"- Against the paper's absolute numbers: our TF4CTR is "
                f"{_mean(t) - paper4[PROPOSED]:+.3f} AUC points from its "
                f"{paper4[PROPOSED]:.2f}, while our baselines are on average "
                f"{statistics.fmean(base_gaps):+.3f} points from the paper's ({len(base_gaps)} "
                "models, from "
                f"{min(base_gaps):+.3f} to {max(base_gaps):+.3f})."
                + (
                    " The smaller TF4CTR margin here comes from stronger baselines, not from a "
                    "weaker TF4CTR."
                    if _mean(t) - paper4[PROPOSED] > -noise and statistics.fmean(base_gaps) > noise
                    else ""
                )
            )
    best = report.best_baseline(t4)
    if t and best:
        gain = _mean(t) - _mean(ours[best])
        pbest = max((v for k, v in paper4.items() if k != PROPOSED), default=None)
        pg = f" (paper: {paper4[PROPOSED] - pbest:+.2f} over its best)" if pbest else ""
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
            ((m, _mean(v)) for m, v in ours.items() if v and m != PROPOSED), key=lambda x: -x[1]
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
                f"baselines below {noise} points rank nothing."
            )
    specs2 = table2_specs(ds)
    base_loss, tf_loss = T2_LOSSES[0], T2_LOSSES[-1]
    parts, tf_deltas, tf_tests, seeds_t2 = [], [], [], []
    for model in T2_MODELS:
        base = values(idx.get(cell(specs2[(model, base_loss)]), []))
        deltas = []
        for loss in T2_LOSSES[1:]:
            runs = values(idx.get(cell(specs2[(model, loss)]), []))
            if base and runs:
                delta = _mean(runs) - _mean(base)
                paper = PAPER_T2[(model, loss)].get(ds)
                pb = PAPER_T2[(model, base_loss)].get(ds)
                pd = f" (paper {paper - pb:+.2f})" if paper is not None and pb is not None else ""
                deltas.append(f"{NAMES[loss]} {delta:+.3f}{pd}")
                seeds_t2 += [len(runs), len(base)]
                if loss == tf_loss:
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
                f"Differences below {noise} points are within single-seed noise."
                if min(seeds_t2) < 2
                else f"Means over {_seeds(seeds_t2)} seeds per cell."
            )
        )
    if tf_deltas:
        up = sum(d >= noise for d in tf_deltas)
        down = sum(d <= -noise for d in tf_deltas)
        lines.append(
            f"- The TF loss beats log loss by {noise} points or more on {up} of "
            f"{len(tf_deltas)} base models and loses by as much on {down}; "
            + (
                "the paper reports a gain for every base model on every dataset"
                if paper_tf_loss_always_gains()
                else "the paper does not report a gain for every base model and dataset"
            )
            + ". Here it keeps TF4CTR's alpha, c and "
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
            f"- Table III ({len(done)}/{len(grid)} cells run): best {_cell_name(best3)} "
            f"{done[best3]:.3f}, worst {_cell_name(worst3)} {done[worst3]:.3f} (spread {done[best3] - done[worst3]:.3f} "
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
        m, ref = timing["models"], TABLE6["reference"]
        key = "train_cpu_s" if "train_cpu_s" in m[ref] else "train_s"
        ratios = ", ".join(
            f"{NAMES[k]} {v[key] / m[ref][key]:.2f}x" for k, v in m.items() if k != ref
        )
        paper = ", ".join(
            f"{_inline(NAMES[k])} {PAPER_T6[k][1]}" for k in m if k in PAPER_T6 and k != ref
        )
        lines.append(
            f"- Table VI, training {'CPU ' if key == 'train_cpu_s' else ''}time per epoch "
            f"relative to {NAMES[ref]}: {ratios} (paper, "
            f"{PAPER_COLUMN.get(TABLE6['dataset'], TABLE6['dataset'])} on a GPU: {paper})."
        )
    counts = stored.get("fig10")
    pair = list(FIGURES["figure10"]["models"])
    if counts and set(pair) <= set(counts["models"]):
        parts = []
        for split in ("valid", "test"):
            last = [counts["models"][k][split][-1] for k in pair]
            for cls in reversed(figures.CLASSES):
                a, b = (sum(x[lab][cls] for lab in ("positive", "negative")) for x in last)
                parts.append(f"{split} #{cls} {a:,} -> {b:,}")
        lines.append(
            f"- Figure 10, {' -> '.join(NAMES[k] for k in pair)} after epoch {counts['epochs']}: "
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
            f"z_s and {change['z_c']:+.0f}% for z_c, {trend} "
            f"({PAPER_COLUMN.get(FIGURES['figure5']['dataset'], '')} there, "
            f"{PAPER_COLUMN.get(ds, ds)} here)."
        )
    return "\n".join(lines)


def write_report(study, path: Path, args) -> None:
    """Rebuilds every reproduction section of ``path`` and the figures beside it."""
    index = study.index()
    report = Report(study, index)
    name = path.stem
    stored = {
        key: study.read_json(figures.cache_path(study, key, args)) for key in figures.EXPERIMENTS
    }
    fig10_png = f"{name}-fig10-difficulty.png"
    fig5_png = f"{name}-fig5-logit-grad-norms.png"
    if stored["fig10"]:
        figures.plot_fig10(stored["fig10"], path.parent / fig10_png)
    if stored["fig5"]:
        figures.plot_fig5(stored["fig5"], path.parent / fig5_png)
    t4 = report.table4_data()
    title = f"# {PAPER_COLUMN.get(study.dataset, study.dataset)} results"
    header = (
        f"## Reproducing the paper (`{COMMAND}`)\n\n"
        f"`{COMMAND} --dataset {study.dataset} --table4-seeds 3` trains "
        "every run of Tables II-V through `python -m pipelines.train` (the prepared splits, the "
        "dataset's reference config plus each table's overrides, reference schedule with early "
        "stopping), caches each run under `runs/reproduce/<dataset>/<model>-<fingerprint>` and "
        f"rebuilds the sections below from the cache after each run. Seeds start at {FIRST_SEED}. AUCs "
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
        ("repro-calibration", report.table2_calibration()),
        (
            "repro-discussion",
            discussion(report, t4, stored) + "\n\n" + report.caveats(t4, stored["6"]),
        ),
    ]
    best = report.best_baseline(t4)
    if best and welch(values(t4.get(PROPOSED, [])), values(t4[best])) is None:
        report.missing.append(f"Table IV seeds {FIRST_SEED + 1}-{FIRST_SEED + 2} for the t-test")
    sections.append(("repro-missing", report.missing_text()))
    for key, body in sections:
        replace_section(path, key, body, title=title)
