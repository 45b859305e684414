"""Exact evaluation metrics over a whole split: AUC, gAUC, logloss and calibration (NumPy).

``keras.metrics.AUC`` interpolates over a fixed set of thresholds; it is fine for progress bars
but not for model selection. These functions are exact (rank statistic with tied scores sharing
their average rank, as scikit-learn's ``roc_auc_score``) and vectorised, so gAUC over tens of
thousands of users costs one sort.
"""

from __future__ import annotations

import numpy as np


def _as_1d(name: str, values) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"`{name}` must be 1-D (or [n, 1]). Received shape: {array.shape}")
    return array


def _check(y_true, y_pred):
    y = _as_1d("y_true", y_true).astype(np.float64)
    p = _as_1d("y_pred", y_pred).astype(np.float64)
    if y.shape != p.shape:
        raise ValueError(f"`y_true` and `y_pred` differ in length: {y.shape[0]} vs {p.shape[0]}")
    if y.size == 0:
        raise ValueError("Cannot evaluate an empty split.")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("`y_true` must hold only 0 and 1.")
    if not np.isfinite(p).all():
        raise ValueError("`y_pred` holds NaN or infinite values.")
    return y, p


def _grouped_auc(y: np.ndarray, p: np.ndarray, groups: np.ndarray):
    """Per-group AUC via average ranks inside each group.

    Returns ``(auc, size)`` per group; groups with one class get ``auc = nan``.
    """
    order = np.lexsort((p, groups))
    g, s, t = groups[order], p[order], y[order]
    n = g.size
    group_start = np.r_[True, g[1:] != g[:-1]]
    group_id = np.cumsum(group_start) - 1
    starts = np.flatnonzero(group_start)
    # Tie blocks: same group and same score share the average of their 1-based ranks.
    tie_start = group_start | np.r_[True, s[1:] != s[:-1]]
    tie_id = np.cumsum(tie_start) - 1
    position = np.arange(n, dtype=np.float64) - starts[group_id] + 1.0  # rank within group
    tie_sum = np.bincount(tie_id, weights=position)
    tie_count = np.bincount(tie_id)
    rank = (tie_sum / tie_count)[tie_id]
    size = np.bincount(group_id).astype(np.float64)
    n_pos = np.bincount(group_id, weights=t)
    n_neg = size - n_pos
    rank_sum = np.bincount(group_id, weights=rank * t)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    auc[(n_pos == 0) | (n_neg == 0)] = np.nan
    return auc, size


def auc(y_true, y_pred) -> float:
    """Exact ROC AUC over the whole split (Mann-Whitney U with average ranks for ties).

    Raises:
        ValueError: if only one class is present, or on malformed input.
    """
    y, p = _check(y_true, y_pred)
    value, _ = _grouped_auc(y, p, np.zeros(y.shape[0], dtype=np.int64))
    if np.isnan(value[0]):
        raise ValueError("AUC is undefined when `y_true` holds a single class.")
    return float(value[0])


def gauc(y_true, y_pred, groups) -> float:
    """Group AUC: per-group AUC averaged with weights = group size (DIN, FuxiCTR ``gAUC``).

    Groups whose labels are all 0 or all 1 are skipped.

    Args:
        y_true: labels in {0, 1}.
        y_pred: scores.
        groups: group key per row (any sortable dtype, e.g. user ids).

    Raises:
        ValueError: if no group has both classes.
    """
    y, p = _check(y_true, y_pred)
    g = _as_1d("groups", groups)
    if g.shape != y.shape:
        raise ValueError(f"`groups` has {g.shape[0]} rows, `y_true` has {y.shape[0]}.")
    values, sizes = _grouped_auc(y, p, g)
    valid = ~np.isnan(values)
    if not valid.any():
        raise ValueError("gAUC is undefined: no group holds both classes.")
    return float(np.sum(values[valid] * sizes[valid]) / np.sum(sizes[valid]))


def logloss(y_true, y_pred, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy of probabilities, clipped to ``[eps, 1 - eps]``.

    ``eps = 1e-7`` as FuxiCTR's metric (``sklearn.metrics.log_loss(eps=1e-7)``).
    """
    y, p = _check(y_true, y_pred)
    p = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)))


#: Equal-width bins over [0, 1] of the expected calibration error.
CALIBRATION_BINS = 15


def calibration(y_true, y_pred, num_bins: int = CALIBRATION_BINS) -> dict:
    """Calibration of probabilities over the whole split: ratio, ECE and the reliability bins.

    ``ratio = mean(p) / mean(y)`` (1 for a calibrated model; > 1 over-predicts clicks), and the
    expected calibration error over ``num_bins`` equal-width bins of ``[0, 1]``::

        bin(p) = min(floor(p * num_bins), num_bins - 1)
        ECE = sum_b (n_b / N) * |mean(p in b) - mean(y in b)|

    Exact, as :func:`auc`: every prediction of the split enters once (a prediction of exactly 1
    falls in the last bin). No peer reports these; they are computed here so that every run
    records how well its probabilities, not only its ranking, match the clicks.

    Args:
        y_true: labels in {0, 1}.
        y_pred: probabilities in ``[0, 1]``.
        num_bins: number of equal-width bins. Default 15.

    Returns:
        ``{"ratio", "ece", "bins": {"count", "mean_prediction", "observed_rate"}}``, the bins as
        lists of ``num_bins`` values (an empty bin has count 0 and None means). ``ratio`` is
        None when the split holds no positive label.

    Example:
        >>> c = calibration([0, 1, 1, 0], [0.1, 0.9, 0.6, 0.7], num_bins=2)
        >>> # bin [0, 0.5): 0.1 vs 0; bin [0.5, 1]: 2.2 / 3 vs 2 / 3, so ECE = (0.1 + 0.2) / 4
        >>> round(c["ece"], 6), c["ratio"]  # ratio = mean(p) / mean(y) = 0.575 / 0.5
        (0.075, 1.15)
    """
    if not isinstance(num_bins, int) or isinstance(num_bins, bool) or num_bins < 1:
        raise ValueError(f"`num_bins` must be a positive int. Received: `num_bins={num_bins!r}`")
    y, p = _check(y_true, y_pred)
    if p.min() < 0.0 or p.max() > 1.0:
        raise ValueError("`y_pred` must hold probabilities in [0, 1].")
    bins = np.minimum(np.floor(p * num_bins).astype(np.int64), num_bins - 1)
    count = np.bincount(bins, minlength=num_bins).astype(np.float64)
    sum_p = np.bincount(bins, weights=p, minlength=num_bins)
    sum_y = np.bincount(bins, weights=y, minlength=num_bins)
    filled = count > 0
    mean_p = np.divide(sum_p, count, out=np.zeros(num_bins), where=filled)
    mean_y = np.divide(sum_y, count, out=np.zeros(num_bins), where=filled)
    # sum_b (n_b / N) |mean_p_b - mean_y_b| == sum_b |sum_p_b - sum_y_b| / N
    ece = float(np.sum(np.abs(sum_p - sum_y)) / y.size)
    positives = float(np.sum(y))
    return {
        "ratio": float(np.sum(p) / positives) if positives > 0 else None,
        "ece": ece,
        "bins": {
            "count": [int(c) for c in count],
            "mean_prediction": [
                float(v) if f else None for v, f in zip(mean_p, filled, strict=True)
            ],
            "observed_rate": [float(v) if f else None for v, f in zip(mean_y, filled, strict=True)],
        },
    }


def evaluate_predictions(y_true, y_pred, groups=None) -> dict[str, float]:
    """``{"auc", "logloss"}`` plus ``"gauc"`` when `groups` is given."""
    result = {"auc": auc(y_true, y_pred), "logloss": logloss(y_true, y_pred)}
    if groups is not None:
        result["gauc"] = gauc(y_true, y_pred, groups)
    return result
