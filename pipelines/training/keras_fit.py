"""The single-host training loop: Keras ``fit`` with the reference schedule (strategies
``default`` and ``mirrored``)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import keras
import tensorflow as tf

from pipelines.data.manifest import load_manifest
from pipelines.data.reader import make_dataset
from pipelines.training.common import (
    build_from_config,
    compile_model,
    finish_run,
    make_schedule,
    make_strategy,
    monitor_group_key,
)
from pipelines.training.config import RunConfig
from pipelines.training.evaluation import SplitEvaluator
from pipelines.training.rundir import RunDir

log = logging.getLogger(__name__)


def with_targets(dataset: tf.data.Dataset, outputs) -> tf.data.Dataset:
    """``(features, label)`` -> ``(features, {output: label})`` for the compiled outputs."""
    names = tuple(outputs)
    return dataset.map(lambda x, y: (x, {n: y for n in names}), num_parallel_calls=tf.data.AUTOTUNE)


def train_dataset(
    config: RunConfig, dataset_dir: str | Path, steps: int, first_epoch: int, batch_size=None
) -> tf.data.Dataset:
    """The training input of epochs ``first_epoch .. max_epochs - 1`` as one dataset for
    ``fit(..., initial_epoch=first_epoch, steps_per_epoch=steps)``.

    Epoch ``e`` is read in the order :func:`pipelines.data.reader.pass_seeds` gives
    ``(seed, e)``, so a run resumed after epoch ``k`` in a new process trains epoch ``k + 1``
    on the batches the uninterrupted run did (``reshuffle_each_iteration`` would start its
    sequence of orders again). Keras keeps one iterator across epochs when ``steps_per_epoch``
    is given, which is what lets one dataset hold every epoch.
    """
    t = config.train
    epochs = max(1, t.max_epochs - first_epoch)
    ds = make_dataset(
        dataset_dir,
        "train",
        batch_size or t.batch_size,
        shuffle=True,
        seed=t.seed,
        first_epoch=first_epoch,
        epochs=epochs,
    )
    return with_targets(ds, config.output_losses()).apply(
        tf.data.experimental.assert_cardinality(steps * epochs)
    )


def train_fit(config: RunConfig, dataset_dir: str | Path, run_dir: str | Path, verbose: int = 1):
    """Trains with Keras ``fit`` and the reference schedule, writes the run directory and
    returns the metrics."""
    run_dir = Path(run_dir)
    run = RunDir(run_dir)
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
        valid = SplitEvaluator(
            make_dataset(dataset_dir, "valid", t.eval_batch_size, with_group=True), group_key
        )
        schedule = make_schedule(config, valid, run_dir)
        with strategy.scope():
            model.build()
            epochs_done = schedule.restore(model)
        if epochs_done:
            log.info(
                "resuming %s after epoch %d (best %d)", run_dir, epochs_done, schedule.best_epoch
            )
        steps = -(-manifest.splits["train"].rows // t.batch_size)  # the last batch is kept
        train_ds = train_dataset(config, dataset_dir, steps, epochs_done)
        started = time.perf_counter()
        if epochs_done < t.max_epochs and not schedule.stopped:
            model.fit(
                train_ds,
                epochs=t.max_epochs,
                initial_epoch=epochs_done,
                steps_per_epoch=steps,  # one iterator over all epochs: see train_dataset
                shuffle=False,  # the reader shuffles
                verbose=verbose,
                callbacks=[
                    schedule,
                    keras.callbacks.TerminateOnNaN(),
                    keras.callbacks.CSVLogger(str(run.history_csv), append=epochs_done > 0),
                    keras.callbacks.TensorBoard(str(run.tensorboard_dir), write_graph=False),
                ],
            )
        else:  # killed after its last epoch, before metrics.json: restore the best weights
            schedule.set_model(model)  # fit() is not called, so the callback has no model yet
            schedule.on_train_end()
        fit_seconds = time.perf_counter() - started
        return finish_run(model, config, dataset_dir, run_dir, schedule, valid, fit_seconds)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
