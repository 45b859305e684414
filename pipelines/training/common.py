"""What both training loops share: the model, its compilation and losses, the strategy, the
reference schedule and the end of a run.

:mod:`pipelines.training.keras_fit` (Keras ``fit``, one host) and
:mod:`pipelines.training.multi_worker` (a custom step under MultiWorkerMirroredStrategy) both
import this module and nothing of each other; :func:`pipelines.training.run.train` chooses one.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pipelines.data.manifest import Manifest, load_manifest
from pipelines.data.reader import make_dataset
from pipelines.training.config import ConfigError, RunConfig
from pipelines.training.evaluation import EvaluateFn, SplitEvaluator
from pipelines.training.rundir import RunDir
from pipelines.training.schedule import ReferenceSchedule
from tf4ctr_keras import build_model

log = logging.getLogger(__name__)


def build_from_config(config: RunConfig, manifest: Manifest) -> keras.Model:
    """The configured model over the manifest's fields; sequences are mean-pooled (FuxiCTR's
    default ``MaskedAveragePooling``, which the reference's KKBox logs used); dense numeric
    fields enter as a learned vector scaled by the normalized value."""
    sequences = {name: "mean" for name in manifest.sequence_fields}
    return build_model(
        config.model.name,
        manifest.vocab_sizes,
        sequence_fields=sequences,
        numeric_fields=manifest.numeric_fields,
        **config.model_kwargs(),
    )


def compile_model(model: keras.Model, config: RunConfig) -> None:
    t = config.train
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate=t.learning_rate, epsilon=t.adam_epsilon, global_clipnorm=t.clipnorm
        ),
        loss=config.output_losses(),
        jit_compile=bool(t.jit),
    )


def make_strategy(name: str) -> tf.distribute.Strategy:
    """``"mirrored"``: synchronous data parallelism over this host's devices (GPUs, or the
    logical CPUs a test configures); ``"default"``: one device."""
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        strategy = tf.distribute.MirroredStrategy(devices=[d.name for d in devices])
    else:
        strategy = tf.distribute.get_strategy()
    log.info("training on %d replica(s) (strategy %s)", strategy.num_replicas_in_sync, name)
    return strategy


def monitor_group_key(config: RunConfig, manifest: Manifest) -> str | None:
    """The dataset's gAUC group key; refuses a monitor with gAUC on a dataset without one."""
    group_key = manifest.group_key
    if "gauc" in config.train.monitor and not group_key:
        raise ConfigError(
            f"train.monitor={config.train.monitor} needs a group key, and dataset "
            f"{config.dataset} has none; use train.monitor=auc."
        )
    return group_key


def make_schedule(
    config: RunConfig, evaluate: EvaluateFn, run_dir: Path, write_checkpoints: bool = True
) -> ReferenceSchedule:
    """The reference schedule with the run's settings, checkpointing into ``run_dir``."""
    t = config.train
    return ReferenceSchedule(
        evaluate,
        monitor=t.monitor,
        patience=t.patience,
        factor=t.lr_factor,
        min_lr=t.min_lr,
        min_delta=t.min_delta,
        checkpoint_dir=RunDir(run_dir).checkpoint_dir,
        write_checkpoints=write_checkpoints,
    )


def finish_run(
    model: keras.Model,
    config: RunConfig,
    dataset_dir,
    run_dir: Path,
    schedule: ReferenceSchedule,
    valid: SplitEvaluator,
    fit_seconds: float,
    *,
    predict_fn=None,
    write: bool = True,
    extra: dict | None = None,
) -> dict:
    """Evaluates the trained model on valid and test and returns the run's metrics; with
    ``write`` also saves ``model.keras``, ``history.json`` and ``metrics.json`` (written beside
    and renamed) in ``run_dir``. ``extra`` adds keys to the metrics."""
    t = config.train
    # the best epoch's predictions are the restored weights' (none after a resume past it)
    valid_metrics, valid_calibration = valid.with_calibration(model, schedule.best_predictions)
    test = SplitEvaluator(
        make_dataset(dataset_dir, "test", t.eval_batch_size, with_group=True),
        valid.group_key,
        predict_fn,
    )
    test_metrics, test_calibration = test.with_calibration(model)
    history = schedule.history
    metrics = {
        "valid": valid_metrics,
        "test": test_metrics,
        "calibration": {"valid": valid_calibration, "test": test_calibration},
        "epochs": len(history),
        "best_epoch": schedule.best_epoch,
        "seconds": sum(h["train_seconds"] + h["eval_seconds"] for h in history),
        "train_seconds_per_epoch": float(np.mean([h["train_seconds"] for h in history]))
        if history
        else 0.0,
        "this_process_seconds": fit_seconds,
        "trainable_params": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        "model": config.model.name,
        "loss": config.loss_name,
        "seed": t.seed,
        "dataset_dir": str(Path(dataset_dir).resolve()),
        "data_fingerprint": load_manifest(dataset_dir).fingerprint,
        **(extra or {}),
    }
    if write:
        RunDir(run_dir).finish(model, history, metrics)
    return metrics
