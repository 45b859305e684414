"""The composable TF4CTR model: selection -> two encoders -> heads -> fusion."""

from __future__ import annotations

import keras
from keras import ops

from tf4ctr_keras.registry import check_choice, derive_seed, register

CTR_OUTPUT = "ctr"
TWIN_OUTPUT = "twin_logits"
WIDE_POSITIONS = ("simple", "fused")


def _serialize(layer):
    return None if layer is None else keras.saving.serialize_keras_object(layer)


def _deserialize(config):
    return None if config is None else keras.saving.deserialize_keras_object(config)


def _build_part(layer, *shape) -> None:
    """Builds an injected part unless it is built already: a model loaded from a ``.keras``
    file receives parts that Keras has deserialized and built; building them again would
    create their variables twice."""
    if not layer.built:
        layer.build(*shape)


def _check_part(role: str, layer, needs: tuple[str, ...], what: str) -> None:
    missing = [attr for attr in needs if not hasattr(layer, attr)]
    if not isinstance(layer, keras.layers.Layer) or missing:
        lacks = f"; {type(layer).__name__} lacks {missing}" if missing else ""
        raise TypeError(f"`{role}` must be {what}{lacks}. Received: {layer!r}")


@register
class TF4CTR(keras.Model):
    """Twin Focus framework for CTR prediction (TF4CTR section 3), built from parts.

    ::

        ids --selector--> (e_simple, e_complex)
        h_s = simple_encoder(e_simple) [+ wide(ids)]      z_s = head_s(h_s)
        h_c = complex_encoder(e_complex)                  z_c = head_c(h_c)
        z = fusion([h_s, h_c, z_s, z_c]) [+ wide(ids)]    ctr = sigmoid(z)

    The parts are layers (TFRS ``Ranking`` style): swapping the simple tower for FM, CIN or a
    cross network is passing another layer. The same class gives the paper's baselines:
    ``simple_encoder=None`` and no ``wide`` is a single-tower model (DNN); a shared selector
    with :class:`SumFusion` is a parallel model (DualMLP, DeepFM, xDeepFM, AutoInt+);
    :class:`ConcatFusion` without twin output is DCN / DCNv2.

    Any Keras layer with the right call works as a part; nothing needs a package base class:

    - ``selector``: ``selector(ids, training=)`` -> ``(e_simple, e_complex)``; provides
      ``vocab_sizes`` (the ordered fields the model takes) and ``compute_output_shape()``
      (no argument) -> the two ``(batch, fields, dim)`` shapes; builds with ``build()``.
    - ``complex_encoder``, ``simple_encoder``: ``encoder(e, training=)`` -> ``(batch, width)``,
      with ``compute_output_shape(input_shape)``.
    - ``wide``: ``wide(ids)`` -> ``(batch, 1)`` logits; builds with ``build()``.
    - ``fusion``: ``fusion([h_s, h_c, z_s, z_c], training=)`` -> ``(batch, 1)``; an optional
      ``uses_logits`` attribute (default True) says whether it reads ``z_s``/``z_c`` (when
      False and without twin output, the model makes no logit heads).

    Outputs (a dict): ``"ctr"``, the fused probability ``(batch, 1)`` float32, and, when
    ``twin_output``, ``"twin_logits"``, the ``(batch, 2)`` float32 simple and complex logits
    that :class:`TwinFocusLoss` consumes::

        model.compile(optimizer, loss={"ctr": "binary_crossentropy",
                                       "twin_logits": TwinFocusLoss(0.25, 0.8, 2.0)})

    Args:
        selector: the sample selection layer.
        complex_encoder: layer on ``e_complex``.
        simple_encoder: layer on ``e_simple``, or None (single tower, or a wide-only simple
            side when ``wide`` is given with ``wide_position="simple"``).
        fusion: the fusion layer; required with two sides, forbidden with one.
        wide: optional wide (LR) logit layer on the ids, e.g. :class:`LinearLogit`.
        wide_position: ``"simple"`` adds the wide logit to the simple side (WideDeep, DeepFM);
            ``"fused"`` adds it to the fused logit only (xDeepFM). Default ``"simple"``.
        simple_head: map the simple side to a logit with ``Dense(1)``; False uses it directly
            (it must then be 1 wide, e.g. FM + LR). Default True.
        twin_output: expose ``"twin_logits"``. Default True with two sides.
        seed: optional int seed for the heads.

    Input: dict field -> int64 ids ``(batch,)`` (sequence fields ``(batch, max_len)``).

    Example (by hand what ``build_model("tf4ctr", vocab, simple_encoder="cross_v2")`` does by
    name)::

        vocab = {"user": 1000, "item": 5000}
        model = TF4CTR(
            SeparateEmbeddingSelector(vocab, embedding_dim=16),
            complex_encoder=MLPBlock([400, 400, 400]),
            simple_encoder=CrossNetworkV2(3),
            fusion=WeightedSumFusion(),
        )
        model({"user": np.array([3]), "item": np.array([7])})["ctr"]  # (1, 1)
    """

    def __init__(
        self,
        selector,
        complex_encoder,
        simple_encoder=None,
        fusion=None,
        wide=None,
        wide_position: str = "simple",
        simple_head: bool = True,
        twin_output: bool | None = None,
        seed: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        _check_part(
            "selector",
            selector,
            ("vocab_sizes", "compute_output_shape"),
            "a sample selection layer mapping the ids to (e_simple, e_complex), with "
            "`vocab_sizes` and `compute_output_shape()`",
        )
        encoder = "an encoder layer with `compute_output_shape(input_shape)`"
        _check_part("complex_encoder", complex_encoder, ("compute_output_shape",), encoder)
        if simple_encoder is not None:
            _check_part("simple_encoder", simple_encoder, ("compute_output_shape",), encoder)
        if wide is not None:
            _check_part("wide", wide, (), "a layer mapping the ids to (batch, 1) logits, or None")
        check_choice("wide_position", wide_position, WIDE_POSITIONS)
        two_sided = simple_encoder is not None or (wide is not None and wide_position == "simple")
        if two_sided and not isinstance(fusion, keras.layers.Layer):
            raise ValueError(
                "A model with a simple side needs a fusion layer mapping [h_simple, h_complex, "
                f"z_simple, z_complex] to the fused logit (batch, 1). Received: {fusion!r}"
            )
        if not two_sided and fusion is not None:
            raise ValueError("A single-tower model (no simple side) takes no fusion layer.")
        if twin_output is None:
            twin_output = two_sided
        if twin_output and not two_sided:
            raise ValueError("`twin_output=True` needs a simple side (simple_encoder or wide).")
        self.selector = selector
        self.complex_encoder = complex_encoder
        self.simple_encoder = simple_encoder
        self.fusion = fusion
        self.wide = wide
        self.wide_position = wide_position
        self.simple_head = bool(simple_head)
        self.twin_output = bool(twin_output)
        self.seed = seed
        self.two_sided = two_sided

        self.field_names = list(selector.vocab_sizes)
        self.complex_logit = None  # the logit heads are made in build()
        self.simple_logit = None

    def _head(self, name: str, offset: int) -> keras.layers.Dense:
        return keras.layers.Dense(
            1,
            kernel_initializer=keras.initializers.GlorotNormal(seed=derive_seed(self.seed, offset)),
            dtype="float32",
            name=name,
        )

    def build(self, input_shape=None) -> None:
        simple_shape, complex_shape = self.selector.compute_output_shape()
        _build_part(self.selector)
        _build_part(self.complex_encoder, complex_shape)
        h_c = self.complex_encoder.compute_output_shape(complex_shape)
        h_s = None
        if self.simple_encoder is not None:
            _build_part(self.simple_encoder, simple_shape)
            h_s = self.simple_encoder.compute_output_shape(simple_shape)
        if self.wide is not None:
            _build_part(self.wide)
            if h_s is None and self.wide_position == "simple":
                h_s = (None, 1)
        if h_s is not None and h_s[-1] != 1 and not self.simple_head:
            raise ValueError(
                f"`simple_head=False` needs a simple side of width 1; it is {h_s[-1]} wide."
            )
        uses_logits = getattr(self.fusion, "uses_logits", True)
        needs_logits = self.twin_output or (self.fusion is not None and uses_logits)
        if needs_logits or not self.two_sided:
            self.complex_logit = self._head("complex_logit", 1)
            self.complex_logit.build(h_c)
        if self.two_sided and needs_logits and self.simple_head:
            self.simple_logit = self._head("simple_logit", 0)
            self.simple_logit.build(h_s)
        if self.fusion is not None:
            _build_part(self.fusion, [h_s, h_c, (None, 1), (None, 1)])

    def get_build_config(self) -> dict:
        return {"fields": self.field_names}

    def build_from_config(self, config) -> None:
        # Every shape follows from the layers' own configs (vocabularies, widths).
        self.build()

    def call(self, inputs, training=None):
        missing = [n for n in self.field_names if n not in inputs]
        if missing:
            raise KeyError(f"Missing input fields {missing}; the model takes {self.field_names}.")
        e_simple, e_complex = self.selector(inputs, training=training)
        h_c = self.complex_encoder(e_complex, training=training)
        z_c = (
            self.complex_logit(ops.cast(h_c, "float32")) if self.complex_logit is not None else None
        )
        wide = self.wide(inputs) if self.wide is not None else None
        outputs = {}
        if not self.two_sided:
            logit = z_c if wide is None else z_c + wide
        else:
            h_s = None
            if self.simple_encoder is not None:
                h_s = ops.cast(self.simple_encoder(e_simple, training=training), "float32")
            if wide is not None and self.wide_position == "simple":
                h_s = wide if h_s is None else h_s + wide
            z_s = self.simple_logit(h_s) if self.simple_logit is not None else h_s
            if z_c is None:  # concat/MoE fusion without twin output: no heads needed
                z_c = ops.zeros_like(z_s[:, :1])
            logit = self.fusion([h_s, ops.cast(h_c, "float32"), z_s, z_c], training=training)
            if wide is not None and self.wide_position == "fused":
                logit = logit + wide
            if self.twin_output:
                outputs[TWIN_OUTPUT] = ops.concatenate([z_s, z_c], axis=-1)
        outputs[CTR_OUTPUT] = ops.sigmoid(ops.cast(logit, "float32"))
        return outputs

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            selector=_serialize(self.selector),
            complex_encoder=_serialize(self.complex_encoder),
            simple_encoder=_serialize(self.simple_encoder),
            fusion=_serialize(self.fusion),
            wide=_serialize(self.wide),
            wide_position=self.wide_position,
            simple_head=self.simple_head,
            twin_output=self.twin_output,
            seed=self.seed,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("selector", "complex_encoder", "simple_encoder", "fusion", "wide"):
            config[key] = _deserialize(config.get(key))
        return cls(**config)
