"""Dynamic Fusion Module (DFM, TF4CTR section 3.6): five ways to fuse the two encoders.

Every fusion layer takes ``[h_simple, h_complex, z_simple, z_complex]``: the two encoder
representations ``(batch, width)`` and their auxiliary logits ``(batch, 1)``, and returns the
fused logit ``(batch, 1)`` in float32 (fusion maths never runs in reduced precision).
"""

from __future__ import annotations

import keras
from keras import ops

from tf4ctr_keras.layers.utils import build_once, derive_seed
from tf4ctr_keras.registry import Registry, check_range, register

FUSIONS: Registry[type] = Registry("fusion")


def _dense(units: int, seed: int | None, offset: int, name: str) -> keras.layers.Dense:
    return keras.layers.Dense(
        units,
        kernel_initializer=keras.initializers.GlorotNormal(seed=derive_seed(seed, offset)),
        dtype="float32",
        name=name,
    )


class _Fusion(keras.layers.Layer):
    """Input unpacking and config shared by the fusion layers (abstract)."""

    #: Whether the fused logit is built from the auxiliary logits z_s and z_c.
    uses_logits = True

    def __init__(self, seed: int | None = None, **kwargs) -> None:
        kwargs.setdefault("dtype", "float32")  # fusion maths stays float32 under mixed precision
        super().__init__(**kwargs)
        self.seed = seed

    @staticmethod
    def _unpack(inputs):
        if not isinstance(inputs, list | tuple) or len(inputs) != 4:
            raise ValueError(
                "A fusion layer takes [h_simple, h_complex, z_simple, z_complex]. "
                f"Received: {type(inputs).__name__} of length {len(inputs)}"
            )
        return [ops.cast(x, "float32") for x in inputs]

    def build(self, input_shape) -> None:
        self.built = True

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)

    def get_config(self) -> dict:
        return {**super().get_config(), "seed": self.seed}


@register
class WeightedSumFusion(_Fusion):
    """Weighted-sum fusion (WSF in TF4CTR section 3.6): ``z = w_1 z_s + w_2 z_c``.

    ``w`` is a trainable pair initialised to ``[0.5, 0.5]`` with no softmax and no positivity
    constraint, exactly as the reference (its 2x1 parameter).

    Args:
        initial_weight: initial value of both weights. Default 0.5.
    """

    def __init__(self, initial_weight: float = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        check_range("initial_weight", initial_weight)
        self.initial_weight = float(initial_weight)

    def build(self, input_shape) -> None:
        self.fusion_weights = self.add_weight(
            name="fusion_weights",
            shape=(2,),
            initializer=keras.initializers.Constant(self.initial_weight),
            dtype="float32",
        )
        self.built = True

    def call(self, inputs):
        _, _, z_s, z_c = self._unpack(inputs)
        return self.fusion_weights[0] * z_s + self.fusion_weights[1] * z_c

    def get_config(self) -> dict:
        return {**super().get_config(), "initial_weight": self.initial_weight}


@register
class GumbelVotingFusion(_Fusion):
    """Voting fusion with Gumbel-softmax (VF in TF4CTR section 3.6, Eq. 9).

    ``pi = [Dense(h_s), Dense(h_c)]``, ``p = softmax((pi + g) / tau)`` with Gumbel noise
    ``g = -log(-log(U))``, and ``z = p_1 z_s + p_2 z_c``. As the reference, no log is applied
    to ``pi``. The reference samples noise at inference too (``F.gumbel_softmax`` has no train
    switch); here inference is deterministic (``g = 0``) unless ``noisy_inference=True``. Each
    voting head takes its own encoder's width (the reference builds both with the simple width,
    which crashes unless the widths are equal).

    Args:
        temperature: tau > 0. Default 0.8 (the reference).
        noisy_inference: keep Gumbel noise outside training, as the reference. Default False.
        seed: optional int seed for the noise and the heads.
    """

    def __init__(self, temperature: float = 0.8, noisy_inference: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        check_range("temperature", temperature, 0.0, low_inclusive=False)
        self.temperature = float(temperature)
        self.noisy_inference = bool(noisy_inference)
        self.simple_vote = _dense(1, self.seed, 0, "simple_vote")
        self.complex_vote = _dense(1, self.seed, 1, "complex_vote")
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def build(self, input_shape) -> None:
        build_once(self.simple_vote, input_shape[0])
        build_once(self.complex_vote, input_shape[1])
        self.built = True

    def voting_probabilities(self, h_s, h_c, training=False):
        """Returns the two voting weights ``(batch, 2)`` (for inspection and tests)."""
        logits = ops.concatenate([self.simple_vote(h_s), self.complex_vote(h_c)], axis=-1)
        if training or self.noisy_inference:
            uniform = keras.random.uniform(
                ops.shape(logits), minval=1e-10, maxval=1.0, seed=self.seed_generator
            )
            logits = logits - ops.log(-ops.log(uniform))
        return ops.softmax(logits / self.temperature, axis=-1)

    def call(self, inputs, training=None):
        h_s, h_c, z_s, z_c = self._unpack(inputs)
        p = self.voting_probabilities(h_s, h_c, training=bool(training))
        return p[:, :1] * z_s + p[:, 1:] * z_c

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(temperature=self.temperature, noisy_inference=self.noisy_inference)
        return config


@register
class ConcatFusion(_Fusion):
    """Concatenation fusion (CF in TF4CTR section 3.6, Eq. 10): ``z = W [h_s || h_c] + b``."""

    uses_logits = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.output_layer = _dense(1, self.seed, 0, "output")

    def build(self, input_shape) -> None:
        build_once(self.output_layer, (None, input_shape[0][-1] + input_shape[1][-1]))
        self.built = True

    def call(self, inputs):
        h_s, h_c, _, _ = self._unpack(inputs)
        return self.output_layer(ops.concatenate([h_s, h_c], axis=-1))


@register
class MoEFusion(_Fusion):
    """Mixture-of-experts fusion (MoEF in TF4CTR section 3.6, Eq. 11).

    On ``c = [h_s || h_c]``: gates ``g = softmax(W_g c)``, experts ``m_i = w_i . c + b_i`` (one
    linear unit each, as the reference), ``z = sum_i g_i m_i``.

    Args:
        num_experts: number of experts and gate outputs. Default 2.
    """

    uses_logits = False

    def __init__(self, num_experts: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(num_experts, int) or num_experts < 2:
            raise ValueError(f"`num_experts` must be >= 2. Received: `num_experts={num_experts!r}`")
        self.num_experts = num_experts
        self.gate = _dense(num_experts, self.seed, 0, "gate")
        self.experts = _dense(num_experts, self.seed, 1, "experts")

    def build(self, input_shape) -> None:
        width = (None, input_shape[0][-1] + input_shape[1][-1])
        build_once(self.gate, width)
        build_once(self.experts, width)
        self.built = True

    def call(self, inputs):
        h_s, h_c, _, _ = self._unpack(inputs)
        both = ops.concatenate([h_s, h_c], axis=-1)
        gates = ops.softmax(self.gate(both), axis=-1)
        return ops.sum(gates * self.experts(both), axis=-1, keepdims=True)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_experts": self.num_experts}


@register
class SumFusion(_Fusion):
    """Plain sum (``DFM: none`` in the reference; the usual parallel-model fusion): z_s + z_c."""

    def call(self, inputs):
        _, _, z_s, z_c = self._unpack(inputs)
        return z_s + z_c


FUSIONS.add("wsf", WeightedSumFusion, aliases=["weighted_sum"])
FUSIONS.add("vf", GumbelVotingFusion, aliases=["voting", "gumbel"])
FUSIONS.add("cf", ConcatFusion, aliases=["concat"])
FUSIONS.add("moef", MoEFusion, aliases=["moe"])
FUSIONS.add("sum", SumFusion, aliases=["none"])
