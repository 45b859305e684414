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

import io
import json
import logging
import math
import os
import re
import shutil
import time
from pathlib import Path

import keras
import numpy as np

from pipelines.data.fileio import atomic_directory, remove_stale_temporaries, write_atomic
from pipelines.training.evaluation import EvaluateFn, monitor_value

log = logging.getLogger(__name__)


class CheckpointError(OSError):
    """A checkpoint could not be written (a full disk, a read-only directory); the message
    names the path, and nothing of the failed checkpoint is left behind."""


def weights_bytes(model: keras.Model) -> bytes:
    """``model.save_weights``' ``.weights.h5`` content (model and optimizer), built in memory.

    Written by hand around Keras' own H5 store because h5py writing straight to a full disk
    leaves its file open and the interpreter crashes at exit (exit 139, seen here); serialized
    in memory, the only disk write is ours, which fails with a plain ``OSError``. The bytes
    load with ``model.load_weights`` (tested).
    """
    from keras.src.saving import saving_lib  # no public API saves weights to a buffer

    buffer = io.BytesIO()
    store = saving_lib.H5IOStore(buffer, mode="w")
    saving_lib._save_state(  # noqa: SLF001 - what model.save_weights does, minus the file
        model, weights_store=store, assets_store=None, inner_path="", visited_saveables=set()
    )
    store.close()
    return buffer.getvalue()


def random_variables(model: keras.Model) -> list:
    """The model's random-number state: the ``SeedGenerator`` variables (dropout masks, the
    Gumbel noise), which ``model.weights`` and so ``save_weights`` leave out."""
    weights = {id(v) for v in model.weights}
    return [v for v in model.non_trainable_variables if id(v) not in weights]


STATE_FILE = "state.json"
LAST_WEIGHTS = "last.weights.h5"
BEST_WEIGHTS = "best.weights.h5"
LATEST_FILE = "LATEST"  # names the newest complete checkpoint directory
EPOCH_DIR = "epoch-{:04d}"
_EPOCH_NAME = re.compile(r"^epoch-\d{4,}$")
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
        # valid predictions of the best epoch when it ran in this process, else None
        self.best_predictions = None
        self._epoch_start = 0.0
        self._last_checkpoint: Path | None = None  # the newest committed checkpoint directory

    # -- resume -------------------------------------------------------------------------------
    def _candidates(self) -> list[Path]:
        """Checkpoint directories to resume from, newest first: the one ``LATEST`` names,
        then the older epoch directories; a run from before this layout: the flat one."""
        if self.checkpoint_dir is None or not self.checkpoint_dir.is_dir():
            return []
        latest = latest_checkpoint(self.checkpoint_dir)
        epochs = _epoch_directories(self.checkpoint_dir)
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
            self._restore_random_state(model, state, directory)
            self._best_weights = best
            self._last_checkpoint = directory  # (the flat directory of an older run too)
            return int(state["epochs_done"])
        return 0

    @staticmethod
    def _restore_random_state(model: keras.Model, state: dict, directory: Path) -> None:
        saved = state.get("random_state")
        variables = random_variables(model)
        if saved is None:  # a checkpoint from before random states were kept
            log.warning(
                "checkpoint %s holds no random-number state; dropout continues from a fresh "
                "state, so this run will not reproduce an uninterrupted one exactly",
                directory,
            )
            return
        if len(saved) != len(variables):
            raise ValueError(
                f"{directory / STATE_FILE}: {len(saved)} random-number states for the "
                f"model's {len(variables)}; it was written by another model."
            )
        for var, (_, value) in zip(variables, saved, strict=True):
            var.assign(np.asarray(value, dtype=var.dtype))

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
            # the evaluator's predictions with these weights (a SplitEvaluator keeps them):
            # the final metrics reuse them after the restore
            self.best_predictions = getattr(self.evaluate, "last_predictions", None)
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
        state["random_state"] = [
            [v.path, np.asarray(v).tolist()] for v in random_variables(self.model)
        ]
        name = EPOCH_DIR.format(epochs_done)
        payload = weights_bytes(self.model)  # in memory first: see weights_bytes
        try:
            with atomic_directory(self.checkpoint_dir / name, replace=True) as tmp:
                (tmp / LAST_WEIGHTS).write_bytes(payload)
                if self.best_epoch == epochs_done:
                    _link_or_copy(tmp / LAST_WEIGHTS, tmp / BEST_WEIGHTS)
                elif self.best_epoch and self._last_checkpoint is not None:
                    _link_or_copy(self._last_checkpoint / BEST_WEIGHTS, tmp / BEST_WEIGHTS)
                (tmp / STATE_FILE).write_text(json.dumps(state, indent=1))
            write_atomic(self.checkpoint_dir / LATEST_FILE, name + "\n")
        except OSError as error:  # nothing of this epoch is left behind (atomic_directory)
            kept = (
                f"the last checkpoint, {self._last_checkpoint.name}, is intact"
                if self._last_checkpoint
                else "there is no earlier checkpoint"
            )
            raise CheckpointError(
                f"cannot write the checkpoint of epoch {epochs_done} to "
                f"{self.checkpoint_dir / name} ({error.strerror or error}; "
                f"{len(payload):,} bytes of weights, "
                f"{_free_bytes(self.checkpoint_dir):,} bytes free); nothing of it was kept and "
                f"{kept}. Free space and run the same command again: it resumes from there "
                "to the same result."
            ) from error
        self._last_checkpoint = self.checkpoint_dir / name
        keep = {self._last_checkpoint}
        older = [p for p in _epoch_directories(self.checkpoint_dir) if p not in keep]
        for path in older[KEEP_CHECKPOINTS - 1 :]:
            shutil.rmtree(path, ignore_errors=True)

    @property
    def stopped(self) -> bool:
        return self.wait >= self.patience


def _epoch_directories(checkpoint_dir: Path) -> list[Path]:
    """The complete ``epoch-NNNN`` checkpoint directories, newest first (not the
    temporaries or retired copies of :func:`atomic_directory`)."""
    return sorted(
        (p for p in checkpoint_dir.glob("epoch-*") if p.is_dir() and _EPOCH_NAME.match(p.name)),
        reverse=True,
    )


def _link_or_copy(src: Path, dst: Path) -> None:
    """The same weights under a second name without a second copy where the file system
    allows (a checkpoint's unchanged best weights)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _free_bytes(path: Path) -> int:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return -1
