"""Keras layers of TF4CTR."""

from tf4ctr_keras.layers.field_embedding import FieldEmbedding
from tf4ctr_keras.layers.fusion import (
    FUSIONS,
    ConcatFusion,
    GumbelVotingFusion,
    MoEFusion,
    SumFusion,
    WeightedSumFusion,
)
from tf4ctr_keras.layers.interactions import (
    CompressedInteractionNetwork,
    CrossNetwork,
    CrossNetworkV2,
    FactorizationMachine,
    LinearLogit,
    MultiHeadSelfAttention,
)
from tf4ctr_keras.layers.mlp_block import MLPBlock
from tf4ctr_keras.layers.sample_selection import (
    SELECTORS,
    GatedSampleSelector,
    MMoESampleSelector,
    SeparateEmbeddingSelector,
    SharedEmbeddingSelector,
)

__all__ = [
    "FUSIONS",
    "SELECTORS",
    "CompressedInteractionNetwork",
    "ConcatFusion",
    "CrossNetwork",
    "CrossNetworkV2",
    "FactorizationMachine",
    "FieldEmbedding",
    "GatedSampleSelector",
    "GumbelVotingFusion",
    "LinearLogit",
    "MLPBlock",
    "MMoESampleSelector",
    "MoEFusion",
    "MultiHeadSelfAttention",
    "SeparateEmbeddingSelector",
    "SharedEmbeddingSelector",
    "SumFusion",
    "WeightedSumFusion",
]
