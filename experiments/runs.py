"""A committed archive of finished study runs, so a study survives a fresh checkout.

The run cache (``runs/reproduce/<dataset>``) is git-ignored: checkpoints and saved models are
hundreds of MB. What a report needs from a finished run is three small files (``config.yaml``,
``metrics.json``, ``history.json``) and, when present, ``data_id.txt`` (which data the run
used, by content, so the run counts in a checkout whose data lies elsewhere); they are copied
to ``benchmarks/results/runs/<dataset>/<run name>/`` and committed, with the JSON results of
the in-process experiments (figures, timing) that lie directly in the cache. A study in a fresh
checkout first restores them into its cache, where the train CLI and the report treat them as
finished runs, and trains only what is missing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

FILES = ("config.yaml", "metrics.json", "history.json")
DATA_ID_FILE = "data_id.txt"  # the content identity of the data a run used (reproduce.py)
OPTIONAL = (DATA_ID_FILE,)
ARCHIVE = Path(__file__).resolve().parent / "results" / "runs"


def _small_files(run: Path) -> tuple[str, ...]:
    return (*FILES, *(name for name in OPTIONAL if (run / name).is_file()))


def _copy_atomic(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def archive_runs(runs: Path, archive: Path) -> list[str]:
    """Copies the small files of every finished run under ``runs`` (one holding all of
    ``FILES``) to ``archive/<run name>/``; returns the names newly archived or updated."""
    changed = []
    if not runs.is_dir():
        return changed
    for result in sorted(runs.glob("*.json")):
        target = archive / result.name
        if not target.is_file() or target.read_bytes() != result.read_bytes():
            archive.mkdir(parents=True, exist_ok=True)
            _copy_atomic(result, target)
            changed.append(result.name)
    for run in sorted(p for p in runs.iterdir() if p.is_dir()):
        if not all((run / name).is_file() for name in FILES):
            continue
        target = archive / run.name
        target.mkdir(parents=True, exist_ok=True)
        updated = False
        for name in _small_files(run):
            src, dst = run / name, target / name
            if not dst.is_file() or dst.read_bytes() != src.read_bytes():
                _copy_atomic(src, dst)
                updated = True
        if updated:
            changed.append(run.name)
    return changed


def restore_runs(archive: Path, runs: Path) -> list[str]:
    """Copies archived runs missing from ``runs`` back into it; returns their names. A run
    directory that already exists is left alone (it may hold a newer or unfinished run)."""
    restored = []
    if not archive.is_dir():
        return restored
    runs.mkdir(parents=True, exist_ok=True)
    for result in sorted(archive.glob("*.json")):
        if not (runs / result.name).exists():
            _copy_atomic(result, runs / result.name)
            restored.append(result.name)
    for saved in sorted(p for p in archive.iterdir() if p.is_dir()):
        if not all((saved / name).is_file() for name in FILES) or (runs / saved.name).exists():
            continue
        tmp = runs / f".{saved.name}.tmp-{os.getpid()}"
        tmp.mkdir(parents=True)
        for name in _small_files(saved):
            shutil.copyfile(saved / name, tmp / name)
        os.replace(tmp, runs / saved.name)
        restored.append(saved.name)
    return restored
