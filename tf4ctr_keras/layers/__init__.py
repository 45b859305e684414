"""Keras layers of TF4CTR."""

from tf4ctr_keras.layers.adaptive_factorization_network import AdaptiveFactorizationNetwork
from tf4ctr_keras.layers.compressed_interaction_network import CompressedInteractionNetwork
from tf4ctr_keras.layers.contrastive_regularization import ContrastiveRegularization
from tf4ctr_keras.layers.cross_network import CrossNetwork
from tf4ctr_keras.layers.cross_network_v2 import CrossNetworkV2
from tf4ctr_keras.layers.enhanced_cross_network import EnhancedCrossNetwork
from tf4ctr_keras.layers.euler_interaction import EulerInteraction
from tf4ctr_keras.layers.factorization_machine import FactorizationMachine
from tf4ctr_keras.layers.field_embedding import FieldEmbedding
from tf4ctr_keras.layers.fusion import (
    FUSIONS,
    ConcatFusion,
    FusionLayer,
    GumbelVotingFusion,
    MoEFusion,
    SumFusion,
    WeightedSumFusion,
)
from tf4ctr_keras.layers.linear_logit import LinearLogit
from tf4ctr_keras.layers.mlp_block import MLPBlock
from tf4ctr_keras.layers.multi_head_self_attention import MultiHeadSelfAttention
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
    "AdaptiveFactorizationNetwork",
    "CompressedInteractionNetwork",
    "ConcatFusion",
    "ContrastiveRegularization",
    "CrossNetwork",
    "CrossNetworkV2",
    "EnhancedCrossNetwork",
    "EulerInteraction",
    "FactorizationMachine",
    "FieldEmbedding",
    "FusionLayer",
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
