"""Reproduce the paper's experiments (Tables II-VI, Figures 5 and 10) on a prepared dataset.

    python benchmarks/reproduce.py --dataset frappe [--seeds 1] [--table4-seeds 3]
    python benchmarks/reproduce.py --dataset frappe --tables 3 --dry-run     # what would run
    python benchmarks/reproduce.py --dataset frappe --report-only            # report from cache
    python benchmarks/reproduce.py --dataset movielenslatest --data /data/ml-tag

Every run is the dataset's reference config (``pipelines/configs/<dataset>.yaml``) plus the
table's overrides, trained by ``python -m pipelines.train`` in ``<runs>/<model>-<fingerprint>``
(the fingerprint of the resolved config, seed included, with the data path replaced by the
data's content identity, so the cache and its archive hold in any checkout that has the same
data, wherever it lies). A finished run is never trained again:
a configuration shared by two tables (DualMLP + log loss in Tables II and IV, TF4CTR SER + WSF in
Tables III and IV) is one run, and a crashed run resumes from its checkpoints. Figures 5 and 10
and the timing of Table VI are computed in this process and cached as JSON beside the runs.
After every finished run the report ``benchmarks/results/<dataset>.md`` (and its figures) is
rebuilt from the cache; cells without runs say "not run".

Table IV: every model gets ``--seeds`` seeds; TF4CTR and the best baseline (by mean test AUC in
the cache), with any baseline within ``--table4-margin`` of it, get ``--table4-seeds`` seeds for
the two-tailed Welch t-test.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as `python benchmarks/<script>.py` from anywhere

from benchmarks.repro_archive import ARCHIVE, DATA_ID_FILE, archive_runs, restore_runs  # noqa: E402

FIRST_SEED = 2023
ALL_TABLES = ("4", "2", "3", "5", "fig10", "fig5", "6")

# Table II: base models x losses; Table IV: the models the paper compares (AFN+, EDCN, CL4CTR
# and EulerNet are not implemented here); Table V: base model -> TF4CTR simple encoder.
T2_MODELS = ("dualmlp", "deepfm", "dcnv2")
T2_LOSSES = ("bce", "focal", "rce", "tf")
T3_SELECTORS = ("ser", "gate", "mmoe", "shared")
T3_FUSIONS = ("wsf", "vf", "cf", "moef", "sum")
T4_BASELINES = ("widedeep", "deepfm", "dcn", "xdeepfm", "autoint", "dcnv2", "dnn", "dualmlp")
T5_ENCODERS = {"deepfm": "fm", "widedeep": "linear", "xdeepfm": "cin"}


@dataclass(frozen=True)
class Spec:
    """One table cell: a model and its overrides of the reference config (seed excluded)."""

    model: str
    overrides: tuple[tuple[str, object], ...] = ()

    @property
    def loss(self) -> str:
        return dict(self.overrides).get("loss.name", "tf" if self.model == "tf4ctr" else "bce")

    def argv(self, dataset: str, data: str, seed: int, extra: tuple[str, ...] = ()) -> list[str]:
        """Arguments of ``python -m pipelines.train`` for this cell and seed; ``extra`` are
        ``key=value`` overrides applied to every run of a study."""
        args = ["--dataset", dataset, "--data", data, "--model", self.model, "--seed", str(seed)]
        args += ["--loss", self.loss]
        for key, value in self.overrides:
            if key != "loss.name":
                args += ["--set", f"{key}={value}"]
        for item in extra:
            args += ["--set", item]
        return args


def spec(model: str, **overrides) -> Spec:
    items = {"loss.name": "tf" if model == "tf4ctr" else "bce"}
    items.update({k.replace("__", "."): v for k, v in overrides.items()})
    return Spec(model, tuple(sorted(items.items())))


def table2_specs() -> dict[tuple[str, str], Spec]:
    return {(m, loss): spec(m, loss__name=loss) for m in T2_MODELS for loss in T2_LOSSES}


def table3_specs() -> dict[tuple[str, str], Spec]:
    return {
        (s, f): spec("tf4ctr", model__selector=s, model__fusion=f)
        for s in T3_SELECTORS
        for f in T3_FUSIONS
    }


def table4_specs() -> dict[str, Spec]:
    return {m: spec(m) for m in (*T4_BASELINES, "tf4ctr")}


def table5_specs() -> dict[tuple[str, bool], Spec]:
    out = {}
    for base, encoder in T5_ENCODERS.items():
        out[(base, False)] = spec(base)
        out[(base, True)] = spec("tf4ctr", model__simple_encoder=encoder)
    return out


# -- configs and the cache ----------------------------------------------------------------------
def data_identity(path: str) -> str:
    """Content identity of a dataset, independent of where it lies and of file times.

    A prepared directory is its shards' sha256 (from ``manifest.json``); raw data is every
    file's relative path, size and sha256 of its first MiB (the preprocessor's own change
    detection, less the path and mtime, which differ between checkouts). A path that does not
    exist, or a remote one, is its own identity.
    """
    from pipelines.data.fileio import file_fingerprint
    from pipelines.data.manifest import MANIFEST_NAME

    root = Path(path)
    if "://" in path or not root.exists():
        return f"path:{path}"
    digest = hashlib.sha256()
    if (root / MANIFEST_NAME).is_file():
        manifest = json.loads((root / MANIFEST_NAME).read_text())
        shards = {
            name: [(s["file"], s["rows"], s["sha256"]) for s in split["shards"]]
            for name, split in sorted(manifest["splits"].items())
        }
        digest.update(json.dumps([manifest["dataset"], shards], sort_keys=True).encode())
        return f"prepared:{digest.hexdigest()[:16]}"
    if root.is_file():
        files = {root.name: root}
    else:  # hidden files (editor and OS droppings) are not data
        files = {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}
        files = {k: v for k, v in files.items() if not any(x.startswith(".") for x in k.split("/"))}
    for name, file in sorted(files.items()):
        fp = file_fingerprint(str(file))  # the preprocessor's identity, less path and mtime
        digest.update(f"{name}\0{fp['bytes']}\0{fp['head_sha256']}\n".encode())
    return f"raw:{digest.hexdigest()[:16]}"


def cell_key(config_dict: dict) -> str:
    """Hash of a resolved (portable) config without its seed: the runs of one cell share it."""
    raw = json.loads(json.dumps(config_dict))
    raw["train"].pop("seed", None)
    return _digest(raw, 12)


def _digest(payload: dict, size: int = 10) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:size]


@dataclass
class Study:
    """A dataset, its data, and the cache of runs under ``runs``."""

    dataset: str
    data: str
    runs: Path
    extra: tuple[str, ...] = ()
    python: str = sys.executable
    _configs: dict = field(default_factory=dict)
    _data_id: str | None = None

    @property
    def data_id(self) -> str:
        if self._data_id is None:
            self._data_id = data_identity(self.data)
        return self._data_id

    def portable(self, config_dict: dict, data_id: str | None = None) -> dict:
        """A run's resolved config with ``data.path`` replaced by the data's identity:
        ``data_id`` if given (what the run recorded), else this study's when the path is
        this study's data; another path stays as it is (and matches none of its cells)."""
        raw = json.loads(json.dumps(config_dict))
        if data_id is None and raw["data"]["path"] == self.data:
            data_id = self.data_id
        if data_id is not None:
            raw["data"]["path"] = data_id
        return raw

    def config(self, s: Spec, seed: int):
        """The RunConfig the train CLI resolves for this cell and seed (its own parser)."""
        key = (s, seed)
        if key not in self._configs:
            from pipelines.training.cli import build_parser, config_from_args

            self._configs[key] = config_from_args(
                build_parser().parse_args(s.argv(self.dataset, self.data, seed, self.extra))
            )
        return self._configs[key]

    def key_config(self, s: Spec, seed: int = FIRST_SEED) -> dict:
        """The portable config of a cell and seed: what its cache names are hashes of."""
        return self.portable(self.config(s, seed).to_dict())

    def run_dir(self, s: Spec, seed: int) -> Path:
        name = self.config(s, seed).model.name
        return self.runs / f"{name}-{_digest(self.key_config(s, seed))}"

    def cached(self, s: Spec, seed: int) -> bool:
        return (self.run_dir(s, seed) / "metrics.json").exists()

    def cell(self, s: Spec) -> str:
        return cell_key(self.key_config(s))

    def index(self) -> dict[str, list[dict]]:
        """Finished runs in the cache by cell key: ``[metrics, ...]`` sorted by seed."""
        out: dict[str, list[dict]] = {}
        if not self.runs.is_dir():
            return out
        for run in sorted(self.runs.iterdir()):
            config_file, metrics_file = run / "config.yaml", run / "metrics.json"
            if not (config_file.exists() and metrics_file.exists()):
                continue
            config = yaml.safe_load(config_file.read_text())
            id_file = run / DATA_ID_FILE
            data_id = id_file.read_text().strip() if id_file.is_file() else None
            metrics = json.loads(metrics_file.read_text())
            metrics["run_dir"] = str(run)
            out.setdefault(cell_key(self.portable(config, data_id)), []).append(metrics)
        for runs in out.values():
            runs.sort(key=lambda m: m["seed"])
        return out

    def train(self, s: Spec, seed: int) -> Path:
        """Trains one run through the CLI; a finished run is not touched (the CLI would only
        report it, after seconds of imports)."""
        run_dir = self.run_dir(s, seed)
        if self.cached(s, seed):
            return run_dir
        cmd = [
            self.python,
            "-m",
            "pipelines.train",
            *s.argv(self.dataset, self.data, seed, self.extra),
        ]
        cmd += ["--run-dir", str(run_dir), "--quiet"]
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / DATA_ID_FILE).write_text(self.data_id + "\n")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        result = subprocess.run(cmd, cwd=REPO, env=env)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed with exit status {result.returncode}")
        return run_dir

    def json_path(self, name: str, payload: dict) -> Path:
        """Cache file of an in-process experiment, keyed by everything that defines it (its
        configs made portable by the caller)."""
        return self.runs / f"{name}-{_digest(payload)}.json"


# -- planning -----------------------------------------------------------------------------------
def seeds(n: int) -> list[int]:
    return list(range(FIRST_SEED, FIRST_SEED + n))


def best_baselines(study: Study, margin: float = 0.0, index: dict | None = None) -> list[str]:
    """The Table IV baseline with the best mean test AUC among cached runs, and those within
    ``margin`` (AUC) of it, best first."""
    index = study.index() if index is None else index
    means = {}
    for model, s in table4_specs().items():
        runs = index.get(study.cell(s), [])
        if model != "tf4ctr" and runs:
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
        cells = {f"tf4ctr {sel}+{fus}": s for (sel, fus), s in table3_specs().items()}
    elif table == "4":
        cells = dict(table4_specs())
    elif table == "5":
        cells = {f"{b}{' in TF4CTR' if w else ''}": s for (b, w), s in table5_specs().items()}
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
    extra = ["tf4ctr", *best_baselines(study, margin)]
    return [(m, table4_specs()[m], seed) for seed in seeds(n_table4)[n_seeds:] for m in extra]


# -- main ---------------------------------------------------------------------------------------
def default_data(dataset: str) -> str | None:
    path = REPO.parent / "shared" / "data" / dataset
    return str(path) if path.exists() else None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True)
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
    p.add_argument("--results", help="report path (default benchmarks/results/<dataset>.md)")
    p.add_argument("--report-only", action="store_true", help="rebuild the report, train nothing")
    p.add_argument(
        "--archive",
        help="archive of finished runs (config, metrics, history) restored at start and "
        "updated after every run (default benchmarks/results/runs/<dataset>, committed, when "
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
    data = args.data or default_data(args.dataset)
    if data is None:
        raise SystemExit(f"No data for {args.dataset}: pass --data (raw or prepared directory).")
    runs = Path(args.runs) if args.runs else REPO / "runs" / "reproduce" / args.dataset
    return Study(args.dataset, str(Path(data).resolve()), runs.resolve(), tuple(args.set))


def results_path(args: argparse.Namespace) -> Path:
    if args.results:
        return Path(args.results)
    return REPO / "benchmarks" / "results" / f"{args.dataset}.md"


def archive_dir(study: Study, args: argparse.Namespace) -> Path | None:
    """Where finished runs are archived for git: ``--archive``, else the committed
    ``benchmarks/results/runs/<dataset>`` when the cache is the default one; None with
    ``--no-archive`` or a custom ``--runs`` (a scratch study must not touch the archive)."""
    if args.no_archive:
        return None
    if args.archive:
        return Path(args.archive)
    return None if args.runs else ARCHIVE / study.dataset


def rebuild_report(study: Study, args: argparse.Namespace) -> None:
    from benchmarks.repro_report import write_report

    archive = archive_dir(study, args)
    if archive is not None:
        archive_runs(study.runs, archive)
    try:
        write_report(study, results_path(args), args)
    except Exception as error:  # a report bug must not stop the compute
        print(f"report failed: {error!r}", file=sys.stderr, flush=True)


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
        print(f"[table {table}] {label} seed {seed}: {run_dir.name} {state}", flush=True)
        if args.dry_run or run_dir in seen or study.cached(s, seed):
            seen.add(run_dir)
            continue
        seen.add(run_dir)
        start = time.time()
        try:
            study.train(s, seed)
        except RuntimeError as error:  # go on with the other runs; a re-run resumes this one
            print(f"  FAILED: {error}", flush=True)
            failures.append(run_dir.name)
            continue
        print(f"  finished in {time.time() - start:.0f}s", flush=True)
        rebuild_report(study, args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.table4_seeds = max(args.table4_seeds or args.seeds, args.seeds)
    study = make_study(args)
    archive = archive_dir(study, args)
    if archive is not None:  # runs finished in an earlier checkout count as cached
        restored = restore_runs(archive, study.runs)
        if restored:
            print(f"restored {len(restored)} archived result(s) from {archive}", flush=True)
    if args.report_only:
        rebuild_report(study, args)
        return 0
    study.runs.mkdir(parents=True, exist_ok=True)
    seen, failures = set(), []
    for table in args.tables:
        if table in ("fig10", "fig5", "6"):
            from benchmarks import repro_experiments

            path = repro_experiments.cache_path(study, table, args)
            state = "cached" if path.exists() else "to run"
            print(f"[{table}] {path.name}: {state}", flush=True)
            if not args.dry_run and not path.exists():
                start = time.time()
                try:
                    repro_experiments.run(study, table, args)
                except Exception as error:  # the other experiments go on
                    print(f"[{table}] FAILED: {error!r}", flush=True)
                    failures.append(table)
                    continue
                print(f"[{table}] done in {time.time() - start:.0f}s", flush=True)
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
        print(f"{len(failures)} run(s) failed: {', '.join(failures)}; run again to resume them")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
