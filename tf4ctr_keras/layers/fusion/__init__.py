"""Dynamic Fusion Module (DFM, TF4CTR section 3.6): the fusion layers and their registry.

Every fusion takes ``[h_simple, h_complex, z_simple, z_complex]`` and returns the fused logit
``(batch, 1)`` in float32. One module per fusion; one registration line each below, with the
hyperparameters the model builder passes it and their defaults (they become config keys).
"""

from tf4ctr_keras.layers.fusion.base import FusionLayer, fusion_builder
from tf4ctr_keras.layers.fusion.concat_fusion import ConcatFusion
from tf4ctr_keras.layers.fusion.gumbel_voting_fusion import GumbelVotingFusion
from tf4ctr_keras.layers.fusion.moe_fusion import MoEFusion
from tf4ctr_keras.layers.fusion.sum_fusion import SumFusion
from tf4ctr_keras.layers.fusion.weighted_sum_fusion import WeightedSumFusion
from tf4ctr_keras.registry import PART_HYPERPARAMETERS, Registry

#: Builders are called ``builder(context: BuildContext, **hyperparameters) -> fusion layer``.
FUSIONS = Registry("fusion", namespace=PART_HYPERPARAMETERS)
FUSIONS.add("wsf", fusion_builder(WeightedSumFusion), aliases=["weighted_sum"])
FUSIONS.add(
    "vf",
    fusion_builder(GumbelVotingFusion),
    defaults={"temperature": 0.8, "noisy_inference": False},
    aliases=["voting", "gumbel"],
)
FUSIONS.add("cf", fusion_builder(ConcatFusion), aliases=["concat"])
FUSIONS.add("moef", fusion_builder(MoEFusion), defaults={"num_experts": 2}, aliases=["moe"])
FUSIONS.add("sum", fusion_builder(SumFusion), aliases=["none"])

__all__ = [
    "FUSIONS",
    "ConcatFusion",
    "FusionLayer",
    "GumbelVotingFusion",
    "MoEFusion",
    "SumFusion",
    "WeightedSumFusion",
    "fusion_builder",
]
