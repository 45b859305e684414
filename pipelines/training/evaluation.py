"""Exact evaluation of a model over a whole split (shared by training, tuning and reports)."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from pipelines.data.manifest import GROUP_FEATURE
from tf4ctr_keras.metrics import calibration, evaluate_predictions, gauc
from tf4ctr_keras.models.tf4ctr import CTR_OUTPUT


class SplitEvaluator:
    """Computes AUC, logloss (and gAUC when the dataset has a group key) on a fixed split, and
    on request the calibration of its predictions (:meth:`with_calibration`).

    The split is read in its deterministic order; labels and group ids are collected once, and
    each call only runs the model forward.

    Args:
        dataset: a ``tf.data.Dataset`` of ``(features, label)`` in deterministic order.
        group_key: the field that defines gAUC groups (the user), or None. Groups are the
            raw values (the dataset's ``GROUP_FEATURE``, from ``make_dataset(...,
            with_group=True)``) as the reference's; data without it groups by the field's ids.
        predict_fn: ``(model, features_dataset) -> probabilities``; default ``model.predict``
            (multi-worker training passes a local forward pass: ``predict`` would shard the
            split across the workers).
    """

    def __init__(
        self,
        dataset: tf.data.Dataset,
        group_key: str | None = None,
        predict_fn: Callable[[keras.Model, tf.data.Dataset], np.ndarray] | None = None,
    ) -> None:
        self.dataset = dataset
        self.group_key = group_key
        self.last_predictions: np.ndarray | None = None  # of the latest call
        self.predict_fn = predict_fn
        labels, groups, ids = [], [], []
        batches = 0
        for features, label in dataset:
            batches += 1
            labels.append(label.numpy())
            if group_key is not None:  # the raw-value group where the data has it
                groups.append(features.get(GROUP_FEATURE, features[group_key]).numpy().ravel())
                if GROUP_FEATURE in features:
                    ids.append(features[group_key].numpy().ravel())
        if not labels:
            raise ValueError("The evaluation split is empty.")
        self.labels = np.concatenate(labels).reshape(-1)
        self.groups = np.concatenate(groups) if group_key is not None else None
        # the encoded ids of the group field: gAUC's grouping before raw values (issue 17),
        # reported beside it in the final metrics to show what the change of definition moved
        self.id_groups = np.concatenate(ids) if ids else None
        # A known length lets Keras' predict size its progress and not warn at the end.
        self._features = dataset.map(
            lambda features, label: {k: v for k, v in features.items() if k != GROUP_FEATURE}
        ).apply(tf.data.experimental.assert_cardinality(batches))

    def predict(self, model: keras.Model, callbacks=None) -> np.ndarray:
        """The split's CTR predictions; ``callbacks`` go to ``model.predict``."""
        if self.predict_fn is not None:
            outputs = self.predict_fn(model, self._features)
        else:
            outputs = model.predict(self._features, verbose=0, callbacks=callbacks)
        ctr = outputs[CTR_OUTPUT] if isinstance(outputs, dict) else outputs
        ctr = np.asarray(ctr, dtype=np.float64).reshape(-1)
        if ctr.shape != self.labels.shape:
            raise RuntimeError(
                f"Got {ctr.shape[0]} predictions for {self.labels.shape[0]} labels: the split's "
                "order is not deterministic."
            )
        return ctr

    def __call__(self, model: keras.Model) -> dict[str, float]:
        # kept for the schedule: the best epoch's predictions are the restored model's, so the
        # final metrics need no second forward pass over the split (about 1 s on Frappe)
        self.last_predictions = self.predict(model)
        return evaluate_predictions(self.labels, self.last_predictions, self.groups)

    def with_calibration(
        self, model: keras.Model, predictions: np.ndarray | None = None
    ) -> tuple[dict[str, float], dict]:
        """The split's metrics (as a call) and its calibration (ratio, ECE over 15 bins and the
        bins, :func:`tf4ctr_keras.metrics.calibration`) from one forward pass. Where groups are
        raw values, the metrics also hold ``gauc_by_id``: the same predictions grouped by the
        group field's encoded id (every value below the vocabulary's min count or unseen in
        train is then one group, id 0), the definition used before raw-value groups.

        ``predictions``: the model's predictions on this split, made earlier with the same
        weights (the schedule's ``best_predictions``); None runs the forward pass."""
        if predictions is None:
            predictions = self.predict(model)
        elif predictions.shape != self.labels.shape:
            raise ValueError(
                f"Got {predictions.shape[0]} predictions for {self.labels.shape[0]} labels."
            )
        metrics = evaluate_predictions(self.labels, predictions, self.groups)
        if self.id_groups is not None:
            metrics["gauc_by_id"] = gauc(self.labels, predictions, self.id_groups)
        return metrics, calibration(self.labels, predictions)


def monitor_value(metrics: dict[str, float], monitor: str) -> float:
    """The reference's monitor: ``auc``, ``gauc`` or ``auc+gauc`` (logloss weight 0)."""
    return float(sum(metrics[name] for name in monitor.split("+")))


EvaluateFn = Callable[[keras.Model], dict]
