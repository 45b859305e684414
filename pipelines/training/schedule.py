"""The reference training schedule as one Keras callback, with crash-safe checkpoints.

FuxiCTR 2.0.1 ``checkpoint_and_earlystop`` (tf4ctr_reference.md section 3): after every epoch
the monitor (exact AUC, + gAUC where the dataset has groups) is computed on the validation
split. If it does not improve on the best by more than ``min_delta``, the learning rate is
multiplied by ``factor`` at once (floor ``min_lr``) and a counter grows; otherwise the weights
are kept as the best and the counter resets. Training stops when the counter reaches
``patience``; the best weights are restored at the end.

Keras' ``ReduceLROnPlateau`` + ``EarlyStopping`` cannot express this (one shared counter, an
LR drop on every bad epoch, ``min_delta`` 1e-4 by default and a streaming metric), hence a
callback of its own. After each epoch it also commits the model and optimizer state, the best
weights and its own state to ``checkpoint_dir`` as one unit (``epoch-NNNN/`` written beside and
renamed, then the ``LATEST`` pointer replaced; see :func:`latest_checkpoint`), so a run killed
anywhere resumes from a consistent epoch; an unreadable newest checkpoint falls back to the one
before, and temporaries a killed run left are removed on start.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from pathlib import Path

import keras
import numpy as np

from pipelines.data.fileio import atomic_directory, remove_stale_temporaries, write_atomic
from pipelines.training.evaluation import EvaluateFn, monitor_value

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
LAST_WEIGHTS = "last.weights.h5"
BEST_WEIGHTS = "best.weights.h5"
LATEST_FILE = "LATEST"  # names the newest complete checkpoint directory
EPOCH_DIR = "epoch-{:04d}"
KEEP_CHECKPOINTS = 2  # the newest and the one before it, to fall back on


def latest_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    """The checkpoint directory ``LATEST`` names (``None`` before the first epoch).

    Layout: ``checkpoints/epoch-NNNN/`` holds ``last.weights.h5`` (model + optimizer after
    epoch NNNN), ``best.weights.h5`` (the best epoch's weights so far) and ``state.json`` (the
    schedule); the directory appears whole (written beside and renamed), then ``LATEST`` is
    replaced atomically to name it, so an epoch's state is committed as one unit.
    """
    pointer = Path(checkpoint_dir) / LATEST_FILE
    if not pointer.is_file():
        return None
    return Path(checkpoint_dir) / pointer.read_text().strip()


def read_state(checkpoint_dir: str | Path) -> dict | None:
    """The schedule state of the latest checkpoint (``None`` before the first epoch)."""
    latest = latest_checkpoint(checkpoint_dir)
    if latest is None or not (latest / STATE_FILE).is_file():
        return None
    return json.loads((latest / STATE_FILE).read_text())


class ReferenceSchedule(keras.callbacks.Callback):
    """Exact-metric validation, LR x factor per bad epoch, early stop, best-weight restore.

    Args:
        evaluate: ``model -> {"auc", "logloss"[, "gauc"]}`` on the validation split.
        monitor: ``"auc"``, ``"gauc"`` or ``"auc+gauc"``.
        patience: bad epochs in a row before stopping. Default 2.
        factor: LR multiplier per bad epoch. Default 0.1.
        min_lr: LR floor. Default 1e-6.
        min_delta: improvement needed to count as better. Default 1e-6.
        checkpoint_dir: where to write resumable state each epoch (None: no files).
        write_checkpoints: False reads ``checkpoint_dir`` on :meth:`restore` but never writes
            it (the non-chief workers of multi-worker training). Default True.

    After training: ``best_epoch`` (1-based), ``best_score``, ``history`` (per-epoch dicts with
    the validation metrics, the LR used, and train/eval seconds).
    """

    def __init__(
        self,
        evaluate: EvaluateFn,
        monitor: str = "auc+gauc",
        patience: int = 2,
        factor: float = 0.1,
        min_lr: float = 1e-6,
        min_delta: float = 1e-6,
        checkpoint_dir: str | Path | None = None,
        write_checkpoints: bool = True,
    ) -> None:
        super().__init__()
        self.evaluate = evaluate
        self.monitor = monitor
        self.patience = patience
        self.factor = factor
        self.min_lr = min_lr
        self.min_delta = min_delta
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.write_checkpoints = bool(write_checkpoints) and self.checkpoint_dir is not None
        self.best_score = -math.inf
        self.best_epoch = 0
        self.wait = 0
        self.history: list[dict] = []
        self._best_weights = None
        self._epoch_start = 0.0
        self._last_checkpoint: Path | None = None  # the newest committed checkpoint directory

    # -- resume -------------------------------------------------------------------------------
    def _candidates(self) -> list[Path]:
        """Checkpoint directories to resume from, newest first: the one ``LATEST`` names,
        then the older epoch directories; a run from before this layout: the flat one."""
        if self.checkpoint_dir is None or not self.checkpoint_dir.is_dir():
            return []
        latest = latest_checkpoint(self.checkpoint_dir)
        epochs = sorted(
            (
                p
                for p in self.checkpoint_dir.glob("epoch-*")
                if p.is_dir() and ".tmp-" not in p.name
            ),
            reverse=True,
        )
        out = ([latest] if latest is not None and latest.is_dir() else []) + [
            p for p in epochs if p != latest
        ]
        if not out and (self.checkpoint_dir / STATE_FILE).is_file():
            out = [self.checkpoint_dir]
        return out

    def restore(self, model: keras.Model) -> int:
        """Loads the newest readable checkpoint into `model` (compiled) and returns the epochs
        done; an unreadable one (corrupt or cut short) is skipped with a warning naming it,
        falling back to the one before."""
        model.optimizer.build(model.trainable_variables)
        for directory in self._candidates():
            try:
                state = json.loads((directory / STATE_FILE).read_text())
                model.load_weights(directory / LAST_WEIGHTS)
                best = self._read_best_weights(model, directory) if state["best_epoch"] else None
            except Exception as error:  # noqa: BLE001 - h5py/JSON/OS errors of a bad file
                log.warning(
                    "checkpoint %s is unreadable (%s: %s); falling back to the one before it",
                    directory,
                    type(error).__name__,
                    error,
                )
                continue
            self.best_score = state["best_score"]
            self.best_epoch = state["best_epoch"]
            self.wait = state["wait"]
            self.history = state["history"]
            model.optimizer.learning_rate.assign(state["learning_rate"])
            self._best_weights = best
            self._last_checkpoint = directory  # (the flat directory of an older run too)
            return int(state["epochs_done"])
        return 0

    def _read_best_weights(self, model: keras.Model, directory: Path):
        """Reads best weights from file by loading them into `model` and copying them out."""
        current = [np.array(v) for v in model.weights]
        optimizer_state = [np.array(v) for v in model.optimizer.variables]
        model.load_weights(directory / BEST_WEIGHTS)
        best = [np.array(v) for v in model.weights]
        for var, value in zip(model.weights, current, strict=True):
            var.assign(value)
        for var, value in zip(model.optimizer.variables, optimizer_state, strict=True):
            var.assign(value)
        return best

    # -- callback hooks -----------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        if self.write_checkpoints:
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(self.checkpoint_dir)  # left by a killed run

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        train_seconds = time.perf_counter() - self._epoch_start
        start = time.perf_counter()
        metrics = self.evaluate(self.model)
        eval_seconds = time.perf_counter() - start
        score = monitor_value(metrics, self.monitor)
        lr = float(np.array(self.model.optimizer.learning_rate))
        record = {
            "epoch": epoch + 1,
            "learning_rate": lr,
            "train_seconds": train_seconds,
            "eval_seconds": eval_seconds,
            "monitor": score,
        }
        record.update({f"val_{k}": v for k, v in metrics.items()})
        record.update({k: float(v) for k, v in logs.items() if k not in record})
        if score > self.best_score + self.min_delta:
            self.best_score, self.best_epoch, self.wait = score, epoch + 1, 0
            self._best_weights = [np.array(v) for v in self.model.weights]
            verdict = "improved"
        else:
            self.wait += 1
            new_lr = max(lr * self.factor, self.min_lr)
            self.model.optimizer.learning_rate.assign(new_lr)
            verdict = f"no improvement ({self.wait}/{self.patience}); lr -> {new_lr:.0e}"
            if self.wait >= self.patience:
                self.model.stop_training = True
        self.history.append(record)
        logs.update({f"val_{k}": v for k, v in metrics.items()})
        log.info(
            "epoch %d: %s, monitor %s = %.6f (best %.6f @ %d), train %.1fs, eval %.1fs",
            epoch + 1,
            ", ".join(f"val_{k}={v:.6f}" for k, v in metrics.items()),
            self.monitor,
            score,
            self.best_score,
            self.best_epoch,
            train_seconds,
            eval_seconds,
        )
        log.info("epoch %d: %s", epoch + 1, verdict)
        if self.write_checkpoints:
            self._save_state(epoch + 1)

    def on_train_end(self, logs=None):
        if self._best_weights is not None:
            for var, value in zip(self.model.weights, self._best_weights, strict=True):
                var.assign(value)
            log.info("restored the weights of epoch %d", self.best_epoch)

    def _save_state(self, epochs_done: int) -> None:
        """Commits the epoch as one unit: a new ``epoch-NNNN/`` directory (written beside and
        renamed), then ``LATEST`` naming it; older directories beyond the newest two go."""
        state = {
            "epochs_done": epochs_done,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "learning_rate": float(np.array(self.model.optimizer.learning_rate)),
            "stopped": bool(self.model.stop_training),
            "history": self.history,
        }
        name = EPOCH_DIR.format(epochs_done)
        with atomic_directory(self.checkpoint_dir / name, replace=True) as tmp:
            self.model.save_weights(tmp / LAST_WEIGHTS)
            if self.best_epoch == epochs_done:
                shutil.copyfile(tmp / LAST_WEIGHTS, tmp / BEST_WEIGHTS)
            elif self.best_epoch and self._last_checkpoint is not None:
                previous = self._last_checkpoint / BEST_WEIGHTS
                try:
                    os.link(previous, tmp / BEST_WEIGHTS)  # unchanged: no second copy
                except OSError:
                    shutil.copyfile(previous, tmp / BEST_WEIGHTS)
            (tmp / STATE_FILE).write_text(json.dumps(state, indent=1))
        write_atomic(self.checkpoint_dir / LATEST_FILE, name + "\n")
        self._last_checkpoint = self.checkpoint_dir / name
        keep = {self._last_checkpoint}
        older = sorted(
            (p for p in self.checkpoint_dir.glob("epoch-*") if p.is_dir() and p not in keep),
            reverse=True,
        )
        for path in older[KEEP_CHECKPOINTS - 1 :]:
            shutil.rmtree(path, ignore_errors=True)

    @property
    def stopped(self) -> bool:
        return self.wait >= self.patience
