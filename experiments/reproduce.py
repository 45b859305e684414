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
import sys
import time
from pathlib import Path

from experiments import REPO, RESULTS, figures
from experiments.report import write_report
from experiments.runs import ARCHIVE, Study, archive_runs, restore_runs, seeds
from experiments.tables import (
    NAMES,
    PROPOSED,
    Spec,
    table2_specs,
    table3_specs,
    table4_specs,
    table5_specs,
)

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
        cells = {f"{m}+{loss}": s for (m, loss), s in table2_specs().items()}
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


# -- main ---------------------------------------------------------------------------------------
def default_data(dataset: str) -> str | None:
    path = REPO.parent / "shared" / "data" / dataset
    return str(path) if path.exists() else None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--dataset", help="a bundled dataset")
    which.add_argument(
        "--schema", help="a dataset schema YAML (the study's dataset is its name; pass --data)"
    )
    p.add_argument("--data", help="raw or prepared data (default ../shared/data/<dataset>)")
    p.add_argument("--seeds", type=int, default=1, help="seeds 2023.. per cell (default 1)")
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
    p.add_argument("--runs", help="cache root (default runs/reproduce/<dataset>)")
    p.add_argument("--results", help="report path (default experiments/results/<dataset>.md)")
    p.add_argument("--report-only", action="store_true", help="rebuild the report, train nothing")
    p.add_argument(
        "--archive",
        help="archive of finished runs (config, metrics, history) restored at start and "
        "updated after every run (default experiments/results/runs/<dataset>, committed, when "
        "--runs is not given)",
    )
    p.add_argument("--no-archive", action="store_true", help="neither restore nor archive")
    p.add_argument("--dry-run", action="store_true", help="list the runs and which are cached")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override applied to every run (changes every cache key), e.g. train.max_epochs=5",
    )
    p.add_argument("--fig10-epochs", type=int, default=10)
    p.add_argument("--fig5-batch-size", type=int, default=1000)
    p.add_argument("--timing-epochs", type=int, default=4, help="timed epochs per model (Table VI)")
    return p


def make_study(args: argparse.Namespace) -> Study:
    if args.schema:  # every run of the study gets data.schema; the dataset is the schema's name
        from pipelines.data.schema import load_schema

        schema = Path(args.schema).resolve()
        args.dataset = load_schema(schema).name
        args.set = [*args.set, f"data.schema={schema}"]
    data = args.data or default_data(args.dataset)
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


def rebuild_report(study: Study, args: argparse.Namespace) -> None:
    archive = archive_dir(study, args)
    if archive is not None:
        archive_runs(study.runs, archive)
    try:
        write_report(study, results_path(args), args)
    except Exception:  # a report bug must not stop the compute
        log.exception("report failed")


def execute(
    study: Study, table: str, items, args: argparse.Namespace, seen: set, failures: list
) -> None:
    """Trains the runs of ``items`` that are not cached, one at a time (or lists them); a run
    that fails is recorded in ``failures`` and the others go on."""
    for label, s, seed in items:
        run_dir = study.run_dir(s, seed)
        state = "cached" if study.cached(s, seed) else "to run"
        if run_dir in seen:
            state += " (shared)"
        log.info("[table %s] %s seed %d: %s %s", table, label, seed, run_dir.name, state)
        if args.dry_run or run_dir in seen or study.cached(s, seed):
            seen.add(run_dir)
            continue
        seen.add(run_dir)
        start = time.time()
        try:
            study.train(s, seed)
        except RuntimeError as error:  # go on with the other runs; a re-run resumes this one
            log.error("  FAILED: %s", error)
            failures.append(run_dir.name)
            continue
        log.info("  finished in %.0fs", time.time() - start)
        rebuild_report(study, args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.table4_seeds = max(args.table4_seeds or args.seeds, args.seeds)
    study = make_study(args)
    archive = archive_dir(study, args)
    if archive is not None:  # runs finished in an earlier checkout count as cached
        restored = restore_runs(archive, study.runs)
        if restored:
            log.info("restored %d archived result(s) from %s", len(restored), archive)
    if args.report_only:
        rebuild_report(study, args)
        return 0
    study.runs.mkdir(parents=True, exist_ok=True)
    seen, failures = set(), []
    for table in args.tables:
        if table in figures.EXPERIMENTS:
            path = figures.cache_path(study, table, args)
            state = "cached" if path.exists() else "to run"
            log.info("[%s] %s: %s", table, path.name, state)
            if not args.dry_run and not path.exists():
                start = time.time()
                try:
                    figures.run(study, table, args)
                except Exception:  # the other experiments go on
                    log.exception("[%s] FAILED", table)
                    failures.append(table)
                    continue
                log.info("[%s] done in %.0fs", table, time.time() - start)
                rebuild_report(study, args)
            continue
        execute(
            study, table, plan(study, table, args.seeds, args.table4_seeds), args, seen, failures
        )
        if table == "4":
            extra = plan_table4_extra(study, args.seeds, args.table4_seeds, args.table4_margin)
            execute(study, table, extra, args, seen, failures)
    if not args.dry_run:
        rebuild_report(study, args)
    if failures:
        log.error(
            "%d run(s) failed: %s; run again to resume them", len(failures), ", ".join(failures)
        )
        return 1
    return 0


def cli() -> None:
    """``python -m experiments.reproduce``: progress on stdout, as lines."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    sys.exit(main())


if __name__ == "__main__":
    cli()
