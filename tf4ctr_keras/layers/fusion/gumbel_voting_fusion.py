"""Voting fusion with Gumbel-softmax (VF)."""

from __future__ import annotations

import keras
from keras import ops

from tf4ctr_keras.layers.fusion.base import FusionLayer, dense
from tf4ctr_keras.layers.utils import get_initializer, serialize_initializer
from tf4ctr_keras.registry import check_range, register


@register
class GumbelVotingFusion(FusionLayer):
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
        kernel_initializer: initializer of the voting kernels. Default None: Xavier-normal
            seeded from ``seed``.
        bias_initializer: initializer of the voting biases. Default ``"zeros"``.
    """

    def __init__(
        self,
        temperature: float = 0.8,
        noisy_inference: bool = False,
        kernel_initializer=None,
        bias_initializer="zeros",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        check_range("temperature", temperature, 0.0, low_inclusive=False)
        self.temperature = float(temperature)
        self.noisy_inference = bool(noisy_inference)
        self.kernel_initializer = get_initializer(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        # Made at construction, as keras.layers.Dropout makes its own: noise state, not a weight.
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def build(self, input_shape) -> None:
        init = (self.kernel_initializer, self.bias_initializer, self.seed)
        self.simple_vote = dense(1, *init, 0, "simple_vote")
        self.complex_vote = dense(1, *init, 1, "complex_vote")
        self.simple_vote.build(input_shape[0])
        self.complex_vote.build(input_shape[1])

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
        config.update(
            temperature=self.temperature,
            noisy_inference=self.noisy_inference,
            kernel_initializer=serialize_initializer(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config
