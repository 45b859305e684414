"""CL4CTR's self-supervised signals on the feature embeddings."""

from __future__ import annotations

import math

import keras
from keras import ops

from tf4ctr_keras.layers.mlp_block import MLPBlock
from tf4ctr_keras.layers.utils import kernel_initializer_for
from tf4ctr_keras.registry import check_range, check_units, derive_seed, register

#: ``cos(x, y) = x . y / (max(|x|, eps) max(|y|, eps))``, as ``torch.nn.functional
#: .cosine_similarity``.
COSINE_EPS = 1e-8


def contrastive_losses(e1, e2, h1, h2):
    """CL4CTR's three terms, as pure functions of two views (float32 tensors).

    - ``contrastive = mean_b ||h1 - h2||^2`` (the projected FI-encoder outputs of the views),
    - ``alignment = mean_f mean_b ||e1_f - e2_f||^2`` (a field's two views stay close),
    - ``uniformity = mean_{f != g} mean_b cos(e1_f, e2_g)`` (different fields spread apart).

    Args:
        e1, e2: the two views of the embeddings, ``(batch, fields, dim)``.
        h1, h2: their projections, ``(batch, projection_dim)``.

    Returns:
        ``(contrastive, alignment, uniformity)`` scalars; uniformity is 0 with one field.
    """
    contrastive = ops.mean(ops.sum(ops.square(h1 - h2), axis=-1))
    alignment = ops.mean(ops.sum(ops.square(e1 - e2), axis=-1))
    n1 = e1 / ops.maximum(ops.norm(e1, axis=-1, keepdims=True), COSINE_EPS)
    n2 = e2 / ops.maximum(ops.norm(e2, axis=-1, keepdims=True), COSINE_EPS)
    fields = e1.shape[1]
    if fields < 2:
        return contrastive, alignment, ops.zeros((), "float32")
    cosine = ops.mean(ops.einsum("bfd,bgd->bfg", n1, n2), axis=0)  # (fields, fields)
    off_diagonal = ops.sum(cosine) - ops.trace(cosine)
    uniformity = off_diagonal / (fields * (fields - 1))
    return contrastive, alignment, uniformity


@register
class ContrastiveRegularization(keras.layers.Layer):
    """CL4CTR's self-supervised learning signals (Wang et al. WSDM 2023), as a layer.

    During training it makes two views of the embeddings by random masking (``Dropout(0.1)``
    each), encodes each with one FI encoder (an MLP ``D -> encoder_units -> D``, ``D = fields *
    dim``) and its own linear projector ``D -> dim``, and adds to the model's loss (Keras
    ``add_loss``)::

        contrastive_weight * L_cl + alignment_weight * (L_align + L_uniform)

    (:func:`contrastive_losses`). It returns its input unchanged, so the prediction tower after
    it sees the unmasked embeddings and inference costs nothing: the FI encoder and projectors
    shape the embeddings through the loss only. This is the CL4CTR the TF4CTR authors ran in
    FuxiCTR (``salmon1802/CETN``, ``CL4CTR_torch``): an MLP FI encoder, both views masked by
    dropout, alignment and uniformity on the two views' field vectors. FuxiCTR itself has no
    CL4CTR; the original code's alternative FI encoders (attention) and augmentations (feature
    and dimension masking) are not built.

    Args:
        encoder_units: hidden widths of the FI encoder. Default ``[400, 400, 400]``.
        contrastive_weight: weight of ``L_cl`` (CL4CTR's alpha). Default 1.
        alignment_weight: weight of ``L_align + L_uniform`` (CL4CTR's beta). Default 0.01.
        mask_rate: dropout rate of each view. Default 0.1.
        dropout: FI encoder dropout. Default 0.
        batch_norm: BatchNorm in the FI encoder. Default True.
        seed: optional int seed.

    Input and output: ``(batch, fields, dim)``.

    Example:
        >>> layer = ContrastiveRegularization([8])
        >>> layer(np.ones((4, 3, 2)), training=True).shape, len(layer.losses)
        ((4, 3, 2), 1)
    """

    def __init__(
        self,
        encoder_units=(400, 400, 400),
        contrastive_weight: float = 1.0,
        alignment_weight: float = 0.01,
        mask_rate: float = 0.1,
        dropout: float = 0.0,
        batch_norm: bool = True,
        seed: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.encoder_units = check_units("encoder_units", encoder_units)
        check_range("contrastive_weight", contrastive_weight, 0.0)
        check_range("alignment_weight", alignment_weight, 0.0)
        check_range("mask_rate", mask_rate, 0.0, 1.0, high_inclusive=False)
        check_range("dropout", dropout, 0.0, 1.0, high_inclusive=False)
        self.contrastive_weight = float(contrastive_weight)
        self.alignment_weight = float(alignment_weight)
        self.mask_rate = float(mask_rate)
        self.dropout = float(dropout)
        self.batch_norm = bool(batch_norm)
        self.seed = seed

    def build(self, input_shape) -> None:
        if len(input_shape) != 3:
            raise ValueError(
                "ContrastiveRegularization needs a (batch, fields, dim) input. "
                f"Received shape: {tuple(input_shape)}"
            )
        _, fields, dim = input_shape
        width = fields * dim
        self.encoder = MLPBlock(
            self.encoder_units,
            dropout=self.dropout,
            batch_norm=self.batch_norm,
            output_dim=width,
            seed=derive_seed(self.seed, 1),
            dtype=self.dtype_policy,
            name="fi_encoder",
        )
        self.encoder.build((None, width))
        self.projectors = []
        for k in range(2):
            projector = keras.layers.Dense(
                dim,
                kernel_initializer=kernel_initializer_for(None, self.seed, 10 + k),
                dtype="float32",
                name=f"projector_{k}",
            )
            projector.build((None, width))
            self.projectors.append(projector)
        self.masks = [
            keras.layers.Dropout(self.mask_rate, seed=derive_seed(self.seed, 20 + k))
            for k in range(2)
        ]

    def call(self, inputs, training=None):
        if training:
            views = [mask(inputs, training=True) for mask in self.masks]
            width = math.prod(inputs.shape[1:])
            h = [
                projector(
                    ops.cast(self.encoder(ops.reshape(v, (-1, width)), training=True), "float32")
                )
                for projector, v in zip(self.projectors, views, strict=True)
            ]
            e1, e2 = (ops.cast(v, "float32") for v in views)
            contrastive, alignment, uniformity = contrastive_losses(e1, e2, h[0], h[1])
            self.add_loss(
                self.contrastive_weight * contrastive
                + self.alignment_weight * (alignment + uniformity)
            )
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            encoder_units=self.encoder_units,
            contrastive_weight=self.contrastive_weight,
            alignment_weight=self.alignment_weight,
            mask_rate=self.mask_rate,
            dropout=self.dropout,
            batch_norm=self.batch_norm,
            seed=self.seed,
        )
        return config
