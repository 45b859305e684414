"""The paper's hyperparameter study (section 4.3, RQ5: Figs. 6-9) and its Figs. 2 and 4.

    python -m experiments.hyperparams --dataset frappe --dry-run     # the runs, cached or not, cost
    python -m experiments.hyperparams --dataset frappe               # every sweep, 3 seeds a point
    python -m experiments.hyperparams --dataset frappe --sweeps alpha gamma --seeds 1
    python -m experiments.hyperparams --dataset frappe --report-only # report from the cache
    python -m experiments.hyperparams --dataset ml-1m --data /data/ml-1m

Each sweep (:func:`experiments.tables.sweep_specs`; grids and the paper's claims in
``experiments/paper/hyperparams.yaml``) sets one key of TF4CTR's reference config on the
dataset to each point of the paper's grid, the others as the reference (the paper's "we fix
the experimental setup of section 4.2.3"): alpha (Fig. 6), c (Fig. 7), gamma (Fig. 8) and the
simple tower (Fig. 9). Every point is trained ``--seeds`` times through ``python -m
pipelines.train`` with the reference schedule in the run cache of ``experiments.reproduce``
(``runs/reproduce/<dataset>``, restored from and archived to ``experiments/results/runs/
<dataset>``), so the point equal to the reference config is Table IV's TF4CTR cell and trains
no run of its own. Fig. 2 (the DNN's predictions by difficulty early in training) is computed
in this process and cached as JSON beside the runs; Fig. 4 is drawn from
:class:`tf4ctr_keras.losses.TwinFocusLoss` itself. The report
``experiments/results/<dataset>-hyperparams.md`` (figures, a table per sweep, and a reading
computed from the runs) is rebuilt after every run; points without runs say "not run".

A separate entry point rather than more ``--tables`` keys of ``experiments.reproduce``: the study
has its own report, its own default of 3 seeds a point (its differences are of the size of the
seed noise) and its own selection of sweeps, while it shares that runner's study options,
cache, archive, run loop and cost estimate.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import statistics
import sys
from pathlib import Path

from benchmarks.report import replace_section
from experiments import REPO, RESULTS, figures
from experiments.report import NOT_RUN, Report, fmt_cell, values, welch
from experiments.reproduce import (
    add_study_arguments,
    cost_text,
    execute,
    finish,
    measured_pace,
    pending,
    rebuild_report,
    run_experiment,
    start_study,
)
from experiments.runs import Study, seeds
from experiments.tables import (
    FIRST_SEED,
    HYPERPARAMS,
    NAMES,
    PAPER_COLUMN,
    PROPOSED,
    SWEEPS,
    THRESHOLDS,
    sweep_points,
    sweep_specs,
)

log = logging.getLogger(__name__)

COMMAND = "python -m experiments.hyperparams"
CHOICES = (*SWEEPS, *figures.HYPERPARAM_EXPERIMENTS)
# |Spearman rho| of the mean test AUC against the swept value from which a sweep has a trend.
TREND_RHO = 0.5
# Two-tailed Welch p below which a difference between two points exceeds the seed noise.
P_NOISE = 0.05
# Fig. 4's table: the predictions shown.
FIG4_P = (0.1, 0.3, 0.5, 0.7, 0.9)


def sweep(name: str) -> dict:
    return HYPERPARAMS["sweeps"][name]


def point_label(name: str, label: str) -> str:
    """``alpha 0.25``, ``simple C [200, 200]``: a point as the runner logs it."""
    value = sweep_points(name)[label]
    return f"{name} {label} {list(value)}" if isinstance(value, tuple) else f"{name} {label}"


# -- planning -----------------------------------------------------------------------------------
def plan(name: str, n_seeds: int) -> list[tuple[str, object, int]]:
    """``(label, spec, seed)`` of a sweep's runs, cached ones included: every point on the
    first seed, then every point on the next (a partial sweep is a whole curve)."""
    specs = sweep_specs(name)
    return [(point_label(name, k), s, seed) for seed in seeds(n_seeds) for k, s in specs.items()]


def planned_work(study: Study, args: argparse.Namespace) -> list[tuple[str, int | None]]:
    """What the chosen sweeps and figures still need (:func:`experiments.reproduce.cost_text`)."""
    todo, seen = [], set()
    for name in args.sweeps:
        if name in figures.HYPERPARAM_EXPERIMENTS:
            if study.read_json(figures.cache_path(study, name, args)) is None:
                todo += figures.planned_epochs(name, args)
        else:
            todo += pending(study, plan(name, args.seeds), seen)
    return todo


# -- the report ---------------------------------------------------------------------------------
def sweep_rows(study: Study, index: dict, name: str) -> list[dict]:
    """Per point of a sweep, in grid order: its label, numeric ``x`` (None for a structure),
    its cached runs and their test AUC, gAUC and logloss."""
    rows = []
    for label, s in sweep_specs(name).items():
        value = sweep_points(name)[label]
        runs = index.get(study.cell(s), [])
        rows.append(
            {
                "label": label,
                "x": None if isinstance(value, tuple) else value,
                "value": value,
                "runs": runs,
                "auc": values(runs),
                "gauc": values(runs, "gauc"),
                "logloss": values(runs, "logloss"),
            }
        )
    return rows


def paper_best(name: str, dataset: str) -> str | None:
    """The point label of the paper's optimum of a sweep on ``dataset`` (its text), or None."""
    best = (sweep(name).get("best") or {}).get(dataset)
    return None if best is None else best if isinstance(best, str) else f"{float(best):g}"


def _pct(xs: list[float]) -> str:
    """``98.712 ± 0.020`` (percent), or ``98.712`` for one value."""
    mean = statistics.fmean(xs) * 100
    return f"{mean:.3f} ± {statistics.stdev(xs) * 100:.3f}" if len(xs) > 1 else f"{mean:.3f}"


def _versus(a: list[float], b: list[float]) -> str:
    """Whether ``mean(a) - mean(b)`` exceeds the seed noise: the Welch test's verdict."""
    test = welch(a, b)
    if test is None:
        return "too few seeds to tell it from the seed noise (Welch needs n >= 2 on both sides)"
    verdict = "exceeds the seed noise" if test["p"] < P_NOISE else "within the seed noise"
    return f"{verdict} (Welch p = {test['p']:.2g}, n = {test['n'][0]} vs {test['n'][1]})"


def _gap(a: list[float], b: list[float]) -> str:
    """``0.100 AUC points, exceeds the seed noise (...)``: mean(a) − mean(b) and its verdict."""
    diff = (statistics.fmean(a) - statistics.fmean(b)) * 100
    return f"{diff:.3f} AUC points, {_versus(a, b)}"


def _same(same: bool) -> str:
    return "the same shape" if same else "not its shape"


def _trend(rows: list[dict]) -> tuple[str, float] | None:
    """``("decreasing" | "increasing" | "none", Spearman rho)`` of the mean test AUC against
    the swept value, over the points run (at least 3, numeric); None otherwise."""
    done = [r for r in rows if r["auc"] and r["x"] is not None]
    if len(done) < 3:
        return None
    from scipy import stats

    rho = float(
        stats.spearmanr([r["x"] for r in done], [statistics.fmean(r["auc"]) for r in done])[0]
    )
    if rho != rho:  # every mean equal: no order at all
        return "none", 0.0
    kind = "decreasing" if rho <= -TREND_RHO else "increasing" if rho >= TREND_RHO else "none"
    return kind, rho


def reading(name: str, rows: list[dict], dataset: str) -> str:
    """The computed reading of one sweep: our optimum against the paper's (and whether the
    difference exceeds the seed noise), our trend against the paper's, the spread of the
    curve, and the paper's further claims; "not run" without runs."""
    s = sweep(name)
    key = s["key"].split(".")[-1]
    fig, column = f"Fig. {s['figure']}", PAPER_COLUMN.get(dataset, dataset)
    done = [r for r in rows if r["auc"]]
    if not done:
        return f"{fig} on {column}: {NOT_RUN}."
    by = {r["label"]: r for r in rows}
    means = {r["label"]: statistics.fmean(r["auc"]) for r in done}
    best = max(means, key=means.get)
    n = sorted({len(r["auc"]) for r in done})
    n_text = str(n[0]) if len(n) == 1 else f"{n[0]}-{n[-1]}"
    parts = [
        f"{fig} ({key}) on {column}, test AUC (%), {len(done)} of {len(rows)} points run with "
        f"{n_text} seed(s) each"
        + (
            f" (not run: {', '.join(r['label'] for r in rows if not r['auc'])})"
            if len(done) < len(rows)
            else ""
        )
        + f". Our optimum: {key} = {best} ({_pct(by[best]['auc'])})."
    ]
    in_paper = dataset in HYPERPARAMS["datasets"]
    paper_label = paper_best(name, dataset)
    if not in_paper:
        parts.append(f"The paper has no {fig} on {column}.")
    elif paper_label is None:
        parts.append(f"The paper's text gives no optimum on {column}.")
    elif paper_label == best:
        others = {k: v for k, v in means.items() if k != best}
        if others:
            second = max(others, key=others.get)
            parts.append(
                f"It is the paper's optimum (text: {key} = {paper_label}); its lead over the "
                f"runner-up ({second}) is {_gap(by[best]['auc'], by[second]['auc'])}."
            )
        else:
            parts.append(f"It is the paper's optimum (text: {key} = {paper_label}).")
    elif paper_label in means:
        parts.append(
            f"The paper's optimum (text) is {key} = {paper_label}, where we get "
            f"{_pct(by[paper_label]['auc'])}: ours is higher by "
            f"{_gap(by[best]['auc'], by[paper_label]['auc'])}."
        )
    else:
        parts.append(
            f"The paper's optimum (text) is {key} = {paper_label}, a point "
            + ("not run here." if paper_label in by else "outside our grid.")
        )
    trend = _trend(rows)
    claimed = s.get("trend")
    claimed = claimed.get(dataset) if isinstance(claimed, dict) else claimed
    if trend is not None:
        kind, rho = trend
        words = {
            "decreasing": f"falls as {key} grows",
            "increasing": f"rises as {key} grows",
            "none": f"has no monotone trend in {key}",
        }
        order = [r["label"] for r in rows if r["auc"]]
        text = f"Shape: our AUC {words[kind]} (Spearman rho = {rho:+.2f} over {len(order)} points)"
        interior = best not in (order[0], order[-1])
        if in_paper and claimed == "peak":
            text += (
                f", with {'an interior' if interior else 'no interior'} optimum; the paper "
                f"describes a peak inside the grid: {_same(interior)}."
            )
        elif in_paper and claimed in ("decreasing", "increasing"):
            text += f"; the paper's is {claimed}: {_same(kind == claimed)}."
        else:
            text += "."
        parts.append(text)
    if len(done) > 1:
        worst = min(means, key=means.get)
        parts.append(
            f"Best − worst point ({best} − {worst}): {_gap(by[best]['auc'], by[worst]['auc'])}."
        )
    if in_paper and s.get("best_in"):
        allowed = [f"{float(v):g}" for v in s["best_in"]]
        inside = best in allowed
        parts.append(
            f"The paper finds the best {key} in {{{', '.join(allowed)}}}: ours "
            f"{'is' if inside else 'is not'} in it."
        )
    if in_paper and s.get("not_best"):
        ranked = sorted(means, key=means.get, reverse=True)
        for label in s["not_best"]:
            if label in means:
                parts.append(
                    f"The paper finds {label} not good on any dataset: ours ranks "
                    f"{ranked.index(label) + 1} of {len(ranked)}."
                )
    return " ".join(parts)


def sweep_section(report: Report, name: str, rows: list[dict], png: str) -> str:
    s = sweep(name)
    key = s["key"].split(".")[-1]
    ref = report.reference()
    ref_value = getattr(ref.model if s["key"].startswith("model.") else ref.loss, key)
    reference = [r["label"] for r in rows if r["value"] == ref_value]
    values_read = (s.get("values") or {}).get(report.dataset)
    lines = [f"## Figure {s['figure']}: {name} (`{s['key']}`)", ""]
    if any(r["auc"] for r in rows):
        lines += [f"![{key} sweep]({png})", ""]
    lines += [
        f"TF4CTR's reference config with `{s['key']}` set to each point (grid: {s['grid_read']}). "
        f"The reference config's point ({', '.join(reference) or 'none'}) is Table IV's TF4CTR "
        "cell. **Bold**: our best mean test AUC. Paper: its plotted values are "
        + (
            "below."
            if values_read
            else "not available (the text only; see `experiments/paper/hyperparams.yaml`)."
        )
        + f" Its optimum: {s['best_read']}.",
        "",
        f"| {key} | test AUC (%) | test gAUC (%) | test logloss | epochs | paper AUC |",
        "|---|---|---|---|---|---|",
    ]
    means = {r["label"]: statistics.fmean(r["auc"]) for r in rows if r["auc"]}
    best = max(means, key=means.get) if means else None
    for r in rows:
        label = f"{r['label']} {list(r['value'])}" if r["x"] is None else r["label"]
        if r["label"] in reference:
            label += " (reference)"
        auc = fmt_cell(r["auc"])
        if r["label"] == best:
            auc = f"**{auc}**"
        paper = (values_read or {}).get(r["label"])
        lines.append(
            f"| {label} | {auc} | {fmt_cell(r['gauc']) if r['gauc'] or not r['runs'] else '-'} | "
            f"{fmt_cell(r['logloss'], 1.0, 5)} | "
            f"{', '.join(str(m['epochs']) for m in r['runs']) or '-'} | "
            f"{'-' if paper is None else f'{paper:.2f}'} |"
        )
    lines += ["", "Reading (computed from the runs): " + reading(name, rows, report.dataset)]
    return "\n".join(lines)


def fig2_section(result: dict | None, png: str, command: str) -> str:
    lines = ["## Figure 2: the DNN's predictions by difficulty early in training", ""]
    if not result:
        return "\n".join(lines + [f"{NOT_RUN}: `{command} --sweeps fig2`."])
    lo, hi = (f"{x:g}" for x in result["thresholds"])
    lines += [
        f"![DNN predictions by difficulty]({png})",
        "",
        f"{NAMES.get(result['model'], result['model'])} with log loss and the reference config, "
        f"trained {result['epochs']} epoch(s) with the reference schedule but no early stop "
        f"({HYPERPARAMS['figure2']['epochs_read']}). After every epoch the train and valid splits "
        f"are predicted; each sample falls in a class by p_t, the probability given to its true "
        f"label (Figure 10's classes): misclassified p_t < {lo} (red), poorly classified "
        f"{lo} ≤ p_t < {hi} (blue), well classified p_t ≥ {hi} (green). Histograms of the "
        f"predicted probability, {result['bins']} bins, symmetric-log count axis.",
        "",
        "| epoch | split | label | misclassified | poorly | well | well share | AUC (%) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in range(result["epochs"]):
        for split in ("train", "valid"):
            entry = result["splits"][split][e]
            for label in ("positive", "negative"):
                c = entry["counts"][label]
                total = sum(c.values())
                lines.append(
                    f"| {e + 1} | {split} | {label} | {c['misclassified']:,} | {c['poorly']:,} | "
                    f"{c['well']:,} | {100 * c['well'] / total:.1f}% | {100 * entry['auc']:.3f} |"
                )
    lines += ["", "Reading (computed): " + fig2_reading(result)]
    return "\n".join(lines)


def fig2_reading(result: dict) -> str:
    """Easy against hard samples after the first epoch, per label and overall (the paper's
    claim), and how the valid split's classes change over the epochs."""

    def totals(split: str, e: int, labels=("positive", "negative")) -> dict[str, int]:
        counts = result["splits"][split][e]["counts"]
        return {cls: sum(counts[lab][cls] for lab in labels) for cls in figures.CLASSES}

    def easy_hard(t: dict[str, int]) -> tuple[int, int]:
        return t["well"], t["misclassified"] + t["poorly"]

    per_label = {lab: easy_hard(totals("train", 0, (lab,))) for lab in ("positive", "negative")}
    well, hard = easy_hard(totals("train", 0))
    holds = [lab for lab, (w, h) in per_label.items() if w > h]
    verdict = (
        "so for both labels"
        if len(holds) == 2
        else f"so overall but only for the {holds[0]}s"
        if well > hard and holds
        else "so overall only"
        if well > hard
        else "not so here"
    )
    labels = "; ".join(f"{lab}s {w:,} against {h:,}" for lab, (w, h) in per_label.items())
    text = (
        f"after epoch 1 the train split has {well:,} well classified samples against {hard:,} "
        f"poorly or misclassified ({labels}); "
        f'the paper: "{HYPERPARAMS["figure2"]["claim"]}": {verdict}.'
    )
    if result["epochs"] > 1:
        v0, v1 = totals("valid", 0), totals("valid", result["epochs"] - 1)
        text += (
            f" Valid, epoch 1 -> {result['epochs']}: "
            + ", ".join(f"{cls} {v0[cls]:,} -> {v1[cls]:,}" for cls in figures.CLASSES)
            + "."
        )
    return text


def fig4_section(curves: dict, png: str) -> str:
    pairs = [(c["c"], c["gamma"]) for c in curves["curves"]]
    head = " | ".join(f"simple c={c:g} γ={g:g} | complex c={c:g} γ={g:g}" for c, g in pairs)
    lines = [
        "## Figure 4: the TF loss terms against the prediction",
        "",
        f"![TF loss terms]({png})",
        "",
        "Per-sample values of `tf4ctr_keras.losses.TwinFocusLoss` itself (`reduction=None`; "
        "alpha = 1 leaves L_simple = (c + p)^γ·BCE, alpha = 0 leaves L_complex = (2 − c − p)^γ·"
        "BCE) for y = 1 against the tower's prediction p, beside the log loss "
        f"(`keras.losses.BinaryCrossentropy`); {HYPERPARAMS['figure4']['pairs_read']}. Shaded: "
        "Figure 10's classes for y = 1.",
        "",
        f"| p | log loss | {head} |",
        "|---|---|" + "---|---|" * len(pairs),
    ]
    for p in FIG4_P:
        i = min(range(len(curves["p"])), key=lambda j: abs(curves["p"][j] - p))
        row = " | ".join(f"{c['simple'][i]:.4f} | {c['complex'][i]:.4f}" for c in curves["curves"])
        lines.append(f"| {curves['p'][i]:g} | {curves['log_loss'][i]:.4f} | {row} |")
    lines += ["", "Reading (computed): " + fig4_reading(curves)]
    return "\n".join(lines)


def fig4_reading(curves: dict) -> str:
    """Where each term crosses the log loss (the paper's "crosspoints", at p = 1 − c), and how
    gamma and c move the terms, against the paper's description."""
    p, bce = curves["p"], curves["log_loss"]
    cross = {
        (c["c"], c["gamma"], term): figures.crossings(p, c[term], bce)
        for c in curves["curves"]
        for term in ("simple", "complex")
    }
    at = all(len(x) == 1 and abs(x[0] - (1 - k[0])) < 1e-3 for k, x in cross.items())
    pts = "; ".join(
        f"c {c:g}, gamma {g:g}: "
        + " / ".join(", ".join(f"{x:.3f}" for x in cross[(c, g, t)]) for t in ("simple", "complex"))
        for c, g in dict.fromkeys((c["c"], c["gamma"]) for c in curves["curves"])
    )
    parts = [
        f"each term crosses the log loss once, at p = 1 − c (L_simple / L_complex: {pts})"
        if at
        else f"the terms do not all cross the log loss once at p = 1 − c ({pts})"
    ]
    by_c: dict[float, list[dict]] = {}
    for c in curves["curves"]:
        by_c.setdefault(c["c"], []).append(c)
    series = max(by_c.values(), key=len)
    if len(series) > 1:
        series = sorted(series, key=lambda c: c["gamma"])
        c0 = series[0]["c"]
        lo = min(range(len(p)), key=lambda j: abs(p[j] - (1 - c0) / 2))  # misclassified side
        hi = min(range(len(p)), key=lambda j: abs(p[j] - (1 + (1 - c0)) / 2))  # well side

        def moves(term: str, i: int) -> str:
            xs = [c[term][i] for c in series]
            up = all(b > a for a, b in zip(xs, xs[1:], strict=False))
            down = all(b < a for a, b in zip(xs, xs[1:], strict=False))
            return "rises" if up else "falls" if down else "is not monotone"

        got = {(t, i): moves(t, i) for t in ("simple", "complex") for i in (lo, hi)}
        as_paper = got == {
            ("simple", lo): "falls",
            ("simple", hi): "rises",
            ("complex", lo): "rises",
            ("complex", hi): "falls",
        }
        gammas = ", ".join(f"{c['gamma']:g}" for c in series)
        parts.append(
            f"at c = {c0:g}, as gamma grows ({gammas}) L_simple {got[('simple', lo)]} at "
            f"p = {p[lo]:g} and {got[('simple', hi)]} at p = {p[hi]:g}, L_complex "
            f"{got[('complex', lo)]} and {got[('complex', hi)]}: "
            + ("as the paper describes" if as_paper else "not as the paper describes")
        )
    return "; ".join(parts) + "."


def write_report(study: Study, path: Path, args, data_available: bool = True) -> None:
    """Rebuilds every section of the hyperparameter report ``path`` and its figures."""
    path.parent.mkdir(parents=True, exist_ok=True)
    index = study.index()
    report = Report(study, index, f"{COMMAND} --dataset {study.dataset}")
    name, column = path.stem, PAPER_COLUMN.get(study.dataset, study.dataset)
    ref = report.reference()
    command = report.command
    header = [
        f"The paper's hyperparameter study (section 4.3; `{command}`): each sweep sets one "
        f"key of {NAMES[PROPOSED]}'s reference config on {column} ({report.framework_text(ref)} "
        f"{report.tf_loss_text(ref)}, simple MLP {list(ref.model.simple_units)}, complex MLP "
        f"{list(ref.model.complex_units)}) to each point of the paper's grid and trains it "
        f"through `python -m pipelines.train` with the reference schedule (early stopping), "
        f"seeds {FIRST_SEED}, {FIRST_SEED + 1}, ...; runs are cached and archived with those of "
        f"`python -m experiments.reproduce`. AUCs in percent; ± is the sample standard "
        "deviation over seeds, n the number of seeds. The paper's figures are not legible in "
        "its text, so its plotted values are not available: the report compares against what "
        "its text states (optimum, trend), recorded in `experiments/paper/hyperparams.yaml`.",
    ]
    if not data_available:
        header += [
            "",
            f"**The {column} data was not available to this study** (no `--data` given, and "
            f"nothing at `{os.path.relpath(study.data, REPO)}`): no run "
            f"exists, so every cell below says {NOT_RUN}. `{command} --data PATH` trains them "
            "(raw files in the dataset's format or a prepared directory).",
        ]
    every = argparse.Namespace(**{**vars(args), "sweeps": list(CHOICES)})
    work = cost_text(planned_work(study, every), measured_pace(index))
    header += ["", f"Still to do for the whole study at {args.seeds} seed(s) a point: {work}."]
    sections = [("hp", "\n".join(header))]
    missing = []
    for sweep_name in SWEEPS:
        rows = sweep_rows(study, index, sweep_name)
        png = f"{name}-fig{sweep(sweep_name)['figure']}-{sweep_name}.png"
        s = sweep(sweep_name)
        if any(r["auc"] for r in rows):  # nothing to draw before the first run
            figures.plot_sweep(
                rows,
                path.parent / png,
                f"Fig. {s['figure']} ({sweep_name}) on {column}: test AUC by {s['key']}",
                s["key"],
                {
                    "best": paper_best(sweep_name, study.dataset),
                    "values": (s.get("values") or {}).get(study.dataset),
                },
            )
        sections.append((f"hp-fig{s['figure']}", sweep_section(report, sweep_name, rows, png)))
        missing += [f"{sweep_name} {r['label']}" for r in rows if not r["auc"]]
    fig2 = study.read_json(figures.cache_path(study, "fig2", args))
    fig2_png = f"{name}-fig2-dnn-predictions.png"
    if fig2:
        figures.plot_fig2(fig2, path.parent / fig2_png)
    else:
        missing.append("Figure 2")
    sections.append(("hp-fig2", fig2_section(fig2, fig2_png, command)))
    curves = figures.fig4_curves()
    fig4_png = f"{name}-fig4-tf-loss.png"
    figures.plot_fig4(curves, path.parent / fig4_png, THRESHOLDS)
    sections.append(("hp-fig4", fig4_section(curves, fig4_png)))
    lines = ["## Missing points", ""]
    if missing:
        lines += [
            f"{len(missing)} point(s) or figure(s) have no run yet: {'; '.join(missing)}.",
            "",
            f"`{command} --dry-run` lists them and states the cost; `{command}` trains them "
            f"(cached runs are skipped), `{command} --report-only` rebuilds this file.",
        ]
    else:
        lines.append("None: every point above comes from cached runs.")
    sections.append(("hp-missing", "\n".join(lines)))
    title = f"# {column}: the hyperparameter study (paper section 4.3, Figs. 2, 4, 6-9)"
    for key, body in sections:
        replace_section(path, key, body, title=title)


# -- main ---------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_study_arguments(p, "experiments/results/<dataset>-hyperparams.md", 3, "point")
    p.add_argument(
        "--sweeps",
        nargs="+",
        default=list(CHOICES),
        choices=CHOICES,
        help="sweeps (alpha: Fig. 6, c: Fig. 7, gamma: Fig. 8, simple: Fig. 9) and fig2 "
        "(default all; Fig. 4 needs no run and is always drawn)",
    )
    p.add_argument(
        "--fig2-epochs",
        type=int,
        default=HYPERPARAMS["figure2"]["epochs"],
        help="epochs of Fig. 2's DNN (default %(default)s)",
    )
    return p


def results_path(args: argparse.Namespace) -> Path:
    return Path(args.results) if args.results else RESULTS / f"{args.dataset}-hyperparams.md"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    study = start_study(args, require_data=not (args.dry_run or args.report_only))
    available = Path(study.data).exists() or "://" in study.data

    def write(study: Study, args: argparse.Namespace) -> None:
        write_report(study, results_path(args), args, available)

    rebuild = functools.partial(rebuild_report, write=write)
    if args.report_only:
        rebuild(study, args)
        return 0
    if not available:
        log.info("no %s data at %s: nothing can train; pass --data", study.dataset, study.data)
    study.runs.mkdir(parents=True, exist_ok=True)
    log.info("cost: %s", cost_text(planned_work(study, args), measured_pace(study.index())))
    seen, failures = set(), []
    for name in args.sweeps:
        if name in figures.HYPERPARAM_EXPERIMENTS:
            run_experiment(study, name, args, failures, rebuild)
        else:
            tag = f"fig {sweep(name)['figure']}"
            execute(study, tag, plan(name, args.seeds), args, seen, failures, rebuild)
    return finish(study, args, failures, rebuild)


def cli() -> None:
    """``python -m experiments.hyperparams``: progress on stdout, as lines."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    sys.exit(main())


if __name__ == "__main__":
    cli()
