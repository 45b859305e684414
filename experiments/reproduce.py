"""Reproduce the paper's experiments (Tables II-VI, Figures 5 and 10) on a prepared dataset.

    python -m experiments.reproduce --dataset frappe [--seeds 1] [--table4-seeds 3]
    python -m experiments.reproduce --dataset frappe --tables 3 --dry-run     # what would run
    python -m experiments.reproduce --dataset frappe --report-only            # report from cache
    python -m experiments.reproduce --dataset movielenslatest --data /data/ml-tag

Every run is a cell of a table (:mod:`experiments.tables`) trained once in the run cache
(:mod:`experiments.runs`, restored first from the committed archive
``experiments/results/runs/<dataset>``); a configuration shared by two tables (DualMLP + log
loss in Tables II and IV, TF4CTR SER + WSF in Tables III and IV) is one run. Figures 5 and 10
and the timing of Table VI are computed in this process (:mod:`experiments.figures`) and
cached as JSON beside the runs. After every finished run the report
``experiments/results/<dataset>.md`` (and its figures) is rebuilt from the cache
(:mod:`experiments.report`); cells without runs say "not run".

Table IV: every model gets ``--seeds`` seeds; TF4CTR and the best baseline (by mean test AUC in
the cache), with any baseline within ``--table4-margin`` of it, get ``--table4-seeds`` seeds for
the two-tailed Welch t-test.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from pathlib import Path

from experiments import REPO, RESULTS, figures
from experiments.report import write_report
from experiments.runs import ARCHIVE, Study, archive_runs, restore_runs, seeds
from experiments.tables import (
    LOSSES,
    MODELS,
    NAMES,
    PROPOSED,
    Spec,
    table2_extra_specs,
    table2_specs,
    table3_specs,
    table4_specs,
    table5_specs,
)
from pipelines.training.rundir import RunDir

log = logging.getLogger(__name__)

ALL_TABLES = ("4", "2", "3", "5", *figures.EXPERIMENTS)


# -- planning -----------------------------------------------------------------------------------
def best_baselines(study: Study, margin: float = 0.0, index: dict | None = None) -> list[str]:
    """The Table IV baseline with the best mean test AUC among cached runs, and those within
    ``margin`` (AUC) of it, best first."""
    index = study.index() if index is None else index
    means = {}
    for model, s in table4_specs().items():
        runs = index.get(study.cell(s), [])
        if model != PROPOSED and runs:
            means[model] = sum(r["test"]["auc"] for r in runs) / len(runs)
    if not means:
        return []
    top = max(means.values())
    return sorted((m for m, v in means.items() if v >= top - margin), key=lambda m: -means[m])


def plan(study: Study, table: str, n_seeds: int, n_table4: int) -> list[tuple[str, Spec, int]]:
    """``(label, spec, seed)`` of the training runs a table needs (cached ones included)."""
    out = []
    if table == "2":
        cells = {f"{m}+{loss}": s for (m, loss), s in table2_specs(study.dataset).items()}
        extra = table2_extra_specs(study.dataset)
        cells.update({f"{m}+{loss} ({setting})": s for (m, loss, setting), s in extra.items()})
    elif table == "3":
        cells = {f"{PROPOSED} {sel}+{fus}": s for (sel, fus), s in table3_specs().items()}
    elif table == "4":
        cells = dict(table4_specs())
    elif table == "5":
        within = f" in {NAMES[PROPOSED]}"
        cells = {f"{b}{within if w else ''}": s for (b, w), s in table5_specs().items()}
    else:
        return out
    for seed in seeds(n_seeds):
        out += [(label, s, seed) for label, s in cells.items()]
    return out


def plan_table4_extra(
    study: Study, n_seeds: int, n_table4: int, margin: float = 0.0
) -> list[tuple[str, Spec, int]]:
    """Seeds beyond ``n_seeds`` for TF4CTR and the best cached baseline(s) (planned after the
    first seeds of every model ran, so the best baseline is known); baselines within
    ``margin`` AUC of the best get them too, as a single seed cannot tell them apart."""
    if n_table4 <= n_seeds:
        return []
    extra = [PROPOSED, *best_baselines(study, margin)]
    return [(m, table4_specs()[m], seed) for seed in seeds(n_table4)[n_seeds:] for m in extra]


# -- cost ---------------------------------------------------------------------------------------
def measured_pace(index: dict[str, list[dict]]) -> dict[str, tuple[float, float, int]]:
    """``model -> (mean train seconds per epoch, mean epochs, runs)`` over the finished runs of
    a study's cache (the archive restored into it) that recorded both (``metrics.json``:
    ``train_seconds_per_epoch``, ``epochs`` trained to the early stop)."""
    by_model: dict[str, list[tuple[float, float]]] = {}
    for cell in index.values():
        for m in cell:
            if m.get("train_seconds_per_epoch") and m.get("epochs") and m.get("model"):
                pair = (float(m["train_seconds_per_epoch"]), float(m["epochs"]))
                by_model.setdefault(m["model"], []).append(pair)
    return {
        model: (
            sum(s for s, _ in xs) / len(xs),
            sum(e for _, e in xs) / len(xs),
            len(xs),
        )
        for model, xs in sorted(by_model.items())
    }


def estimate_seconds(todo: list[tuple[str, int | None]], pace: dict) -> float | None:
    """Seconds of training that ``todo`` needs: per ``(model, epochs)`` the model's measured
    seconds per epoch (the mean over every model's runs where the model has none) times
    ``epochs``, or its mean epochs to the early stop where ``epochs`` is None; None without
    any measured run."""
    if not pace:
        return None
    runs = sum(n for _, _, n in pace.values())
    overall = (
        sum(s * n for s, _, n in pace.values()) / runs,
        sum(e * n for _, e, n in pace.values()) / runs,
    )
    total = 0.0
    for model, epochs in todo:
        seconds, mean_epochs = pace.get(model, overall)[:2]
        total += seconds * (mean_epochs if epochs is None else epochs)
    return total


def _duration(seconds: float) -> str:
    """``3.2 h``, or ``12 min`` under an hour."""
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def cost_text(todo: list[tuple[str, int | None]], pace: dict) -> str:
    """What a runner states before it starts: the training runs (``epochs`` None) and
    in-process experiments (fixed epochs) still to do, and their estimated hours at the pace
    measured on this study's finished runs."""
    runs = [m for m, e in todo if e is None]
    fixed = [(m, e) for m, e in todo if e is not None]
    if not todo:
        return "nothing to train (every run is cached)"
    parts = []
    if runs:
        models = ", ".join(f"{m} {runs.count(m)}" for m in sorted(set(runs)))
        parts.append(f"{len(runs)} training run(s) ({models})")
    if fixed:
        parts.append(f"{sum(e for _, e in fixed)} epoch(s) of in-process experiments")
    seconds = estimate_seconds(todo, pace)
    if seconds is None:
        return (
            f"{' and '.join(parts)}; no finished run in the cache or its archive recorded "
            "its epoch time, so no estimate"
        )
    used = sorted({m for m, _ in todo})
    measured = "; ".join(
        f"{m} {pace[m][0]:.1f} s/epoch x {pace[m][1]:.1f} epochs ({pace[m][2]} "
        f"run{'s' if pace[m][2] != 1 else ''})"
        for m in used
        if m in pace
    )
    missing = [m for m in used if m not in pace]
    if missing:
        measured += ("; " if measured else "") + f"{', '.join(missing)}: all models' mean"
    return (
        f"{' and '.join(parts)}, about {_duration(seconds)} of training at the pace "
        f"of the finished runs ({measured}; training time per epoch only: evaluation, start-up "
        "and a slower or busier machine add to it)"
    )


def to_train(study: Study, s: Spec, seed: int, args: argparse.Namespace | None) -> bool:
    """Whether the run is trained by this invocation: not cached, or, under
    ``--rerun-uncalibrated``, cached with metrics that hold no calibration (archived before it
    was recorded, with the earlier data order)."""
    if not study.cached(s, seed):
        return True
    if not getattr(args, "rerun_uncalibrated", False):
        return False
    return "calibration" not in RunDir(study.run_dir(s, seed)).read_metrics()


def park(study: Study, run_dir: Path) -> Path:
    """Moves a finished run out of the cache, to ``<runs>/.older/<name>`` (hidden, so it is
    neither indexed nor archived), before the cell is trained again; the archive keeps the old
    run's records until the new run replaces them."""
    target = study.runs / ".older" / run_dir.name
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    run_dir.rename(target)
    return target


def pending(
    study: Study, items, seen: set, args: argparse.Namespace | None = None
) -> list[tuple[str, None]]:
    """``(model, None)`` for each run of ``items`` to train (:func:`to_train`) and not
    already counted in ``seen`` (run directories, updated)."""
    out = []
    for _, s, seed in items:
        run_dir = study.run_dir(s, seed)
        if run_dir not in seen and to_train(study, s, seed, args):
            out.append((s.model, None))
        seen.add(run_dir)
    return out


# -- main ---------------------------------------------------------------------------------------
def default_data(dataset: str) -> str | None:
    path = REPO.parent / "shared" / "data" / dataset
    return str(path) if path.exists() else None


def add_study_arguments(
    p: argparse.ArgumentParser, results: str, seeds: int = 1, unit: str = "cell"
) -> None:
    """The options of a study's runner: its dataset and data, seeds per ``unit`` (default
    ``seeds``), the run cache and its archive, what to do (``--dry-run``, ``--report-only``)
    and overrides of every run; ``results`` is the default report path as the help shows it."""
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--dataset", help="a bundled dataset")
    which.add_argument(
        "--schema", help="a dataset schema YAML (the study's dataset is its name; pass --data)"
    )
    p.add_argument("--data", help="raw or prepared data (default ../shared/data/<dataset>)")
    p.add_argument(
        "--seeds", type=int, default=seeds, help=f"seeds 2023.. per {unit} (default {seeds})"
    )
    p.add_argument("--runs", help="cache root (default runs/reproduce/<dataset>)")
    p.add_argument("--results", help=f"report path (default {results})")
    p.add_argument("--report-only", action="store_true", help="rebuild the report, train nothing")
    p.add_argument(
        "--archive",
        help="archive of finished runs (config, metrics, history) restored at start and "
        "updated after every run (default experiments/results/runs/<dataset>, committed, when "
        "--runs is not given)",
    )
    p.add_argument("--no-archive", action="store_true", help="neither restore nor archive")
    p.add_argument(
        "--dry-run", action="store_true", help="list the runs, which are cached, and the cost"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override applied to every run (changes every cache key), e.g. train.max_epochs=5",
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_study_arguments(p, "experiments/results/<dataset>.md")
    p.add_argument(
        "--table4-seeds",
        type=int,
        help="seeds for TF4CTR and the best baseline in Table IV (default --seeds)",
    )
    p.add_argument(
        "--table4-margin",
        type=float,
        default=0.0005,
        help="baselines within this AUC of the best also get --table4-seeds (default 0.0005)",
    )
    p.add_argument("--tables", nargs="+", default=list(ALL_TABLES), choices=ALL_TABLES)
    p.add_argument(
        "--rerun-uncalibrated",
        action="store_true",
        help="train again the cached runs of the planned cells whose metrics hold no "
        "calibration (archived before it was recorded); the old run is kept under "
        "<runs>/.older until the new one replaces it in the archive",
    )
    p.add_argument(
        "--models",
        nargs="+",
        metavar="MODEL",
        help="train only the cells of these registered models (default: every cell), e.g. to "
        "run cheap models first; the report still shows every cell",
    )
    p.add_argument(
        "--losses",
        nargs="+",
        metavar="LOSS",
        help="train only the cells with these losses (default: every cell), e.g. `--tables 2 "
        "--losses bce tf` for the calibration comparison of the TF loss against log loss",
    )
    p.add_argument("--fig10-epochs", type=int, default=10)
    p.add_argument("--fig5-batch-size", type=int, default=1000)
    p.add_argument("--timing-epochs", type=int, default=4, help="timed epochs per model (Table VI)")
    return p


def make_study(args: argparse.Namespace, require_data: bool = True) -> Study:
    """The study of ``args``; without data (no ``--data``, nothing at the default place) it
    stops, unless ``require_data`` is False: then the study names the default place (its cells
    are planned and reported, and none is cached)."""
    if args.schema:  # every run of the study gets data.schema; the dataset is the schema's name
        from pipelines.data.schema import load_schema

        schema = Path(args.schema).resolve()
        args.dataset = load_schema(schema).name
        args.set = [*args.set, f"data.schema={schema}"]
    data = args.data or default_data(args.dataset)
    if data is None and not require_data:
        data = str(REPO.parent / "shared" / "data" / args.dataset)
    if data is None:
        raise SystemExit(f"No data for {args.dataset}: pass --data (raw or prepared directory).")
    runs = Path(args.runs) if args.runs else REPO / "runs" / "reproduce" / args.dataset
    return Study(args.dataset, str(Path(data).resolve()), runs.resolve(), tuple(args.set))


def results_path(args: argparse.Namespace) -> Path:
    if args.results:
        return Path(args.results)
    return RESULTS / f"{args.dataset}.md"


def archive_dir(study: Study, args: argparse.Namespace) -> Path | None:
    """Where finished runs are archived for git: ``--archive``, else the committed
    ``experiments/results/runs/<dataset>`` when the cache is the default one; None with
    ``--no-archive`` or a custom ``--runs`` (a scratch study must not touch the archive)."""
    if args.no_archive:
        return None
    if args.archive:
        return Path(args.archive)
    return None if args.runs else ARCHIVE / study.dataset


def start_study(args: argparse.Namespace, require_data: bool = True) -> Study:
    """The study of ``args`` (:func:`make_study`), with the runs its archive holds restored
    into its cache: runs finished in an earlier checkout count as cached."""
    study = make_study(args, require_data)
    archive = archive_dir(study, args)
    if archive is not None:
        restored = restore_runs(archive, study.runs)
        if restored:
            log.info("restored %d archived result(s) from %s", len(restored), archive)
    return study


def rebuild_report(study: Study, args: argparse.Namespace, write=None) -> None:
    """Archives the finished runs and rewrites the report: ``write(study, args)``, by default
    this runner's (:func:`experiments.report.write_report` at :func:`results_path`)."""
    archive = archive_dir(study, args)
    if archive is not None:
        archive_runs(study.runs, archive)
    try:
        if write is None:
            write_report(study, results_path(args), args)
        else:
            write(study, args)
    except Exception:  # a report bug must not stop the compute
        log.exception("report failed")


def execute(
    study: Study,
    tag: str,
    items,
    args: argparse.Namespace,
    seen: set,
    failures: list,
    rebuild=rebuild_report,
) -> None:
    """Trains the runs of ``items`` that are not cached, one at a time (or lists them, under
    ``[tag]``), and calls ``rebuild(study, args)`` after each; a run that fails is recorded in
    ``failures`` and the others go on."""
    for label, s, seed in items:
        run_dir = study.run_dir(s, seed)
        cached = study.cached(s, seed)
        train = run_dir not in seen and to_train(study, s, seed, args)
        if cached:
            state = "cached, no calibration: to run again" if train else "cached"
        else:
            state = "to run"
        if run_dir in seen:
            state += " (shared)"
        log.info("[%s] %s seed %d: %s %s", tag, label, seed, run_dir.name, state)
        seen.add(run_dir)
        if args.dry_run or not train:
            continue
        if cached:  # --rerun-uncalibrated
            log.info("  the old run moves to %s", park(study, run_dir))
        start = time.time()
        try:
            study.train(s, seed)
        except RuntimeError as error:  # go on with the other runs; a re-run resumes this one
            log.error("  FAILED: %s", error)
            failures.append(run_dir.name)
            continue
        log.info("  finished in %.0fs", time.time() - start)
        rebuild(study, args)


def selected(items, args: argparse.Namespace) -> list:
    """The planned ``(label, spec, seed)`` items of the models ``--models`` names and the
    losses ``--losses`` names (all without them)."""
    models = getattr(args, "models", None)
    losses = getattr(args, "losses", None)
    return [
        item
        for item in items
        if (not models or item[1].model in models) and (not losses or item[1].loss in losses)
    ]


def planned_work(study: Study, args: argparse.Namespace) -> list[tuple[str, int | None]]:
    """What the tables of ``args`` still need, for :func:`cost_text`: a ``(model, None)`` per
    training run not cached and ``(model, epochs)`` per in-process experiment not cached.
    Table IV's extra seeds go to the best baseline as the cache has it now."""
    todo, seen = [], set()
    for table in args.tables:
        if table in figures.EXPERIMENTS:
            if study.read_json(figures.cache_path(study, table, args)) is None:
                todo += figures.planned_epochs(table, args)
            continue
        todo += pending(
            study, selected(plan(study, table, args.seeds, args.table4_seeds), args), seen, args
        )
        if table == "4":
            extra = plan_table4_extra(study, args.seeds, args.table4_seeds, args.table4_margin)
            todo += pending(study, selected(extra, args), seen, args)
    return todo


def run_experiment(
    study: Study, key: str, args: argparse.Namespace, failures: list, rebuild=rebuild_report
) -> None:
    """Runs the in-process experiment ``key`` unless cached (or only lists it with
    ``--dry-run``), then ``rebuild(study, args)``; a failure is recorded in ``failures``."""
    path = figures.cache_path(study, key, args)
    done = study.read_json(path) is not None  # a superseded result is not done
    log.info("[%s] %s: %s", key, path.name, "cached" if done else "to run")
    if args.dry_run or done:
        return
    start = time.time()
    try:
        figures.run(study, key, args)
    except Exception:  # the other experiments go on
        log.exception("[%s] FAILED", key)
        failures.append(key)
        return
    log.info("[%s] done in %.0fs", key, time.time() - start)
    rebuild(study, args)


def finish(study: Study, args: argparse.Namespace, failures: list, rebuild=rebuild_report) -> int:
    """The last report (unless ``--dry-run``) and the exit status: 1 if a run failed."""
    if not args.dry_run:
        rebuild(study, args)
    if failures:
        log.error(
            "%d run(s) failed: %s; run again to resume them", len(failures), ", ".join(failures)
        )
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    unknown = [m for m in args.models or () if m not in MODELS]
    if unknown:
        parser.error(f"--models: unknown {', '.join(unknown)}; valid: {', '.join(MODELS.names())}")
    unknown = [name for name in args.losses or () if name not in LOSSES]
    if unknown:
        parser.error(f"--losses: unknown {', '.join(unknown)}; valid: {', '.join(LOSSES.names())}")
    args.table4_seeds = max(args.table4_seeds or args.seeds, args.seeds)
    study = start_study(args)
    if args.report_only:
        rebuild_report(study, args)
        return 0
    study.runs.mkdir(parents=True, exist_ok=True)
    log.info("cost: %s", cost_text(planned_work(study, args), measured_pace(study.index())))
    seen, failures = set(), []
    for table in args.tables:
        if table in figures.EXPERIMENTS:
            run_experiment(study, table, args, failures)
            continue
        items = selected(plan(study, table, args.seeds, args.table4_seeds), args)
        execute(study, f"table {table}", items, args, seen, failures)
        if table == "4":
            extra = plan_table4_extra(study, args.seeds, args.table4_seeds, args.table4_margin)
            execute(study, f"table {table}", selected(extra, args), args, seen, failures)
    return finish(study, args, failures)


def cli() -> None:
    """``python -m experiments.reproduce``: progress on stdout, as lines."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    sys.exit(main())


if __name__ == "__main__":
    cli()
