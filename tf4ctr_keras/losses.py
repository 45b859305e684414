"""Twin Focus loss (TF4CTR section 3.5) and the paper's loss baselines (Focal, R-CE).

The maths is in pure functions on float32 tensors; the ``keras.losses.Loss`` classes validate
their arguments, call them and serialize.
"""

from __future__ import annotations

import keras
from keras import ops

from tf4ctr_keras.registry import Registry, check_range, register


def _labels(y_true):
    """Labels as float32 ``(batch, 1)`` whatever their incoming shape ``[batch]``/``[batch,1]``."""
    return ops.reshape(ops.cast(y_true, "float32"), (-1, 1))


def bce_with_logits(y, logits):
    """Elementwise ``-[y log p + (1 - y) log(1 - p)]`` with ``p = sigmoid(logits)``.

    Computed from logits (``softplus``), which is exact where ``log(sigmoid)`` underflows;
    PyTorch's ``binary_cross_entropy`` on probabilities clamps the log at -100 instead, which
    differs only at saturation.
    """
    return y * ops.softplus(-logits) + (1.0 - y) * ops.softplus(logits)


def twin_focus_loss(y_true, twin_logits, alpha: float, c: float, gamma: float):
    """Per-sample Twin Focus loss ``alpha * l_simple + (1 - alpha) * l_complex``.

    With ``p = sigmoid(z)`` per head and the two-sided ``p_t = y p + (1 - y)(1 - p)``:

    ``l_simple  = (c + p_t)^gamma       * BCE(z_simple)``
    ``l_complex = ((2 - c) - p_t)^gamma * BCE(z_complex)``

    as the reference ``TFLoss`` computes it: the modulating factor is not detached, and
    negatives are weighted symmetrically (the paper writes only the ``y = 1`` branch). The mean
    over a batch of this per-sample value equals the reference's
    ``alpha * mean(l_simple) + (1 - alpha) * mean(l_complex)``.

    Args:
        y_true: labels in {0, 1}, ``(batch,)`` or ``(batch, 1)``.
        twin_logits: ``(batch, 2)`` simple and complex tower logits, in that order.
        alpha: weight of the simple term.
        c: focus offset; the complex factor uses ``m = 2 - c``.
        gamma: focusing exponent.

    Returns:
        float32 ``(batch,)``.
    """
    z = ops.cast(twin_logits, "float32")
    y = _labels(y_true)
    p = ops.sigmoid(z)
    p_t = y * p + (1.0 - y) * (1.0 - p)  # (batch, 2)
    bce = bce_with_logits(y, z)  # (batch, 2)
    simple = ops.power(c + p_t[:, 0], gamma) * bce[:, 0]
    complex_ = ops.power((2.0 - c) - p_t[:, 1], gamma) * bce[:, 1]
    return alpha * simple + (1.0 - alpha) * complex_


def _probabilities_and_bce(y_true, y_pred, from_logits: bool, epsilon: float):
    pred = ops.cast(y_pred, "float32")
    y = ops.reshape(ops.cast(y_true, "float32"), ops.shape(pred))
    if from_logits:
        return y, ops.sigmoid(pred), bce_with_logits(y, pred)
    p = ops.clip(pred, epsilon, 1.0 - epsilon)
    bce = -(y * ops.log(p) + (1.0 - y) * ops.log(1.0 - p))
    return y, p, bce


def focal_loss(y_true, y_pred, gamma: float = 2.0, from_logits: bool = False, epsilon=1e-7):
    """Focal loss ``(1 - p_t)^gamma * BCE`` (Lin et al.), ``p_t`` not detached (the reference's
    deleted ``FocalLoss``). Returns the per-sample loss, mean over the last axis."""
    y, p, bce = _probabilities_and_bce(y_true, y_pred, from_logits, epsilon)
    p_t = y * p + (1.0 - y) * (1.0 - p)
    return ops.mean(ops.power(1.0 - p_t, gamma) * bce, axis=-1)


def rce_loss(y_true, y_pred, gamma: float = 0.01, from_logits: bool = False, epsilon=1e-7):
    """R-CE loss ``p_t^gamma * BCE`` with ``p_t`` detached (the reference's deleted
    ``R_CE_Loss``): well-classified samples keep their weight, hard ones lose it."""
    y, p, bce = _probabilities_and_bce(y_true, y_pred, from_logits, epsilon)
    p_t = ops.stop_gradient(y * p + (1.0 - y) * (1.0 - p))
    return ops.mean(ops.power(p_t, gamma) * bce, axis=-1)


@register
class TwinFocusLoss(keras.losses.Loss):
    """Twin Focus loss (TF loss, TF4CTR section 3.5, Eq. 7), as the reference computes it.

    ``call(y_true, y_pred)`` takes labels ``[batch]`` or ``[batch, 1]`` and ``y_pred`` of
    shape ``[batch, 2]`` holding the simple and complex tower **logits**, and returns
    ``alpha * l_simple + (1 - alpha) * l_complex`` per sample (see :func:`twin_focus_loss`), so
    Keras' default mean reduction gives ``alpha * mean(l_simple) + (1 - alpha) * mean(l_complex)``
    and ``sample_weight`` works. The TF4CTR model's ``twin_logits`` output is that tensor:

    >>> model.compile(loss={"ctr": "binary_crossentropy",
    ...                     "twin_logits": TwinFocusLoss(alpha=0.25, c=0.8, gamma=2.0)})

    Args:
        alpha: weight of the simple term, in [0, 1]. Default 0.25.
        c: focus offset, in [0, 1] so that ``(2 - c) - p_t >= 0``. Default 0.8.
        gamma: focusing exponent, >= 0; 0 reduces the loss to plain BCE on both heads.
            Default 2.0.
        reduction, name, dtype: as ``keras.losses.Loss``.
    """

    def __init__(
        self,
        alpha: float = 0.25,
        c: float = 0.8,
        gamma: float = 2.0,
        reduction: str = "sum_over_batch_size",
        name: str = "twin_focus_loss",
        dtype=None,
    ) -> None:
        check_range("alpha", alpha, 0.0, 1.0)
        check_range("c", c, 0.0, 1.0)
        check_range("gamma", gamma, 0.0)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.alpha = float(alpha)
        self.c = float(c)
        self.gamma = float(gamma)

    def call(self, y_true, y_pred):
        if y_pred.shape.rank != 2 or y_pred.shape[-1] != 2:
            raise ValueError(
                "TwinFocusLoss expects y_pred of shape [batch, 2] (simple and complex logits). "
                f"Received shape: {tuple(y_pred.shape)}"
            )
        return twin_focus_loss(y_true, y_pred, self.alpha, self.c, self.gamma)

    def get_config(self) -> dict:
        return {**super().get_config(), "alpha": self.alpha, "c": self.c, "gamma": self.gamma}


class _ProbabilityLoss(keras.losses.Loss):
    def __init__(self, gamma, from_logits, reduction, name, dtype) -> None:
        check_range("gamma", gamma, 0.0)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.gamma = float(gamma)
        self.from_logits = bool(from_logits)

    def get_config(self) -> dict:
        return {**super().get_config(), "gamma": self.gamma, "from_logits": self.from_logits}


@register
class FocalLoss(_ProbabilityLoss):
    """Binary focal loss ``(1 - p_t)^gamma * BCE`` on the fused prediction (paper Table II).

    Args:
        gamma: focusing exponent >= 0. Default 2.0 (the reference).
        from_logits: whether ``y_pred`` holds logits. Default False (probabilities, as the
            TF4CTR model's ``ctr`` output).
    """

    def __init__(
        self,
        gamma=2.0,
        from_logits=False,
        reduction="sum_over_batch_size",
        name="focal_loss",
        dtype=None,
    ) -> None:
        super().__init__(gamma, from_logits, reduction, name, dtype)

    def call(self, y_true, y_pred):
        return focal_loss(y_true, y_pred, self.gamma, self.from_logits)


@register
class RCELoss(_ProbabilityLoss):
    """R-CE loss ``sg(p_t)^gamma * BCE`` on the fused prediction (paper Table II).

    Args:
        gamma: exponent >= 0. Default 0.01 (the reference).
        from_logits: whether ``y_pred`` holds logits. Default False.
    """

    def __init__(
        self,
        gamma=0.01,
        from_logits=False,
        reduction="sum_over_batch_size",
        name="rce_loss",
        dtype=None,
    ) -> None:
        super().__init__(gamma, from_logits, reduction, name, dtype)

    def call(self, y_true, y_pred):
        return rce_loss(y_true, y_pred, self.gamma, self.from_logits)


def build_twin_focus(alpha: float = 0.25, c: float = 0.8, gamma: float = 2.0) -> TwinFocusLoss:
    return TwinFocusLoss(alpha, c, gamma)


def build_bce() -> keras.losses.Loss:
    return keras.losses.BinaryCrossentropy()


def build_focal(focal_gamma: float = 2.0) -> FocalLoss:
    return FocalLoss(gamma=focal_gamma)


def build_rce(rce_gamma: float = 0.01) -> RCELoss:
    return RCELoss(gamma=rce_gamma)


#: Builders are called ``builder(**hyperparameters) -> keras.losses.Loss``; the hyperparameter
#: names are the run config's ``loss`` keys. ``tf`` is the Twin Focus loss on the twin logits
#: (the fused ``ctr`` keeps log loss); the others apply to ``ctr``.
LOSSES = Registry("loss")
LOSSES.add(
    "tf",
    build_twin_focus,
    defaults={"alpha": 0.25, "c": 0.8, "gamma": 2.0},
    space={
        "alpha": {"min": 0.15, "max": 0.65, "step": 0.1},
        "c": {"min": 0.5, "max": 1.0, "step": 0.1},
        "gamma": [1.0, 2.0, 3.0],
    },
)
LOSSES.add("bce", build_bce)
LOSSES.add("focal", build_focal, defaults={"focal_gamma": 2.0})
LOSSES.add("rce", build_rce, defaults={"rce_gamma": 0.01})


def build_loss(name: str, **hyperparameters) -> keras.losses.Loss:
    """The loss `name` of :data:`LOSSES` with its declared hyperparameters taken from
    `hyperparameters` (defaults for the missing ones; other losses' keys are ignored)."""
    variant = LOSSES.get(name)
    unknown = sorted(set(hyperparameters) - set(LOSSES.hyperparameters()))
    if unknown:
        raise TypeError(
            f"Unknown loss options {unknown}. Valid options: {sorted(LOSSES.hyperparameters())}."
        )
    return variant.builder(**{k: hyperparameters.get(k, d) for k, d in variant.defaults.items()})
