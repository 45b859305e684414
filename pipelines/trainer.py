"""The training job behind ``python -m pipelines.train``: build, compile, fit, evaluate."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pipelines.evaluation import SplitEvaluator
from pipelines.manifest import Manifest, load_manifest
from pipelines.reader import make_dataset
from pipelines.run_config import ConfigError, RunConfig
from pipelines.schedule import ReferenceSchedule
from tf4ctr_keras import FocalLoss, RCELoss, TwinFocusLoss, build_model
from tf4ctr_keras.models.tf4ctr import CTR_OUTPUT, TWIN_OUTPUT

log = logging.getLogger(__name__)


def build_from_config(config: RunConfig, manifest: Manifest) -> keras.Model:
    """The configured model over the manifest's fields; sequences are mean-pooled (FuxiCTR's
    default ``MaskedAveragePooling``, which the reference's KKBox logs used)."""
    sequences = {name: "mean" for name in manifest.sequence_fields}
    return build_model(
        config.model.name, manifest.vocab_sizes, sequence_fields=sequences, **config.model_kwargs()
    )


def losses_for(config: RunConfig) -> dict:
    """Loss per named output: the fused ``ctr`` always, ``twin_logits`` for the TF loss."""
    name = config.loss_name
    if name == "focal":
        ctr = FocalLoss(gamma=config.loss.focal_gamma)
    elif name == "rce":
        ctr = RCELoss(gamma=config.loss.rce_gamma)
    else:
        ctr = keras.losses.BinaryCrossentropy()
    losses = {CTR_OUTPUT: ctr}
    if name == "tf":
        losses[TWIN_OUTPUT] = TwinFocusLoss(config.loss.alpha, config.loss.c, config.loss.gamma)
    return losses


def compile_model(model: keras.Model, config: RunConfig) -> None:
    t = config.train
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate=t.learning_rate, epsilon=t.adam_epsilon, global_clipnorm=t.clipnorm
        ),
        loss=losses_for(config),
        jit_compile=bool(t.jit),
    )


def with_targets(dataset: tf.data.Dataset, outputs) -> tf.data.Dataset:
    """``(features, label)`` -> ``(features, {output: label})`` for the compiled outputs."""
    names = tuple(outputs)
    return dataset.map(lambda x, y: (x, {n: y for n in names}), num_parallel_calls=tf.data.AUTOTUNE)


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
    valid_metrics = valid(model)
    test = SplitEvaluator(
        make_dataset(dataset_dir, "test", t.eval_batch_size), valid.group_key, predict_fn
    )
    test_metrics = test(model)
    history = schedule.history
    metrics = {
        "valid": valid_metrics,
        "test": test_metrics,
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
        **(extra or {}),
    }
    if write:
        model.save(run_dir / "model.keras")
        (run_dir / "history.json").write_text(json.dumps(history, indent=1))
        tmp = run_dir / f".metrics.json.tmp-{os.getpid()}"
        tmp.write_text(json.dumps(metrics, indent=1))
        os.replace(tmp, run_dir / "metrics.json")
    return metrics


def train(config: RunConfig, dataset_dir: str | Path, run_dir: str | Path, verbose: int = 1):
    """Trains with the reference schedule and writes the run directory; returns the metrics."""
    if config.train.strategy == "multi_worker":
        from pipelines.distributed import train_multi_worker

        return train_multi_worker(config, dataset_dir, run_dir, verbose=verbose)
    run_dir = Path(run_dir)
    manifest = load_manifest(dataset_dir)
    t = config.train
    keras.utils.set_random_seed(t.seed)
    keras.mixed_precision.set_dtype_policy(t.precision)
    strategy = make_strategy(t.strategy)
    try:
        with strategy.scope():  # variables (model and optimizer) are mirrored per replica
            model = build_from_config(config, manifest)
            compile_model(model, config)
        group_key = monitor_group_key(config, manifest)
        steps = -(-manifest.splits["train"].rows // t.batch_size)  # the last batch is kept
        train_ds = with_targets(
            make_dataset(dataset_dir, "train", t.batch_size, shuffle=True, seed=t.seed),
            losses_for(config),
        ).apply(tf.data.experimental.assert_cardinality(steps))
        valid = SplitEvaluator(make_dataset(dataset_dir, "valid", t.eval_batch_size), group_key)
        schedule = ReferenceSchedule(
            valid,
            monitor=t.monitor,
            patience=t.patience,
            factor=t.lr_factor,
            min_lr=t.min_lr,
            min_delta=t.min_delta,
            checkpoint_dir=run_dir / "checkpoints",
        )
        with strategy.scope():
            model.build()
            epochs_done = schedule.restore(model)
        if epochs_done:
            log.info(
                "resuming %s after epoch %d (best %d)", run_dir, epochs_done, schedule.best_epoch
            )
        started = time.perf_counter()
        if epochs_done < t.max_epochs and not schedule.stopped:
            model.fit(
                train_ds,
                epochs=t.max_epochs,
                initial_epoch=epochs_done,
                shuffle=False,  # the reader shuffles
                verbose=verbose,
                callbacks=[
                    schedule,
                    keras.callbacks.TerminateOnNaN(),
                    keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=epochs_done > 0),
                    keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), write_graph=False),
                ],
            )
        else:  # killed after its last epoch, before metrics.json: restore the best weights
            schedule.set_model(model)  # fit() is not called, so the callback has no model yet
            schedule.on_train_end()
        fit_seconds = time.perf_counter() - started
        return finish_run(model, config, dataset_dir, run_dir, schedule, valid, fit_seconds)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
