"""tf4ctr-keras: TF4CTR (Twin Focus Framework for CTR prediction) in Keras 3."""

from tf4ctr_keras import layers, metrics
from tf4ctr_keras.losses import FocalLoss, RCELoss, TwinFocusLoss, twin_focus_loss
from tf4ctr_keras.models import (
    CTR_OUTPUT,
    MODELS,
    TF4CTR,
    TWIN_OUTPUT,
    build_dnn,
    build_model,
    build_tf4ctr,
)

__version__ = "0.1.0"

__all__ = [
    "CTR_OUTPUT",
    "MODELS",
    "TF4CTR",
    "TWIN_OUTPUT",
    "FocalLoss",
    "RCELoss",
    "TwinFocusLoss",
    "build_dnn",
    "build_model",
    "build_tf4ctr",
    "layers",
    "metrics",
    "twin_focus_loss",
]
