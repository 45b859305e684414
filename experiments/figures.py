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
    FIG2_SPEC,
    FIG5_SPEC,
    FIG10_MODELS,
    FIRST_SEED,
    HYPERPARAMS,
    NAMES,
    TABLE6,
    THRESHOLDS,
    TIMING_MODELS,
)
from pipelines.data.fileio import atomic_output

log = logging.getLogger(__name__)

CLASSES = ("misclassified", "poorly", "well")
EXPERIMENTS = ("fig10", "fig5", "6")
# The in-process experiment of the hyperparameter study (python -m experiments.hyperparams).
HYPERPARAM_EXPERIMENTS = ("fig2",)
FIG2 = HYPERPARAMS["figure2"]
FIG4 = HYPERPARAMS["figure4"]
# Fill colours of the difficulty classes, as the paper's Fig. 2: red, blue, green.
CLASS_COLORS = {"misclassified": "#d62728", "poorly": "#1f77b4", "well": "#2ca02c"}


def cache_path(study: Study, key: str, args) -> Path:
    """The JSON of experiment ``key`` ("fig10", "fig5", "6" or "fig2"), named by what defines
    it."""
    if key == "fig2":
        payload = {"config": study.key_config(FIG2_SPEC), "epochs": args.fig2_epochs}
        payload["thresholds"] = THRESHOLDS
        payload["bins"] = FIG2["bins"]
        return study.json_path("fig2", payload)
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
    elif key == "fig2":
        result = run_fig2(study, args.fig2_epochs)
    else:
        result = run_timing(study, args.timing_epochs)
    study.write_json(path, result)
    return result


def planned_epochs(key: str, args) -> list[tuple[str, int]]:
    """``(model, epochs)`` that experiment ``key`` trains (a run's cost: see
    :func:`experiments.reproduce.cost_text`); Table VI's include a warm-up epoch per model."""
    if key == "fig10":
        return [(s.model, args.fig10_epochs) for s in FIG10_MODELS.values()]
    if key == "fig5":
        return [(FIG5_SPEC.model, 1), (FIG5_SPEC.model, 1)]  # with and without the TF loss
    if key == "6":
        return [(s.model, args.timing_epochs + 1) for s in TIMING_MODELS.values()]
    if key == "fig2":
        return [(FIG2_SPEC.model, args.fig2_epochs)]
    raise ValueError(f"unknown experiment {key!r}")


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
    y, p, p_t = _true_label_probability(labels, probs)
    out = {}
    for name, mask in (("positive", y), ("negative", ~y)):
        out[name] = {cls: int(np.sum(m)) for cls, m in _class_masks(p_t[mask], thresholds).items()}
    return out


def _true_label_probability(labels, probs):
    """``(y, p, p_t)``: boolean labels, probabilities and ``p_t = y p + (1 - y)(1 - p)``."""
    y = np.asarray(labels).reshape(-1) > 0.5
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    return y, p, np.where(y, p, 1.0 - p)


def _class_masks(p_t, thresholds) -> dict[str, np.ndarray]:
    """The samples of each difficulty class (:data:`CLASSES`) by ``p_t``."""
    low, high = thresholds
    return {"misclassified": p_t < low, "poorly": (p_t >= low) & (p_t < high), "well": p_t >= high}


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


def _train_data(dataset_dir, manifest, config, batch_size=None, epochs=1):
    """``epochs`` epochs of training input for ``fit(..., steps_per_epoch=steps)`` (epoch e in
    the order of (seed, e), as :func:`pipelines.training.keras_fit.train_dataset`), and
    ``steps``."""
    from pipelines.training.keras_fit import train_dataset

    batch_size = batch_size or config.train.batch_size
    steps = -(-manifest.splits["train"].rows // batch_size)
    config = config.replace({"train.max_epochs": epochs})
    return train_dataset(config, dataset_dir, steps, 0, batch_size), steps


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


def _fit_epochs(study: Study, s, epochs: int, splits, make_callback):
    """Trains cell ``s`` (first seed) ``epochs`` epochs with the reference LR schedule but no
    early stop, with the callback ``make_callback(evaluators)`` (a ``SplitEvaluator`` per split
    of ``splits``, read in order) that records the experiment after every epoch; returns it."""
    from pipelines.data.reader import make_dataset
    from pipelines.training.evaluation import SplitEvaluator
    from pipelines.training.schedule import ReferenceSchedule

    config = study.config(s, FIRST_SEED).replace({"train.max_epochs": epochs})
    dataset_dir, manifest, model = _setup(study, config)
    t = config.train
    evaluators = {  # in file order: the train split would be shuffled by default
        split: SplitEvaluator(
            make_dataset(dataset_dir, split, t.eval_batch_size, shuffle=False), None
        )
        for split in splits
    }
    valid_metrics = SplitEvaluator(
        make_dataset(dataset_dir, "valid", t.eval_batch_size, with_group=True),
        manifest.group_key,
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
    callback = make_callback(evaluators)
    data, steps = _train_data(dataset_dir, manifest, config, epochs=epochs)
    model.fit(
        data,
        epochs=epochs,
        steps_per_epoch=steps,
        shuffle=False,
        verbose=0,
        callbacks=[schedule, callback],
    )
    return callback


def run_fig10(study: Study, epochs: int) -> dict:
    """Trains each model ``epochs`` epochs (reference LR schedule, no early stop) and counts the
    valid and test samples by difficulty after every epoch."""
    out = {"epochs": epochs, "thresholds": list(THRESHOLDS), "models": {}}
    for name, s in FIG10_MODELS.items():
        count = _fit_epochs(
            study, s, epochs, ("valid", "test"), lambda ev, n=name: _DifficultyCallback(n, ev)
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
        data, _ = _train_data(dataset_dir, manifest, config)  # one epoch, fitted repeatedly
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


# -- Figure 2 -----------------------------------------------------------------------------------
def difficulty_histogram(labels, probs, bins: int, thresholds=THRESHOLDS) -> dict:
    """Positives and negatives apart, per difficulty class (:func:`difficulty_counts`), the
    histogram of the predicted probability ``p`` over ``bins`` equal-width bins of [0, 1]
    (the last bin holds p = 1): ``{"positive": {"misclassified": [count per bin], ...}, ...}``.
    A bin's classes add up to the histogram of every sample of that label."""
    y, p, p_t = _true_label_probability(labels, probs)
    edges = np.linspace(0.0, 1.0, bins + 1)
    out = {}
    for name, mask in (("positive", y), ("negative", ~y)):
        classes = _class_masks(p_t[mask], thresholds)
        out[name] = {
            cls: np.histogram(p[mask][m], edges)[0].astype(int).tolist()
            for cls, m in classes.items()
        }
    return out


def _fig2_callback_class():
    import keras

    class PredictionCallback(keras.callbacks.Callback):
        """After every epoch: per split the histogram of the predictions by difficulty class,
        the class counts and the AUC."""

        def __init__(self, splits, bins):
            super().__init__()
            self.splits, self.bins = splits, bins
            self.record = {split: [] for split in splits}

        def on_epoch_end(self, epoch, logs=None):
            from tf4ctr_keras.metrics import evaluate_predictions

            for split, ev in self.splits.items():
                probs = ev.predict(self.model)
                self.record[split].append(
                    {
                        "histogram": difficulty_histogram(ev.labels, probs, self.bins),
                        "counts": difficulty_counts(ev.labels, probs),
                        "auc": evaluate_predictions(ev.labels, probs)["auc"],
                    }
                )
            log.info("fig2 epoch %d: valid AUC %.5f", epoch + 1, self.record["valid"][-1]["auc"])

    return PredictionCallback


def run_fig2(study: Study, epochs: int) -> dict:
    """Trains the DNN ``epochs`` epochs (reference config and LR schedule, no early stop) and
    after every epoch bins its predictions on the train and valid splits by difficulty."""
    bins = FIG2["bins"]
    callback = _fit_epochs(
        study, FIG2_SPEC, epochs, ("train", "valid"), lambda ev: _fig2_callback_class()(ev, bins)
    )
    return {
        "model": FIG2_SPEC.model,
        "epochs": epochs,
        "bins": bins,
        "thresholds": list(THRESHOLDS),
        "splits": callback.record,
    }


def plot_fig2(result: dict, png: Path) -> None:
    """One row per epoch; per split and label, the stacked histogram of the predictions
    coloured by class (the paper's Fig. 2: red misclassified, blue poorly, green well)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(s, lab) for s in ("train", "valid") for lab in ("positive", "negative")]
    epochs, bins = result["epochs"], result["bins"]
    edges = np.linspace(0.0, 1.0, bins + 1)
    fig, axes = plt.subplots(epochs, len(panels), figsize=(16, 3.2 * epochs), squeeze=False)
    for row in range(epochs):
        for col, (split, label) in enumerate(panels):
            ax = axes[row][col]
            hist = result["splits"][split][row]["histogram"][label]
            bottom = np.zeros(bins)
            for cls in CLASSES:
                counts = np.asarray(hist[cls], dtype=float)
                ax.bar(
                    edges[:-1],
                    counts,
                    1.0 / bins,
                    bottom=bottom,
                    align="edge",
                    color=CLASS_COLORS[cls],
                    label=cls,
                )
                bottom += counts
            ax.set_yscale("symlog", linthresh=10)
            ax.set_title(f"({chr(97 + row * len(panels) + col)}) epoch {row + 1}: {split}, {label}")
            if row == epochs - 1:
                ax.set_xlabel("predicted probability")
            if col == 0:
                ax.set_ylabel("samples")
    axes[0][0].legend(fontsize=8)
    lo, hi = result["thresholds"]
    fig.suptitle(
        f"{NAMES.get(result['model'], result['model'])}'s predictions after each epoch "
        f"(p_t < {lo}: misclassified, {lo}-{hi}: poorly, >= {hi}: well classified)"
    )
    fig.tight_layout()
    _save(fig, png)


# -- Figure 4 -----------------------------------------------------------------------------------
def fig4_curves(pairs=None, points: int | None = None) -> dict:
    """The per-sample terms of :class:`tf4ctr_keras.losses.TwinFocusLoss` for ``y = 1`` against
    the tower's prediction ``p``, from the loss class itself (``reduction=None``; ``alpha = 1``
    keeps only ``L_simple``, ``alpha = 0`` only ``L_complex``), for each ``(c, gamma)``, and
    the log loss (``keras.losses.BinaryCrossentropy``) beside them."""
    import keras

    from tf4ctr_keras.losses import TwinFocusLoss

    pairs = [tuple(x) for x in (FIG4["pairs"] if pairs is None else pairs)]
    points = FIG4["points"] if points is None else points
    step = 1.0 / (points + 1)
    p = np.round(np.arange(1, points + 1) * step, 12)
    logits = (np.log(p) - np.log1p(-p)).astype("float32")
    twin = np.stack([logits, logits], axis=1)  # (points, 2): the same logit on both towers
    y = np.ones(points, dtype="float32")
    bce = keras.losses.BinaryCrossentropy(from_logits=True, reduction=None)
    out = {"p": p.tolist(), "log_loss": np.asarray(bce(y[:, None], logits[:, None])).tolist()}
    out["curves"] = []
    for c, gamma in pairs:
        terms = {
            name: np.asarray(TwinFocusLoss(alpha, c, gamma, reduction=None)(y, twin)).tolist()
            for name, alpha in (("simple", 1.0), ("complex", 0.0))
        }
        out["curves"].append({"c": c, "gamma": gamma, **terms})
    return out


def crossings(p, curve, reference, tol: float = 1e-6) -> list[float]:
    """The ``p`` where ``curve`` crosses ``reference``: a point where they agree within ``tol``,
    or between two points where their difference changes sign (linear interpolation)."""
    d = np.asarray(curve, dtype=np.float64) - np.asarray(reference, dtype=np.float64)
    d[np.abs(d) <= tol] = 0.0
    p = np.asarray(p, dtype=np.float64)
    out = [float(x) for x in p[d == 0.0]]
    for i in np.nonzero(d[:-1] * d[1:] < 0)[0]:
        out.append(float(p[i] + (p[i + 1] - p[i]) * d[i] / (d[i] - d[i + 1])))
    return sorted(out)


def plot_fig4(curves: dict, png: Path, thresholds=THRESHOLDS) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    lo, hi = thresholds
    for ax, (term, title) in zip(
        axes,
        (
            ("simple", "L_simple = (c + p)^gamma BCE"),
            ("complex", "L_complex = (2 - c - p)^gamma BCE"),
        ),
        strict=True,
    ):
        for (a, b), cls in zip(((0, lo), (lo, hi), (hi, 1)), CLASSES, strict=True):
            ax.axvspan(a, b, color=CLASS_COLORS[cls], alpha=0.08, lw=0)
        ax.plot(curves["p"], curves["log_loss"], color="black", ls="--", lw=1.5, label="log loss")
        for curve in curves["curves"]:
            ax.plot(
                curves["p"],
                curve[term],
                lw=1.2,
                label=f"c = {curve['c']:g}, gamma = {curve['gamma']:g}",
            )
        ax.set_title(title)
        ax.set_xlabel("tower prediction p (y = 1)")
        ax.set_ylim(0, 6)
    axes[0].set_ylabel("per-sample loss")
    axes[1].legend(fontsize=8)
    fig.suptitle("TwinFocusLoss terms (alpha = 1: simple, alpha = 0: complex) beside the log loss")
    fig.tight_layout()
    _save(fig, png)


# -- Figures 6-9 --------------------------------------------------------------------------------
def plot_sweep(points: list[dict], png: Path, title: str, xlabel: str, paper: dict) -> None:
    """Test AUC (%) of a sweep: per point the mean and sample std over seeds (error bar) and
    each seed (dots); ``points`` are ``{"label", "x", "auc": [...], "gauc": [...]}`` with ``x``
    numeric (or None: categorical, in order). ``paper``: ``best`` (a label or None) and
    ``values`` (``label -> AUC %``, or None when unavailable)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in ("auc", "gauc") if any(pt.get(m) for pt in points)] or ["auc"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 4), squeeze=False)
    categorical = any(pt["x"] is None for pt in points)
    xs = {pt["label"]: (i if categorical else pt["x"]) for i, pt in enumerate(points)}
    for ax, metric in zip(axes[0], metrics, strict=True):
        done = [pt for pt in points if pt.get(metric)]
        for pt in done:
            ax.scatter(
                [xs[pt["label"]]] * len(pt[metric]),
                [100 * v for v in pt[metric]],
                s=10,
                color="#999999",
                zorder=2,
            )
        if done:
            mean = [100 * statistics.fmean(pt[metric]) for pt in done]
            std = [
                100 * statistics.stdev(pt[metric]) if len(pt[metric]) > 1 else 0.0 for pt in done
            ]
            ax.errorbar(
                [xs[pt["label"]] for pt in done],
                mean,
                yerr=std,
                color="#d62728",
                marker="o",
                capsize=3,
                label="ours: mean ± std over seeds",
            )
        values = (paper.get("values") or {}) if metric == "auc" else {}
        shown = [(xs[k], v) for k, v in values.items() if v is not None and k in xs]
        if shown:
            ax.plot(*zip(*shown, strict=True), color="black", marker="s", ls=":", label="paper")
        if paper.get("best") in xs:
            ax.axvline(
                xs[paper["best"]],
                color="black",
                ls="--",
                lw=1,
                label=f"paper's best (text): {paper['best']}",
            )
        if metric == "auc" and not shown:
            ax.text(
                0.02,
                0.02,
                "paper's plotted values: not available (text only)",
                transform=ax.transAxes,
                fontsize=8,
            )
        if categorical:
            names = [
                f"{pt['label']}\n{list(pt['value'])}" if "value" in pt else pt["label"]
                for pt in points
            ]
            ax.set_xticks(range(len(points)), names)
            ax.set_xlim(-0.5, len(points) - 0.5)
        else:
            grid = [pt["x"] for pt in points]
            pad = 0.06 * (max(grid) - min(grid) or 1.0)
            ax.set_xticks(grid, [f"{x:g}" for x in grid])
            ax.set_xlim(min(grid) - pad, max(grid) + pad)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"test {'AUC' if metric == 'auc' else 'gAUC'} (%)")
        if not done:
            ax.text(0.5, 0.5, "not run", transform=ax.transAxes, ha="center")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="upper right")
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, png)
