"""Multi-worker training: ``--strategy multi_worker`` (MultiWorkerMirroredStrategy + TF_CONFIG).

Keras 3 ``fit`` does not run under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585), so
this module drives the very model, losses, evaluator and reference schedule of
:mod:`pipelines.training.common` (as the ``fit`` loop does) with a custom synchronous step:

* every replica computes its batch's losses (the compiled Keras loss objects, so the same
  reductions as ``fit``), scaled to its share of the global mean, plus its share of the
  regularisation; the optimizer all-reduces (sums) the gradients and applies them on every
  replica, so all workers hold identical weights after every step;
* input: with at least as many train shard files as workers, each worker reads its own files
  (``files``); otherwise every worker reads the global batches and keeps its replicas' slices
  (``batches``: the global batches are exactly those of single-worker training);
* after every epoch every worker evaluates the whole validation split (exact AUC/gAUC need all
  predictions) and the monitor is averaged across workers, so every worker takes the same
  learning-rate and stopping decision;
* only the chief writes: checkpoints, history, metrics, the saved model; every worker reads the
  chief's checkpoints on restart, so the run directory must be on storage all hosts share;
* a worker that dies makes the others fail within about a minute (TensorFlow's peer health
  check); they exit with :class:`WorkerFailure`, which says what to restart.

The chief is task ``chief`` 0, or ``worker`` 0 when the cluster has no ``chief`` job.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pipelines.data.manifest import load_manifest
from pipelines.data.reader import make_dataset
from pipelines.training.common import (
    build_from_config,
    compile_model,
    finish_run,
    make_schedule,
    monitor_group_key,
)
from pipelines.training.config import ConfigError, RunConfig
from pipelines.training.evaluation import SplitEvaluator
from pipelines.training.rundir import RunDir
from tf4ctr_keras.models.tf4ctr import CTR_OUTPUT

log = logging.getLogger(__name__)

_HOST_PORT = re.compile(r"^[^\s:]+:\d{1,5}$")
_STRATEGY: tf.distribute.MultiWorkerMirroredStrategy | None = None
# What a lost peer looks like from the survivors: the health check aborts collectives with
# UNAVAILABLE; a peer that restarted gives FAILED_PRECONDITION; a hung one DEADLINE_EXCEEDED.
PEER_ERRORS = (
    tf.errors.UnavailableError,
    tf.errors.FailedPreconditionError,
    tf.errors.DeadlineExceededError,
    tf.errors.AbortedError,
    tf.errors.CancelledError,
    tf.errors.InternalError,
)


class WorkerFailure(RuntimeError):
    """A peer of this multi-worker run failed; the message says which and how to resume."""


@dataclass(frozen=True)
class ClusterRole:
    """This process's place in the cluster described by ``TF_CONFIG``."""

    task_type: str
    task_index: int
    num_workers: int
    is_chief: bool

    @property
    def name(self) -> str:
        return f"{self.task_type}:{self.task_index}"


def cluster_role(environ=None) -> ClusterRole:
    """Parses and checks ``TF_CONFIG``; errors name the offending field."""
    environ = os.environ if environ is None else environ
    text = environ.get("TF_CONFIG")
    if not text:
        raise ConfigError(
            "--strategy multi_worker needs the TF_CONFIG environment variable, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}} (see README, "Training on a cluster").'
        )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"TF_CONFIG is not valid JSON: {error}") from None
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ConfigError('TF_CONFIG needs a "cluster" object and a "task" object.')
    unknown = sorted(set(cluster) - {"chief", "worker"})
    if unknown:
        raise ConfigError(
            f"TF_CONFIG cluster jobs {unknown} are not used by MultiWorkerMirroredStrategy; "
            'only "chief" (at most one) and "worker" are.'
        )
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses:
            raise ConfigError(f'TF_CONFIG cluster["{job}"] must be a non-empty list of host:port.')
        for i, address in enumerate(addresses):
            if not isinstance(address, str) or not _HOST_PORT.match(address):
                raise ConfigError(
                    f'TF_CONFIG cluster["{job}"][{i}] = {address!r} is not "host:port".'
                )
    if len(cluster.get("chief", [])) > 1:
        raise ConfigError('TF_CONFIG cluster["chief"] must hold one address.')
    task_type, index = task.get("type"), task.get("index")
    if task_type not in cluster:
        raise ConfigError(
            f'TF_CONFIG task["type"] = {task_type!r} is not a job of the cluster '
            f"({', '.join(sorted(cluster))})."
        )
    if not isinstance(index, int) or not 0 <= index < len(cluster[task_type]):
        raise ConfigError(
            f'TF_CONFIG task["index"] = {index!r} is out of range for job "{task_type}" '
            f"({len(cluster[task_type])} task(s))."
        )
    is_chief = task_type == "chief" or ("chief" not in cluster and index == 0)
    workers = sum(len(a) for a in cluster.values())
    return ClusterRole(task_type, index, workers, is_chief)


def multi_worker_strategy() -> tf.distribute.MultiWorkerMirroredStrategy:
    """The process's MultiWorkerMirroredStrategy, created on first use.

    TensorFlow must configure collective ops before it runs anything else, so the CLI calls
    this right after parsing its arguments (before the config check builds a probe model).
    """
    global _STRATEGY
    if _STRATEGY is None:
        role = cluster_role()
        try:
            _STRATEGY = tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as error:
            raise ConfigError(
                f"MultiWorkerMirroredStrategy could not start ({error}): it must be created "
                "before TensorFlow runs anything else in the process."
            ) from None
        log.info(
            "multi-worker: task %s of %d worker(s), %d replica(s) in sync%s",
            role.name,
            role.num_workers,
            _STRATEGY.num_replicas_in_sync,
            " (chief)" if role.is_chief else "",
        )
    return _STRATEGY


def input_mode(num_files: int, num_workers: int) -> str:
    """``"files"`` when every worker can read its own shard files, else ``"batches"``."""
    return "files" if num_workers > 1 and num_files >= num_workers else "batches"


def replica_bounds(rows: int, replica: int, replicas: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of a global batch of ``rows`` that replica ``replica`` trains on."""
    return rows * replica // replicas, rows * (replica + 1) // replicas


def train_input_fn(
    dataset_dir,
    global_batch: int,
    seed: int,
    mode: str,
    first_epoch: int = 0,
    epochs: int = 1,
    steps: int | None = None,
):
    """``InputContext -> tf.data.Dataset`` of per-replica ``(features, label)`` batches for
    epochs ``first_epoch .. first_epoch + epochs - 1``, each read in the order
    :func:`pipelines.data.reader.pass_seeds` gives it, so a resumed run reads what the
    uninterrupted one did.

    ``files``: this worker's shard files, shuffled, repeated, batches of
    ``global_batch / replicas`` (full batches only, across passes); epoch ``e`` starts where
    ``e * steps`` steps of the uninterrupted stream end (pass and row computed from the
    manifest's shard rows). ``batches``: the global batches of single-worker training (same
    seed, same order), sliced so that replica ``r`` gets rows ``replica_bounds(n, r,
    replicas)``; a last global batch with fewer rows than replicas is skipped so no replica
    gets an empty batch.
    """

    def fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        replicas = context.num_replicas_in_sync
        local = replicas // context.num_input_pipelines
        first = context.input_pipeline_id * local
        if mode == "files":
            per_replica = context.get_per_replica_batch_size(global_batch)
            manifest = load_manifest(dataset_dir)
            shards = manifest.splits["train"].shards
            mine = sum(
                s.rows for s in shards[context.input_pipeline_id :: context.num_input_pipelines]
            )
            consumed = first_epoch * (steps or 0) * local * per_replica  # rows before this epoch
            ds = make_dataset(
                dataset_dir,
                "train",
                per_replica,
                shuffle=True,
                seed=seed,
                first_epoch=consumed // max(1, mine),
                repeat=True,
                drop_remainder=True,
                num_shards=context.num_input_pipelines,
                shard_index=context.input_pipeline_id,
                skip_rows=consumed % max(1, mine),
            )
        else:
            ds = make_dataset(
                dataset_dir,
                "train",
                global_batch,
                shuffle=True,
                seed=seed,
                first_epoch=first_epoch,
                epochs=epochs,
            )
            ds = ds.filter(lambda x, y: tf.shape(y)[0] >= replicas)

            def slices(features, label):
                rows = tf.shape(label)[0]
                parts = None
                for replica in range(first, first + local):
                    lo, hi = replica_bounds(rows, replica, replicas)
                    part = tf.data.Dataset.from_tensors(
                        ({k: v[lo:hi] for k, v in features.items()}, label[lo:hi])
                    )
                    parts = part if parts is None else parts.concatenate(part)
                return parts

            ds = ds.flat_map(slices)
        options = tf.data.Options()
        # Sharding is done above; TensorFlow's auto-sharding would shard a second time.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return ds.with_options(options)

    return fn


def steps_per_epoch(train_rows: int, global_batch: int, replicas: int, mode: str) -> int:
    """Synchronous steps per epoch; every worker runs exactly this many."""
    if mode == "files":
        return max(1, train_rows // global_batch)
    full, rest = divmod(train_rows, global_batch)
    return full + (1 if rest >= replicas else 0)


def weights_digest(model: keras.Model) -> str:
    """SHA-256 of the model's weights (all workers must log the same one)."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(np.asarray(weight)).tobytes())
    return digest.hexdigest()


def _local_predict_fn(model: keras.Model):
    """A forward pass over a whole split on this worker (no cross-worker sharding)."""
    forward = tf.function(lambda x: model(x, training=False)[CTR_OUTPUT])

    def predict(_model, features: tf.data.Dataset) -> np.ndarray:
        return np.concatenate([forward(x).numpy().reshape(-1) for x in features])

    return predict


def train_multi_worker(config: RunConfig, dataset_dir, run_dir, verbose: int = 1) -> dict:
    """Trains under MultiWorkerMirroredStrategy; the chief writes ``run_dir``.

    Returns the same metrics dict as :func:`pipelines.training.run.train` on every worker.
    """
    run_dir = Path(run_dir)
    strategy = multi_worker_strategy()
    role = cluster_role()
    manifest = load_manifest(dataset_dir)
    t = config.train
    if t.jit:
        raise ConfigError("train.jit is not supported with --strategy multi_worker yet.")
    replicas = strategy.num_replicas_in_sync
    mode = input_mode(len(manifest.shard_paths("train")), role.num_workers)
    if mode == "files" and t.batch_size % replicas:
        raise ConfigError(
            f"train.batch_size={t.batch_size} must be a multiple of the {replicas} replicas "
            "when each worker reads its own files."
        )
    keras.utils.set_random_seed(t.seed)
    keras.mixed_precision.set_dtype_policy(t.precision)
    try:
        with strategy.scope():  # the chief's initial values are broadcast to every worker
            model = build_from_config(config, manifest)
            compile_model(model, config)
            model.build()
            model.optimizer.build(model.trainable_variables)
        optimizer = model.optimizer
        # The same losses with reduction "sum": Keras' "sum_over_batch_size" also divides by
        # the replicas in sync under a strategy, which would scale the loss twice here.
        losses = {
            name: loss.__class__.from_config({**loss.get_config(), "reduction": "sum"})
            for name, loss in config.output_losses().items()
        }
        group_key = monitor_group_key(config, manifest)
        steps = steps_per_epoch(manifest.splits["train"].rows, t.batch_size, replicas, mode)

        @tf.function
        def train_step(iterator):
            def replica_step(features, label):
                rows = tf.cast(tf.shape(label)[0], tf.float32)
                context = tf.distribute.get_replica_context()
                global_rows = context.all_reduce(tf.distribute.ReduceOp.SUM, rows)
                with tf.GradientTape() as tape:
                    outputs = model(features, training=True)
                    # Per-replica sums over the global row count: the replicas' losses add
                    # up to the mean over the global batch, as `fit` computes it.
                    data_loss = tf.add_n(
                        [loss(label, outputs[name]) for name, loss in losses.items()]
                    )
                    loss_value = data_loss / global_rows
                    if model.losses:  # embedding L2: once per step, shared by the replicas
                        loss_value += tf.add_n(model.losses) / replicas
                    scaled = optimizer.scale_loss(loss_value)
                grads = tape.gradient(scaled, model.trainable_variables)
                optimizer.apply(grads, model.trainable_variables)  # all-reduces the sum
                return loss_value

            per_replica = strategy.run(replica_step, args=next(iterator))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

        local_predict = _local_predict_fn(model)
        valid = SplitEvaluator(
            make_dataset(dataset_dir, "valid", t.eval_batch_size, with_group=True),
            group_key,
            local_predict,
        )

        @tf.function
        def agree(values):
            return strategy.reduce(
                tf.distribute.ReduceOp.MEAN, strategy.run(lambda v: v, args=(values,)), axis=None
            )

        def evaluate(m) -> dict:
            """Valid metrics, averaged over the workers: every worker decides alike."""
            metrics = valid(m)
            names = sorted(metrics)
            mean = agree(tf.constant([metrics[n] for n in names], tf.float64)).numpy()
            return {n: float(v) for n, v in zip(names, mean, strict=True)}

        schedule = make_schedule(config, evaluate, run_dir, write_checkpoints=role.is_chief)
        schedule.set_model(model)
        epochs_done = schedule.restore(model)
        if epochs_done:
            log.info("resuming %s after epoch %d", run_dir, epochs_done)
        data = strategy.distribute_datasets_from_function(
            train_input_fn(
                dataset_dir,
                t.batch_size,
                t.seed,
                mode,
                first_epoch=epochs_done,
                epochs=max(1, t.max_epochs - epochs_done),
                steps=steps,
            )
        )
        log.info(
            "multi-worker input: %s, %d step(s) per epoch of %d rows", mode, steps, t.batch_size
        )
        csv = None
        if role.is_chief:
            csv = keras.callbacks.CSVLogger(
                str(RunDir(run_dir).history_csv), append=epochs_done > 0
            )
            csv.set_model(model)
            csv.on_train_begin()
        started = time.perf_counter()
        schedule.on_train_begin()
        model.stop_training = schedule.stopped
        iterator = iter(data)
        epoch = epochs_done
        try:
            while epoch < t.max_epochs and not model.stop_training:
                schedule.on_epoch_begin(epoch)  # (one iterator: the data holds every epoch)
                total = 0.0
                for step in range(steps):
                    total += float(train_step(iterator))
                    if verbose and (step + 1) % max(1, steps // 10) == 0:
                        log.info("epoch %d: step %d/%d", epoch + 1, step + 1, steps)
                logs = {"loss": total / steps}
                schedule.on_epoch_end(epoch, logs)
                if csv is not None:
                    csv.on_epoch_end(epoch, logs)
                epoch += 1
        except PEER_ERRORS as error:
            raise WorkerFailure(
                f"task {role.name}: a peer of this multi-worker run failed during epoch "
                f"{epoch + 1} ({type(error).__name__}: {str(error).splitlines()[0]}). Restart "
                "every worker with the same command and TF_CONFIG; training resumes from the "
                f"chief's last checkpoint in {RunDir(run_dir).checkpoint_dir} "
                f"({len(schedule.history)} epoch(s) done)."
            ) from error
        schedule.on_train_end()
        if csv is not None:
            csv.on_train_end()
        fit_seconds = time.perf_counter() - started
        digest = weights_digest(model)
        log.info("task %s: final weights sha256 %s", role.name, digest)
        return finish_run(
            model,
            config,
            dataset_dir,
            run_dir,
            schedule,
            valid,
            fit_seconds,
            predict_fn=local_predict,
            write=role.is_chief,  # only the chief writes the run directory
            extra={
                "workers": role.num_workers,
                "replicas": replicas,
                "input_mode": mode,
                "weights_sha256": digest,
            },
        )
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
