"""The run directory: the one place that knows its file names and writes it.

A run directory (``runs/<dataset>/<model>-<config hash>`` unless ``--run-dir``) holds::

    config.yaml       the resolved configuration (written first; identifies the run)
    checkpoints/      resumable state after every epoch (see :mod:`pipelines.training.schedule`)
    tensorboard/      TensorBoard logs
    history.csv       per-epoch logs (Keras CSVLogger)
    history.json      per-epoch schedule history (metrics, LR, seconds)
    model.keras       the trained model (best epoch)
    data/             the run's own copy of what serving needs from its data: manifest.json
                      (with the data's fingerprint) and vocab/; written before the first epoch
    metrics.json      valid/test metrics; written last, so its presence means "finished"

A run is bound to the data it trained on: training again (or resuming) on data with another
fingerprint is refused, naming both, and export reads the run's own copy of the manifest and
vocabularies, never the (mutable) prepared directory.

Training, the schedule, tuning, export and the experiments read and write these files only
through this module; every write goes through :func:`pipelines.data.fileio.atomic_output`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from pipelines.data.fileio import (
    atomic_directory,
    atomic_output,
    remove_stale_temporaries,
    write_atomic,
)
from pipelines.data.manifest import MANIFEST_NAME, Manifest, load_manifest
from pipelines.training.config import ConfigError, RunConfig

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
HISTORY_CSV = "history.csv"
CHECKPOINT_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"
DATA_DIR = "data"
LOCK_FILE = ".lock"  # held (flock) by the process training the run; holds its PID
# What a finished run keeps beside its model: enough to re-read and report it.
RECORD_FILES = (CONFIG_FILE, METRICS_FILE, HISTORY_FILE)


def default_run_dir(config: RunConfig) -> Path:
    """``runs/<dataset>/<model>-<config fingerprint>``."""
    return Path("runs") / config.dataset / f"{config.model.name}-{config.fingerprint()}"


class RunDir:
    """A run directory at ``path``: file paths, reads and atomic writes.

    Example::

        run = RunDir("runs/frappe/tf4ctr-0123456789")
        if run.finished():
            print(run.read_metrics()["test"])
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # -- paths --------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def history_path(self) -> Path:
        return self.path / HISTORY_FILE

    @property
    def history_csv(self) -> Path:
        return self.path / HISTORY_CSV

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / CHECKPOINT_DIR

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / TENSORBOARD_DIR

    @property
    def data_dir(self) -> Path:
        return self.path / DATA_DIR

    def bound_manifest(self) -> Manifest | None:
        """The run's own copy of its data's manifest (``None`` for runs written before runs
        kept one)."""
        if not (self.data_dir / MANIFEST_NAME).is_file():
            return None
        return load_manifest(self.data_dir)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Holds an exclusive ``flock`` on ``.lock`` while a training runs, so a second
        training of the same directory is refused (ConfigError naming the first's PID) instead
        of both training fully. The kernel releases the lock when the holder dies, so a killed
        run never blocks its restart."""
        import fcntl

        self.path.mkdir(parents=True, exist_ok=True)
        handle = open(self.path / LOCK_FILE, "a+")  # noqa: SIM115 - held across the yield
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise ConfigError(
                f"{self.path} is being trained by process {holder}; wait for it to finish, or "
                "pass another --run-dir."
            ) from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    def bind_data(self, dataset_dir, write: bool = True) -> None:
        """Binds the run to the prepared data at ``dataset_dir``: the first time, copies its
        manifest and vocabularies into ``data/``; afterwards refuses data with another
        fingerprint (ConfigError naming both), so a changed input is never reported as the old
        finished run nor resumed on top of it. A finished run from before runs kept the copy is
        left as it is (export then reads the prepared directory, checking what it can)."""
        manifest = load_manifest(dataset_dir)
        bound = self.bound_manifest()
        if bound is not None:
            if bound.fingerprint != manifest.fingerprint:
                raise ConfigError(
                    f"{self.path} was trained on data with fingerprint {bound.fingerprint[:16]} "
                    f"({bound.raw.get('dataset')}), but {manifest.directory} now has fingerprint "
                    f"{manifest.fingerprint[:16]}: the data changed. Pass --overwrite to train "
                    "again on the new data, or another --run-dir."
                )
            return
        if not write or self.finished():
            return
        with atomic_directory(self.data_dir, replace=True) as tmp:
            shutil.copy(manifest.directory / MANIFEST_NAME, tmp / MANIFEST_NAME)
            for field in manifest.fields:
                if field.vocab_file is not None:
                    target = tmp / field.vocab_file
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(manifest.vocab_path(field.name), target)

    # -- reads --------------------------------------------------------------------------------
    def finished(self) -> bool:
        return self.metrics_path.is_file()

    def read_metrics(self) -> dict[str, Any]:
        return json.loads(self.metrics_path.read_text())

    def read_history(self) -> list[dict[str, Any]]:
        return json.loads(self.history_path.read_text())

    def read_config(self) -> dict[str, Any]:
        return yaml.safe_load(self.config_path.read_text())

    # -- writes -------------------------------------------------------------------------------
    def write_config(self, config: RunConfig) -> None:
        write_atomic(self.config_path, config_text(config))

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        write_atomic(self.metrics_path, json.dumps(metrics, indent=1))

    def write_history(self, history: list[dict[str, Any]]) -> None:
        write_atomic(self.history_path, json.dumps(history, indent=1))

    def save_model(self, model) -> None:
        with atomic_output(self.model_path) as tmp:
            model.save(tmp)

    def finish(self, model, history: list[dict[str, Any]], metrics: dict[str, Any]) -> None:
        """Writes the end of a run: model, history, then metrics (whose presence marks the run
        finished, so it comes last)."""
        self.save_model(model)
        self.write_history(history)
        self.write_metrics(metrics)

    def prepare(self, config: RunConfig, overwrite: bool = False, write: bool = True) -> bool:
        """Creates or checks the directory for ``config``; returns True when the run already
        finished. A directory holding another configuration is refused (ConfigError). With
        ``write=False`` (a non-chief worker) it only reads: the chief creates the directory."""
        if not write:
            return self.finished()
        if overwrite and self.path.exists():
            shutil.rmtree(self.path)
        remove_stale_temporaries(self.path)  # what a killed run left (its process is gone)
        resolved = config_text(config)
        if self.config_path.exists():
            # compared as data, so a run written with another key order is still the same run
            if yaml.safe_load(self.config_path.read_text()) != yaml.safe_load(resolved):
                raise ConfigError(
                    f"{self.path} holds a run with another configuration ({self.config_path}). "
                    "Pass another --run-dir, or --overwrite to discard it."
                )
            return self.finished()
        self.path.mkdir(parents=True, exist_ok=True)
        write_atomic(self.config_path, resolved)
        return False


def config_text(config: RunConfig) -> str:
    """The resolved configuration as ``config.yaml`` holds it."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
