"""The in-process experiments of ``python -m experiments.reproduce``: Figure 10 (samples by
difficulty per epoch), Figure 5 (gradient norms of the twin logits) and Table VI (time per
epoch), and the plots of the figures.

Each writes one JSON into the study's cache (:func:`cache_path`); the plots are drawn from it.
What each compares comes from the paper's data files (:mod:`experiments.tables`).
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks.timing import batch_timer
from experiments.runs import Study
from experiments.tables import (
    FIG5_SPEC,
    FIG10_MODELS,
    FIRST_SEED,
    NAMES,
    TABLE6,
    THRESHOLDS,
    TIMING_MODELS,
)
from pipelines.data.fileio import atomic_output

log = logging.getLogger(__name__)

CLASSES = ("misclassified", "poorly", "well")
EXPERIMENTS = ("fig10", "fig5", "6")


def cache_path(study: Study, key: str, args) -> Path:
    """The JSON of experiment ``key`` ("fig10", "fig5" or "6"), named by what defines it."""
    if key == "fig10":
        payload = {m: study.key_config(s) for m, s in FIG10_MODELS.items()}
        payload["epochs"] = args.fig10_epochs
        payload["thresholds"] = THRESHOLDS
        return study.json_path("fig10", payload)
    if key == "fig5":
        payload = {"config": study.key_config(FIG5_SPEC)}
        payload["batch_size"] = args.fig5_batch_size
        return study.json_path("fig5", payload)
    if key == "6":
        payload = {m: study.key_config(s) for m, s in TIMING_MODELS.items()}
        payload["epochs"] = args.timing_epochs
        payload["clocks"] = ["wall", "cpu", "batches"]  # see benchmarks.timing.batch_timer
        return study.json_path("table6", payload)
    raise ValueError(f"unknown experiment {key!r}")


def run(study: Study, key: str, args) -> dict:
    path = cache_path(study, key, args)
    if key == "fig10":
        result = run_fig10(study, args.fig10_epochs)
    elif key == "fig5":
        result = run_fig5(study, args.fig5_batch_size)
    else:
        result = run_timing(study, args.timing_epochs)
    study.write_json(path, result)
    return result


def _save(fig, png: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_output(png) as tmp:  # the temporary name keeps the .png suffix
        fig.savefig(tmp, dpi=80)
    plt.close(fig)


# -- Figure 10 ----------------------------------------------------------------------------------
def difficulty_counts(labels, probs, thresholds=THRESHOLDS) -> dict[str, dict[str, int]]:
    """Samples per difficulty class, positives and negatives apart, by the probability given
    to the true label ``p_t = y p + (1 - y)(1 - p)``: misclassified ``p_t < low``, poorly
    classified ``low <= p_t < high``, well classified ``p_t >= high``."""
    low, high = thresholds
    y = np.asarray(labels).reshape(-1) > 0.5
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    p_t = np.where(y, p, 1.0 - p)
    out = {}
    for name, mask in (("positive", y), ("negative", ~y)):
        pt = p_t[mask]
        out[name] = {
            "misclassified": int(np.sum(pt < low)),
            "poorly": int(np.sum((pt >= low) & (pt < high))),
            "well": int(np.sum(pt >= high)),
        }
    return out


def _setup(study: Study, config):
    import keras

    from pipelines.data.manifest import load_manifest
    from pipelines.training.common import build_from_config, compile_model
    from pipelines.training.inputs import resolve_dataset

    dataset_dir = resolve_dataset(config)
    manifest = load_manifest(dataset_dir)
    keras.utils.set_random_seed(config.train.seed)
    model = build_from_config(config, manifest)
    compile_model(model, config)
    return dataset_dir, manifest, model


def _train_data(dataset_dir, manifest, config, batch_size=None):
    import tensorflow as tf

    from pipelines.data.reader import make_dataset
    from pipelines.training.keras_fit import with_targets

    batch_size = batch_size or config.train.batch_size
    steps = -(-manifest.splits["train"].rows // batch_size)
    data = make_dataset(dataset_dir, "train", batch_size, shuffle=True, seed=config.train.seed)
    return with_targets(data, config.output_losses()).apply(
        tf.data.experimental.assert_cardinality(steps)
    )


def _difficulty_callback_class():
    import keras

    class DifficultyCallback(keras.callbacks.Callback):
        """After every epoch: difficulty counts and AUC of each split's predictions."""

        def __init__(self, name, splits):
            super().__init__()
            self.name, self.splits = name, splits
            self.record = {split: [] for split in splits}
            self.aucs = {split: [] for split in splits}

        def on_epoch_end(self, epoch, logs=None):
            from tf4ctr_keras.metrics import evaluate_predictions

            for split, ev in self.splits.items():
                probs = ev.predict(self.model)
                self.record[split].append(difficulty_counts(ev.labels, probs))
                self.aucs[split].append(evaluate_predictions(ev.labels, probs)["auc"])
            log.info("fig10 %s epoch %d: %.5f", self.name, epoch + 1, self.aucs["valid"][-1])

    return DifficultyCallback


def _DifficultyCallback(name, splits):  # noqa: N802 (keras imported lazily)
    return _difficulty_callback_class()(name, splits)


def run_fig10(study: Study, epochs: int) -> dict:
    """Trains each model ``epochs`` epochs (reference LR schedule, no early stop) and counts the
    valid and test samples by difficulty after every epoch."""
    from pipelines.data.reader import make_dataset
    from pipelines.training.evaluation import SplitEvaluator
    from pipelines.training.schedule import ReferenceSchedule

    out = {"epochs": epochs, "thresholds": list(THRESHOLDS), "models": {}}
    for name, s in FIG10_MODELS.items():
        config = study.config(s, FIRST_SEED).replace({"train.max_epochs": epochs})
        dataset_dir, manifest, model = _setup(study, config)
        t = config.train
        splits = {
            split: SplitEvaluator(make_dataset(dataset_dir, split, t.eval_batch_size), None)
            for split in ("valid", "test")
        }
        valid_metrics = SplitEvaluator(
            make_dataset(dataset_dir, "valid", t.eval_batch_size), manifest.group_key
        )
        schedule = ReferenceSchedule(
            valid_metrics,
            monitor=t.monitor,
            patience=epochs + 1,  # never stops: every model trains `epochs` epochs
            factor=t.lr_factor,
            min_lr=t.min_lr,
            min_delta=t.min_delta,
            checkpoint_dir=None,
        )

        count = _DifficultyCallback(name, splits)
        model.fit(
            _train_data(dataset_dir, manifest, config),
            epochs=epochs,
            shuffle=False,
            verbose=0,
            callbacks=[schedule, count],
        )
        out["models"][name] = {**count.record, "auc": count.aucs}
    return out


def plot_fig10(counts: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(counts["models"])
    panels = [(s, lab) for s in ("valid", "test") for lab in ("positive", "negative")]
    fig, axes = plt.subplots(len(CLASSES), len(panels), figsize=(18, 10), squeeze=False)
    colors = ("#999999", "#d62728")  # the baseline grey, TF4CTR red
    width = 0.4
    for col, (split, label) in enumerate(panels):
        for row, cls in enumerate(CLASSES):
            ax = axes[row][col]
            for i, model in enumerate(models):
                ys = [e[label][cls] for e in counts["models"][model][split]]
                xs = np.arange(1, len(ys) + 1) + (i - (len(models) - 1) / 2) * width
                ax.bar(xs, ys, width, label=model, color=colors[i] if i < len(colors) else None)
            if row == 0:
                ax.set_title(f"{split}, {label} samples")
            if col == 0:
                ax.set_ylabel(f"#{cls}")
            if row == len(CLASSES) - 1:
                ax.set_xlabel("epoch")
            ax.set_xticks(range(1, counts["epochs"] + 1))
    axes[0][0].legend([NAMES.get(m, m) for m in models])
    lo, hi = counts["thresholds"]
    fig.suptitle(
        f"Samples by difficulty per epoch (p_t < {lo}: misclassified, {lo}-{hi}: poorly, "
        f">= {hi}: well classified)"
    )
    fig.tight_layout()
    _save(fig, png)


# -- Figure 5 -----------------------------------------------------------------------------------
def logit_loss(labels, twin_logits, tf_loss=None):
    """Loss of a sum-fusion two-tower model from its twin logits ``[B, 2]``: log loss of
    ``sigmoid(z_s + z_c)`` (from logits), plus the TF loss of the twin logits if given."""
    import tensorflow as tf

    y = tf.cast(tf.reshape(labels, [-1]), twin_logits.dtype)
    fused = tf.reduce_sum(twin_logits, axis=-1)
    loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=fused))
    if tf_loss is not None:
        loss = loss + tf.cast(tf_loss(y, twin_logits), loss.dtype)
    return loss


def logit_gradient_step(model, optimizer, features, labels, tf_loss=None, apply=True):
    """One training step; returns the gradient of the total loss (log loss [+ TF loss] +
    regularization) w.r.t. the twin logits ``[B, 2]``."""
    import tensorflow as tf

    from tf4ctr_keras.models.tf4ctr import TWIN_OUTPUT

    with tf.GradientTape() as tape:
        twin = model(features, training=True)[TWIN_OUTPUT]
        loss = logit_loss(labels, twin, tf_loss)
        if model.losses:
            loss = loss + tf.add_n([tf.cast(x, loss.dtype) for x in model.losses])
    variables = model.trainable_variables
    grads = tape.gradient(loss, [twin, *variables])
    if apply:
        optimizer.apply_gradients(zip(grads[1:], variables, strict=True))
    return grads[0]


def run_fig5(study: Study, batch_size: int) -> dict:
    """One epoch from the same initial weights with and without the TF loss; per batch the L2
    norms of dL/dz_s and dL/dz_c."""
    import keras
    import tensorflow as tf

    from tf4ctr_keras.losses import TwinFocusLoss

    config = study.config(FIG5_SPEC, FIRST_SEED).replace({"train.batch_size": batch_size})
    out = {"batch_size": batch_size, "runs": {}}
    for key, use_tf in (("ctr_tf", True), ("ctr", False)):
        dataset_dir, manifest, model = _setup(study, config)
        t, lo = config.train, config.loss
        optimizer = keras.optimizers.Adam(
            learning_rate=t.learning_rate, epsilon=t.adam_epsilon, global_clipnorm=t.clipnorm
        )
        tf_loss = TwinFocusLoss(lo.alpha, lo.c, lo.gamma) if use_tf else None
        step = tf.function(
            lambda x, y, m=model, o=optimizer, f=tf_loss: logit_gradient_step(m, o, x, y, f),
            reduce_retracing=True,
        )
        from pipelines.data.reader import make_dataset

        # Full batches only: a norm over B entries of size ~1/B scales like 1/sqrt(B).
        data = make_dataset(
            dataset_dir, "train", batch_size, shuffle=True, seed=t.seed, drop_remainder=True
        )
        norms_s, norms_c = [], []
        for features, labels in data:
            g = step(features, labels).numpy()
            norms_s.append(float(np.linalg.norm(g[:, 0])))
            norms_c.append(float(np.linalg.norm(g[:, 1])))
        out["runs"][key] = {"z_s": norms_s, "z_c": norms_c}
        out["steps"] = len(norms_s)
        log.info("fig5 %s: %d steps", key, len(norms_s))
    return out


def plot_fig5(norms: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    for ax, (key, title) in zip(
        axes, (("ctr_tf", "(a) L_ctr + L_TF"), ("ctr", "(b) L_ctr")), strict=True
    ):
        run = norms["runs"][key]
        ax.plot(run["z_s"], label="||dL/dz_s|| (simple)", lw=1)
        ax.plot(run["z_c"], label="||dL/dz_c|| (complex)", lw=1, ls="--")
        ax.set_title(title)
        ax.set_xlabel(f"batch (size {norms['batch_size']:,}), first epoch")
        ax.legend()
    axes[0].set_ylabel("gradient norm")
    fig.tight_layout()
    _save(fig, png)


# -- Table VI -----------------------------------------------------------------------------------
def run_timing(study: Study, epochs: int) -> dict:
    """Median seconds of a training epoch and of predicting the valid split, models
    interleaved in this process after one warm-up epoch each, timed from the first batch to
    the last (:func:`benchmarks.timing.batch_timer`)."""
    from pipelines.data.reader import make_dataset
    from pipelines.training.evaluation import SplitEvaluator

    models = {}
    for name, s in TIMING_MODELS.items():
        config = study.config(s, FIRST_SEED)
        dataset_dir, manifest, model = _setup(study, config)
        data = _train_data(dataset_dir, manifest, config)
        valid = SplitEvaluator(make_dataset(dataset_dir, "valid", config.train.eval_batch_size))
        model.fit(data, epochs=1, verbose=0)  # warm-up: tracing, first allocations
        valid.predict(model)
        models[name] = (model, data, valid)
        log.info("table6 %s: warmed up", name)
    clocks = ("train_s", "train_cpu_s", "infer_s", "infer_cpu_s", "train_call_s", "infer_call_s")
    got = {name: {clock: [] for clock in clocks} for name in models}
    timer = batch_timer()
    for _ in range(epochs):
        for name, (model, data, valid) in models.items():
            start = time.perf_counter()
            model.fit(data, epochs=1, verbose=0, callbacks=[timer])
            got[name]["train_call_s"].append(time.perf_counter() - start)
            got[name]["train_s"].append(timer.seconds[0])
            got[name]["train_cpu_s"].append(timer.seconds[1])
            start = time.perf_counter()
            valid.predict(model, callbacks=[timer])
            got[name]["infer_call_s"].append(time.perf_counter() - start)
            got[name]["infer_s"].append(timer.seconds[0])
            got[name]["infer_cpu_s"].append(timer.seconds[1])
    config = study.config(TIMING_MODELS[TABLE6["reference"]], FIRST_SEED)
    return {
        "epochs": epochs,
        "batch_size": config.train.batch_size,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "models": {
            name: {
                **{clock: statistics.median(xs) for clock, xs in got[name].items()},
                **{f"{clock[:-2]}_all": xs for clock, xs in got[name].items()},
            }
            for name in models
        },
    }
