"""Simple-side encoders of TF4CTR (paper Table V) and the part makers the builders share.

Each entry of :data:`ENCODERS` is registered once with its hyperparameters and their defaults
(this project's defaults; the reference's logs tune only some of them) and a builder
``builder(context: BuildContext, **hyperparameters) -> SimpleSide``: the encoder layer, plus
the wide (LR) logit and how it joins, that the TF4CTR variant named after a baseline uses. The
baseline each encoder comes from is its alias.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras

from tf4ctr_keras.layers.compressed_interaction_network import CompressedInteractionNetwork
from tf4ctr_keras.layers.cross_network import CrossNetwork
from tf4ctr_keras.layers.cross_network_v2 import CrossNetworkV2
from tf4ctr_keras.layers.factorization_machine import FactorizationMachine
from tf4ctr_keras.layers.linear_logit import LinearLogit
from tf4ctr_keras.layers.mlp_block import MLPBlock
from tf4ctr_keras.layers.multi_head_self_attention import MultiHeadSelfAttention
from tf4ctr_keras.registry import SIMPLE_SEED, BuildContext, Registry


@dataclasses.dataclass(frozen=True)
class SimpleSide:
    """What a simple encoder variant contributes to a :class:`~tf4ctr_keras.TF4CTR` model.

    Attributes:
        encoder: layer on ``e_simple``, or None (a wide-only simple side).
        wide: optional wide logit layer on the id dict.
        wide_position: ``"simple"`` (added to the simple side) or ``"fused"`` (to the fused
            logit).
        simple_head: map the simple side to its logit with ``Dense(1)``.
    """

    encoder: keras.layers.Layer | None
    wide: keras.layers.Layer | None = None
    wide_position: str = "simple"
    simple_head: bool = True


# -- part makers (the seeds and names here fix every initial weight: do not change them) --------
def mlp_tower(context: BuildContext, units: Sequence[int], seed_offset: int, name: str):
    """An MLP tower with the model's dropout and BatchNorm."""
    return MLPBlock(
        list(units),
        dropout=context.dropout,
        batch_norm=context.batch_norm,
        seed=context.derive_seed(seed_offset),
        name=name,
    )


def linear_logit(context: BuildContext, use_bias: bool = True) -> LinearLogit:
    """The wide (LR) logit over the model's fields.

    Sequence fields are sum-pooled here whatever the model's pooling: FuxiCTR's
    ``LogisticRegression`` embeds with dimension 1, for which its ``FeatureEmbeddingDict`` gives
    every sequence field a ``MaskedSumPooling`` encoder (the embedding tables keep the model's
    pooling, ``MaskedAveragePooling`` by default). A sequence's wide term is so the sum of its
    tokens' weights, as a one-hot LR over the tokens."""
    sequences = {name: "sum" for name in context.sequence_fields or {}}
    return LinearLogit(
        context.vocab_sizes,
        use_bias=use_bias,
        sequence_fields=sequences,
        numeric_fields=context.numeric_fields,
        embedding_l2=context.embedding_l2,
        seed=context.derive_seed(77),
        name="wide",
    )


def cin(context: BuildContext, layer_sizes, output_dim=None) -> CompressedInteractionNetwork:
    return CompressedInteractionNetwork(
        list(layer_sizes), output_dim=output_dim, seed=context.derive_seed(40), name="cin"
    )


def cross(context: BuildContext, num_layers: int) -> CrossNetwork:
    return CrossNetwork(num_layers, seed=context.derive_seed(41), name="cross")


def cross_v2(context: BuildContext, num_layers: int) -> CrossNetworkV2:
    return CrossNetworkV2(num_layers, seed=context.derive_seed(42), name="cross_v2")


# -- the simple-side variants ---------------------------------------------------------------------
def build_mlp(context: BuildContext) -> SimpleSide:
    """TF4CTR's own MLP tower of ``context.simple_units``."""
    return SimpleSide(mlp_tower(context, context.simple_units, SIMPLE_SEED, "simple_encoder"))


def build_fm(context: BuildContext) -> SimpleSide:
    """DeepFM's side: FM + LR, through the simple head."""
    return SimpleSide(FactorizationMachine(name="fm"), wide=linear_logit(context))


def build_linear(context: BuildContext) -> SimpleSide:
    """WideDeep's side: LR alone (no bias). The reference feeds WSF the LR logit directly and
    the other fusions a head on it."""
    return SimpleSide(
        None, wide=linear_logit(context, use_bias=False), simple_head=context.fusion != "wsf"
    )


def build_cin(context: BuildContext, cin_layer_sizes) -> SimpleSide:
    """xDeepFM's side: CIN mapped to the complex tower's width; LR (no bias) added to the fused
    logit, as the reference's TF4CTR-xDeepFM."""
    return SimpleSide(
        cin(context, cin_layer_sizes, output_dim=list(context.complex_units)[-1]),
        wide=linear_logit(context, use_bias=False),
        wide_position="fused",
    )


def build_cross(context: BuildContext, cross_layers) -> SimpleSide:
    """DCN's cross network."""
    return SimpleSide(cross(context, cross_layers))


def build_cross_v2(context: BuildContext, cross_layers) -> SimpleSide:
    """DCNv2's cross network."""
    return SimpleSide(cross_v2(context, cross_layers))


def build_attention(
    context: BuildContext,
    attention_dim,
    attention_heads,
    attention_layers,
    attention_residual,
    attention_scale,
) -> SimpleSide:
    """AutoInt's interacting layers; the model's dropout drops attention weights (FuxiCTR
    passes ``net_dropout`` to every interacting layer)."""
    return SimpleSide(
        MultiHeadSelfAttention(
            attention_dim=attention_dim,
            num_heads=attention_heads,
            num_layers=attention_layers,
            use_residual=attention_residual,
            use_scale=attention_scale,
            dropout=context.dropout,
            seed=context.derive_seed(43),
            name="attention",
        )
    )


ENCODERS = Registry("simple encoder")
ENCODERS.add("mlp", build_mlp, aliases=["dualmlp"])
ENCODERS.add("fm", build_fm, aliases=["deepfm"])
ENCODERS.add("linear", build_linear, aliases=["widedeep", "wide"])
ENCODERS.add("cin", build_cin, defaults={"cin_layer_sizes": (64, 64)}, aliases=["xdeepfm"])
ENCODERS.add("cross", build_cross, defaults={"cross_layers": 3}, aliases=["dcn"])
ENCODERS.add("cross_v2", build_cross_v2, defaults={"cross_layers": 3}, aliases=["dcnv2"])
# AutoInt: FuxiCTR's ``AutoInt_default`` model config (3 interacting layers, 2 heads, no
# scaling, residual on) with ``attention_dim`` equal to the embedding width as there (40 = d
# there; 16 = d here), so that the residual is the identity. FuxiCTR's constructor defaults
# (2 layers, 1 head, dim 8) are a tiny-data template, not what its configs train.
ENCODERS.add(
    "attention",
    build_attention,
    defaults={
        "attention_dim": 16,
        "attention_heads": 2,
        "attention_layers": 3,
        "attention_residual": True,
        "attention_scale": False,
    },
    aliases=["autoint"],
)
