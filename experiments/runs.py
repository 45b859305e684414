"""The run cache of a study and its committed archive.

Every run is the dataset's reference config (``pipelines/training/configs/<dataset>.yaml``)
plus a cell's overrides (:class:`experiments.tables.Spec`), trained by ``python -m
pipelines.train`` in ``<runs>/<model>-<fingerprint>``: the fingerprint of the resolved config,
seed included, with the data path replaced by the data's content identity, so the cache and its
archive hold in any checkout that has the same data, wherever it lies. A finished run is never
trained again: a configuration shared by two tables is one run, and a crashed run resumes from
its checkpoints. The in-process experiments (:mod:`experiments.figures`) cache one JSON each
beside the runs (:meth:`Study.json_path`).

The cache (``runs/reproduce/<dataset>``) is git-ignored: checkpoints and saved models are
hundreds of MB. What a report needs from a finished run is its record files
(:data:`pipelines.training.rundir.RECORD_FILES`) and, when present, ``data_id.txt`` (which
data the run used, by content); :func:`archive_runs` copies them to
``experiments/results/runs/<dataset>/<run name>/`` (committed), with the JSON results of the
in-process experiments. A study in a fresh checkout first restores them into its cache
(:func:`restore_runs`), where the train CLI and the report treat them as finished runs, and
trains only what is missing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from experiments import REPO, RESULTS
from experiments.tables import FIRST_SEED, Spec
from pipelines.data.fileio import atomic_output, write_atomic
from pipelines.training.rundir import METRICS_FILE, RECORD_FILES, RunDir

log = logging.getLogger(__name__)

ARCHIVE = RESULTS / "runs"
DATA_ID_FILE = "data_id.txt"  # the content identity of the data a run used

#: Archived results made stale by a change of the model code that left their configs, and so
#: their cache keys, as they were: name -> (sha256 of the run's metrics.json, or of the JSON
#: result, as archived; why). Such a result is neither restored nor counted as cached, and its
#: cell is trained again (the new run replaces it in the archive under the same name). Matching
#: by content keeps a rerun, whose metrics differ, from being taken for the stale one.
SUPERSEDED: dict[str, tuple[str, str]] = {
    "tf4ctr-e12d37e26f": (
        "86869e2e5c0196a971b7d98e48f968370952c65cbb3030166d1e129d74bbcdf6",
        "issue 17: TF4CTR with the WideDeep (linear) simple side built SER's unused d/2 table "
        "(522,003 parameters; the reference's structure has 479,514 on the official vocabulary)",
    ),
    "table6-53cb22f7d3.json": (
        "dd15ab96f118ed8ebda73053654a51a26c11085ca4e8bff7f2eac16115c6380c",
        "issue 17: timed the AutoInt+ of before (learned residual projections)",
    ),
}
OPTIONAL = (DATA_ID_FILE,)
# Restored last: its presence marks a run finished (pipelines.training.rundir).
_RESTORE_ORDER = (*(n for n in RECORD_FILES if n != METRICS_FILE), METRICS_FILE)


# -- keys ---------------------------------------------------------------------------------------
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


def superseded(path: Path) -> str | None:
    """Why the result at ``path`` (a run directory or a JSON result) is stale, or None: its
    name is in :data:`SUPERSEDED` and its content is the one recorded there."""
    entry = SUPERSEDED.get(path.name)
    if entry is None:
        return None
    record = path / METRICS_FILE if path.is_dir() else path
    if not record.is_file():
        return None
    return entry[1] if hashlib.sha256(record.read_bytes()).hexdigest() == entry[0] else None


def cell_key(config_dict: dict) -> str:
    """Hash of a resolved (portable) config without its seed: the runs of one cell share it."""
    raw = json.loads(json.dumps(config_dict))
    raw["train"].pop("seed", None)
    return _digest(raw, 12)


def _digest(payload: dict, size: int = 10) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:size]


def seeds(n: int) -> list[int]:
    """The first ``n`` seeds of a study: 2023, 2024, ..."""
    return list(range(FIRST_SEED, FIRST_SEED + n))


# -- the cache ----------------------------------------------------------------------------------
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
        run_dir = self.run_dir(s, seed)
        return RunDir(run_dir).finished() and superseded(run_dir) is None

    def cell(self, s: Spec) -> str:
        return cell_key(self.key_config(s))

    def index(self) -> dict[str, list[dict]]:
        """Finished runs in the cache by cell key: ``[metrics, ...]`` sorted by seed."""
        out: dict[str, list[dict]] = {}
        if not self.runs.is_dir():
            return out
        for path in sorted(self.runs.iterdir()):
            run = RunDir(path)
            if path.name.startswith(".") or not (run.config_path.exists() and run.finished()):
                continue
            if superseded(path) is not None:
                continue
            id_file = path / DATA_ID_FILE
            data_id = id_file.read_text().strip() if id_file.is_file() else None
            metrics = run.read_metrics()
            metrics["run_dir"] = str(path)
            out.setdefault(cell_key(self.portable(run.read_config(), data_id)), []).append(metrics)
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
        stale = superseded(run_dir)
        if stale is not None:  # a finished run the CLI would only report: start it over
            log.info("  %s is stale (%s): training it again", run_dir.name, stale)
            cmd.append("--overwrite")
        run_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(run_dir / DATA_ID_FILE, self.data_id + "\n")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        result = subprocess.run(cmd, cwd=REPO, env=env)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed with exit status {result.returncode}")
        return run_dir

    def json_path(self, name: str, payload: dict) -> Path:
        """Cache file of an in-process experiment, keyed by everything that defines it (its
        configs made portable by the caller)."""
        return self.runs / f"{name}-{_digest(payload)}.json"

    def read_json(self, path: Path) -> dict | None:
        """A cached in-process result, or None when it has not run (or is superseded)."""
        if not path.exists() or superseded(path) is not None:
            return None
        return json.loads(path.read_text())

    def write_json(self, path: Path, result: dict) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(result, indent=1))


# -- the archive --------------------------------------------------------------------------------
def _small_files(run: Path) -> tuple[str, ...]:
    return (*RECORD_FILES, *(name for name in OPTIONAL if (run / name).is_file()))


def _copy(src: Path, dst: Path) -> None:
    write_atomic(dst, src.read_bytes())


def archive_runs(runs: Path, archive: Path) -> list[str]:
    """Copies the small files of every finished run under ``runs`` (one holding all of the
    record files) to ``archive/<run name>/``; returns the names newly archived or updated."""
    changed = []
    if not runs.is_dir():
        return changed
    for result in sorted(runs.glob("*.json")):
        target = archive / result.name
        if not target.is_file() or target.read_bytes() != result.read_bytes():
            archive.mkdir(parents=True, exist_ok=True)
            _copy(result, target)
            changed.append(result.name)
    for run in sorted(p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not all((run / name).is_file() for name in RECORD_FILES):
            continue
        target = archive / run.name
        target.mkdir(parents=True, exist_ok=True)
        updated = False
        for name in _small_files(run):
            src, dst = run / name, target / name
            if not dst.is_file() or dst.read_bytes() != src.read_bytes():
                _copy(src, dst)
                updated = True
        if updated:
            changed.append(run.name)
    return changed


def restore_runs(archive: Path, runs: Path) -> list[str]:
    """Copies archived runs missing from ``runs`` back into it; returns their names. A run
    directory that already exists is left alone (it may hold a newer or unfinished run); a
    restored one appears whole (written under a temporary name, then renamed)."""
    restored = []
    if not archive.is_dir():
        return restored
    runs.mkdir(parents=True, exist_ok=True)
    for result in sorted(archive.glob("*.json")):
        if not (runs / result.name).exists() and superseded(result) is None:
            _copy(result, runs / result.name)
            restored.append(result.name)
    for saved in sorted(p for p in archive.iterdir() if p.is_dir()):
        if not all((saved / name).is_file() for name in RECORD_FILES):
            continue
        if superseded(saved) is not None:
            continue
        if (runs / saved.name).exists():
            continue
        optional = [n for n in _small_files(saved) if n not in RECORD_FILES]
        with atomic_output(runs / saved.name) as tmp:
            Path(tmp).mkdir()
            for name in (*optional, *_RESTORE_ORDER):
                _copy(saved / name, Path(tmp) / name)
        restored.append(saved.name)
    log.debug("restored %d run(s) from %s", len(restored), archive)
    return restored
