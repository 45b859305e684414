"""TF4CTR model class and builders."""

from tf4ctr_keras.models.builders import (
    MODELS,
    build_dnn,
    build_model,
    build_tf4ctr,
)
from tf4ctr_keras.models.tf4ctr import CTR_OUTPUT, TF4CTR, TWIN_OUTPUT

__all__ = [
    "CTR_OUTPUT",
    "MODELS",
    "TF4CTR",
    "TWIN_OUTPUT",
    "build_dnn",
    "build_model",
    "build_tf4ctr",
]
