"""Builders: configuration values in, a :class:`TF4CTR` model out.

Configs stop here: layers never see a dataset spec or a config object. Every builder takes the
ordered ``vocab_sizes`` (from the dataset manifest), the data-given ``sequence_fields`` and
``numeric_fields``, plus explicit hyperparameters, and returns an uncompiled model. The parts come from the registries by name (:data:`SELECTORS`,
:data:`FUSIONS`, :data:`ENCODERS`); each receives a :class:`BuildContext` and its own declared
hyperparameters. :func:`build_model` dispatches by name through :data:`MODELS`.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras

from tf4ctr_keras.layers.adaptive_factorization_network import AdaptiveFactorizationNetwork
from tf4ctr_keras.layers.contrastive_regularization import ContrastiveRegularization
from tf4ctr_keras.layers.enhanced_cross_network import EnhancedCrossNetwork
from tf4ctr_keras.layers.euler_interaction import EulerInteraction
from tf4ctr_keras.layers.factorization_machine import FactorizationMachine
from tf4ctr_keras.layers.fusion import FUSIONS, WeightedSumFusion
from tf4ctr_keras.layers.sample_selection import SELECTORS
from tf4ctr_keras.models.encoders import ENCODERS, SimpleSide, cin, linear_logit, mlp_tower
from tf4ctr_keras.models.tf4ctr import TF4CTR
from tf4ctr_keras.registry import (
    COMPLEX_SEED,
    FUSION_SEED,
    HEAD_SEED,
    SIMPLE_SEED,
    BuildContext,
    Registry,
    Variant,
)

#: Builders are called ``builder(vocab_sizes, **hyperparameters) -> TF4CTR``.
MODELS = Registry("model")
#: The simple-encoder registry under the name the run config imports.
SIMPLE_ENCODERS = ENCODERS


def _check_options(options: Mapping, valid: Mapping) -> None:
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise TypeError(f"Unknown model options {unknown}. Valid options: {sorted(valid)}.")


def _check_applicable(options: Mapping, chosen: Sequence[Variant]) -> None:
    """A hyperparameter whose default is None is unset unless given; giving it to a model whose
    parts do not declare it is an error (it would be ignored). Hyperparameters with a value as
    default are shared settings that the parts which do not declare them ignore."""
    declared = {k for variant in chosen for k in variant.defaults}
    for key, value in options.items():
        if value is None or key in declared:
            continue
        owners = [
            f"{variant.name.upper()} {registry.kind}"
            for registry in (SELECTORS, FUSIONS, ENCODERS)
            for variant in registry.variants()
            if key in variant.defaults and variant.defaults[key] is None
        ]
        if owners:
            raise ValueError(f"`{key}` applies to the {' or '.join(owners)} only.")


def _build(variant: Variant, context: BuildContext, values: Mapping[str, Any]):
    """Calls the variant's builder with the context and its declared hyperparameters."""
    return variant.builder(context, **{k: values.get(k, d) for k, d in variant.defaults.items()})


def build_tf4ctr(
    vocab_sizes: Mapping[str, int],
    *,
    selector: str = "ser",
    fusion: str = "wsf",
    simple_encoder: str = "mlp",
    simple_units: Sequence[int] = (400, 400),
    complex_units: Sequence[int] = (400, 400, 400),
    embedding_dim: int = 16,
    sequence_fields: Mapping[str, str] | None = None,
    numeric_fields: Sequence[str] | None = None,
    embedding_l2: float = 0.0,
    dropout: float = 0.0,
    batch_norm: bool = True,
    seed: int | None = None,
    name: str = "tf4ctr",
    **hyperparameters,
) -> TF4CTR:
    """TF4CTR: any sample selector x any fusion, with an MLP or another simple encoder.

    Defaults are the reference's best Frappe configuration (SER + WSF, simple [400, 400],
    complex [400, 400, 400], d = 16, simple side d / 2). ``simple_encoder`` picks the simple
    side of paper Table V: ``"mlp"`` (TF4CTR), ``"fm"`` (DeepFM: FM + LR), ``"linear"``
    (WideDeep: LR only), ``"cin"`` (xDeepFM: CIN to the complex width, LR added to the fused
    logit), ``"cross"`` / ``"cross_v2"`` (DCN / DCNv2), ``"attention"`` (AutoInt).

    Args:
        vocab_sizes: ordered mapping field -> number of ids (manifest ``vocab_size``).
        selector: a name of :data:`SELECTORS`: ``ser``, ``gate``, ``mmoe`` or ``shared``
            (aliases ``gm``, ``moe``, ``none``).
        fusion: a name of :data:`FUSIONS`: ``wsf``, ``vf``, ``cf``, ``moef`` or ``sum``.
        simple_encoder: a name of :data:`ENCODERS`, see above.
        simple_units, complex_units: MLP widths.
        embedding_dim: d.
        sequence_fields: field -> ``"mean"``/``"sum"`` pooling for sequence inputs.
        numeric_fields: names of the dense numeric fields: float inputs (NaN = missing), each
            a key of ``vocab_sizes`` with size 2 (see :class:`FieldEmbedding`).
        embedding_l2: the reference's lambda (penalty lambda / 2 * ||E||^2).
        dropout: dropout of every MLP layer (towers, gates, experts).
        batch_norm: BatchNorm in every MLP.
        seed: optional int; all parts derive distinct seeds from it.
        name: the model's name.
        **hyperparameters: the parts' hyperparameters, each passed to the variants that declare
            it (``tf4ctr_keras.variants.hyperparameters()``: ``simple_embedding_dim`` (SER;
            default d // 2), ``num_experts`` (MMoE, MoEF), ``temperature`` and
            ``noisy_inference`` (VF); and ``encoder_hyperparameters()``: ``cross_layers``,
            ``cin_layer_sizes``, ``attention_dim``, ...).
    """
    valid = {**SELECTORS.hyperparameters(), **FUSIONS.hyperparameters()}
    _check_options(hyperparameters, {**valid, **ENCODERS.hyperparameters()})
    encoder_variant = ENCODERS.get(simple_encoder)
    selector_variant = SELECTORS.get(selector)
    fusion_variant = FUSIONS.get(fusion)
    _check_applicable(hyperparameters, [selector_variant, fusion_variant, encoder_variant])
    context = BuildContext(
        vocab_sizes,
        embedding_dim=embedding_dim,
        sequence_fields=sequence_fields,
        numeric_fields=numeric_fields,
        embedding_l2=embedding_l2,
        dropout=dropout,
        batch_norm=batch_norm,
        seed=seed,
        simple_units=tuple(simple_units),
        complex_units=tuple(complex_units),
        fusion=fusion_variant.name,
    )
    side = _build(encoder_variant, context, hyperparameters)
    if side.encoder is None and selector_variant.name == "ser":
        # A wide-only simple side (WideDeep's LR) reads no simple embedding: SER's second table
        # would be built, regularised and counted for nothing. Its complex table alone is the
        # shared selector's (same seed, same name), as TF4CTRv2_WideDeep builds one embedding
        # for the deep tower whatever its SSM (tf4ctr_reference.md section 1.6).
        selector_variant = SELECTORS.get("shared")
    selector_layer = _build(selector_variant, context, hyperparameters)
    fusion_layer = _build(fusion_variant, context, hyperparameters)
    complex_layer = mlp_tower(context, complex_units, COMPLEX_SEED, "complex_encoder")
    return TF4CTR(
        selector_layer,
        complex_layer,
        simple_encoder=side.encoder,
        fusion=fusion_layer,
        wide=side.wide,
        wide_position=side.wide_position,
        simple_head=side.simple_head,
        twin_output=True,
        seed=context.derive_seed(HEAD_SEED),
        name=name,
    )


# The architecture hyperparameters the baselines share with TF4CTR (defaults: BuildContext's,
# which are build_tf4ctr's).
COMMON_HYPERPARAMETERS = {
    f.name: f.default
    for f in dataclasses.fields(BuildContext)
    if f.name not in ("vocab_sizes", "sequence_fields", "numeric_fields", "seed", "fusion")
}
DNN_HYPERPARAMETERS = {k: v for k, v in COMMON_HYPERPARAMETERS.items() if k != "simple_units"}
PARALLEL_HYPERPARAMETERS = {**COMMON_HYPERPARAMETERS, "twin_output": False}


def _model_context(
    vocab_sizes: Mapping[str, int],
    options: Mapping[str, Any],
    own: Mapping[str, Any],
    *,
    sequence_fields: Mapping[str, str] | None,
    seed: int | None,
    fusion: str | None = None,
    numeric_fields: Sequence[str] | None = None,
) -> tuple[BuildContext, dict[str, Any], dict[str, Any]]:
    """Checks a baseline's keyword arguments and splits them: returns the build context, the
    model's own hyperparameters (``own``: name -> default) and the encoder options."""
    _check_options(options, {**own, **ENCODERS.hyperparameters()})
    values = {k: options.get(k, d) for k, d in own.items()}
    encoder = {k: v for k, v in options.items() if k not in own}
    shared = {
        k: tuple(v) if k.endswith("_units") else v
        for k, v in values.items()
        if k in COMMON_HYPERPARAMETERS
    }
    context = BuildContext(
        vocab_sizes,
        sequence_fields=sequence_fields,
        numeric_fields=numeric_fields,
        seed=seed,
        fusion=fusion,
        **shared,
    )
    return context, values, encoder


def build_dnn(
    vocab_sizes: Mapping[str, int],
    *,
    sequence_fields: Mapping[str, str] | None = None,
    numeric_fields: Sequence[str] | None = None,
    seed: int | None = None,
    name: str = "dnn",
    **hyperparameters,
) -> TF4CTR:
    """DNN: embeddings -> MLP -> logit (single tower, log loss).

    ``sequence_fields`` and ``numeric_fields`` are as :func:`build_tf4ctr`. Hyperparameters: :data:`DNN_HYPERPARAMETERS` (``complex_units``, ``embedding_dim``,
    ``embedding_l2``, ``dropout``, ``batch_norm``, with build_tf4ctr's defaults). Encoder
    options are accepted (and unused) so that one set of model options fits every model."""
    context, _, _ = _model_context(
        vocab_sizes,
        hyperparameters,
        DNN_HYPERPARAMETERS,
        sequence_fields=sequence_fields,
        numeric_fields=numeric_fields,
        seed=seed,
    )
    return TF4CTR(
        SELECTORS.get("shared").builder(context),
        mlp_tower(context, context.complex_units, COMPLEX_SEED, "complex_encoder"),
        seed=context.derive_seed(HEAD_SEED),
        name=name,
    )


Composer = Callable[[BuildContext, Mapping[str, Any], str], TF4CTR]


def baseline_model(kind: str, own: Mapping[str, Any], compose: Composer, fusion: str | None = None):
    """The builder of a baseline: it checks and splits the keyword arguments
    (:func:`_model_context`; ``own``: the model's hyperparameters and their defaults) and calls
    ``compose(context, values, name)``, whose docstring it takes; ``values`` holds the model's
    own hyperparameters and, under ``"options"``, the encoder options given. ``fusion`` names
    the fusion the parts see in their context (WideDeep's side reads it)."""

    def builder(
        vocab_sizes: Mapping[str, int],
        *,
        sequence_fields: Mapping[str, str] | None = None,
        numeric_fields: Sequence[str] | None = None,
        seed: int | None = None,
        name: str | None = None,
        **hyperparameters,
    ) -> TF4CTR:
        context, values, options = _model_context(
            vocab_sizes,
            hyperparameters,
            own,
            sequence_fields=sequence_fields,
            numeric_fields=numeric_fields,
            seed=seed,
            fusion=None if fusion is None else FUSIONS.canonical(fusion),
        )
        return compose(context, {**values, "options": options}, name or kind)

    builder.__name__ = builder.__qualname__ = f"build_{kind}"
    builder.__doc__ = (compose.__doc__ or "") + (
        "\n\n    ``sequence_fields`` and ``numeric_fields`` are as :func:`build_tf4ctr`."
    )
    return builder


SideBuilder = Callable[[BuildContext, Mapping[str, Any]], SimpleSide]


def parallel_model(kind: str, simple_side: SideBuilder, fusion: str = "sum"):
    """The builder of a baseline: a parallel TF4CTR composition over one shared embedding.

    Args:
        kind: the baseline's name (the model's default name).
        simple_side: ``simple_side(context, encoder_options) -> SimpleSide``.
        fusion: name of the fusion (no hyperparameters). Default ``"sum"``.
    """

    def compose(context: BuildContext, values: Mapping[str, Any], name: str) -> TF4CTR:
        side = simple_side(context, {**ENCODERS.hyperparameters(), **values["options"]})
        return TF4CTR(
            SELECTORS.get("shared").builder(context),
            mlp_tower(context, context.complex_units, COMPLEX_SEED, "complex_encoder"),
            simple_encoder=side.encoder,
            fusion=FUSIONS.get(fusion).builder(context),
            wide=side.wide,
            wide_position=side.wide_position,
            simple_head=side.simple_head,
            twin_output=values["twin_output"],
            seed=context.derive_seed(HEAD_SEED),
            name=name,
        )

    compose.__doc__ = (
        f"The {kind} baseline as a parallel TF4CTR composition (shared embedding, {fusion} "
        "fusion); ``twin_output=True`` adds a logit head per tower for the TF loss."
    )
    return baseline_model(kind, PARALLEL_HYPERPARAMETERS, compose, fusion=fusion)


def encoder_side(name: str) -> SideBuilder:
    """The simple side of the :data:`ENCODERS` variant `name`, with its declared options."""
    variant = ENCODERS.get(name)
    return lambda context, options: _build(variant, context, options)


def _deepfm_side(context: BuildContext, options) -> SimpleSide:
    # FM + LR is the simple logit itself.
    return SimpleSide(
        FactorizationMachine(name="fm"), wide=linear_logit(context), simple_head=False
    )


def _widedeep_side(context: BuildContext, options) -> SimpleSide:
    return SimpleSide(None, wide=linear_logit(context), simple_head=False)


def _xdeepfm_side(context: BuildContext, options) -> SimpleSide:
    # CIN's pools (no output layer) go through the simple head; LR joins the fused logit.
    return SimpleSide(
        cin(context, options["cin_layer_sizes"]), wide=linear_logit(context), wide_position="fused"
    )


def _defaults(builder: Callable, extra: Mapping[str, Any]) -> dict[str, Any]:
    """A model's hyperparameters: its builder's keyword defaults (not the data-given
    ``sequence_fields`` and ``numeric_fields``, nor ``seed`` and ``name``) and the parts'
    options it accepts."""
    skip = {"sequence_fields", "numeric_fields", "seed", "name"}
    own = {
        p.name: p.default
        for p in inspect.signature(builder).parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.name not in skip
    }
    return {**own, **extra}


_PARTS = {**SELECTORS.hyperparameters(), **FUSIONS.hyperparameters()}
MODELS.add(
    "tf4ctr",
    build_tf4ctr,
    defaults=_defaults(build_tf4ctr, {**_PARTS, **ENCODERS.hyperparameters()}),
)
MODELS.add("dnn", build_dnn, defaults={**DNN_HYPERPARAMETERS, **ENCODERS.hyperparameters()})
for _kind, _side, _fusion, _aliases in (
    ("dualmlp", encoder_side("mlp"), "sum", ()),
    ("widedeep", _widedeep_side, "sum", ()),
    ("deepfm", _deepfm_side, "sum", ()),
    # Concatenation fusion; with ``twin_output`` (the TF loss, paper Table II) each tower gets
    # its own logit head, as the reference's CF keeps fc1/fc2 as auxiliary heads.
    ("dcn", encoder_side("cross"), "cf", ()),
    ("dcnv2", encoder_side("cross_v2"), "cf", ()),
    ("xdeepfm", _xdeepfm_side, "sum", ()),
    ("autoint", encoder_side("attention"), "sum", ("autoint+",)),
):
    _builder = parallel_model(_kind, _side, _fusion)
    MODELS.add(
        _kind,
        _builder,
        defaults={**PARALLEL_HYPERPARAMETERS, **ENCODERS.hyperparameters()},
        aliases=_aliases,
    )


# -- the baselines of paper Table IV that are not parallel compositions ---------------------------
# Each is one builder and one registration; its own hyperparameters carry FuxiCTR's model-zoo
# defaults (``model_zoo/<Model>/config/model_config.yaml``, ``<Model>_default``) unless noted,
# the shared ones (d, dropout, BatchNorm, embedding L2) are the study's, as for every baseline.
def _single_tower(context: BuildContext, encoder, name: str) -> TF4CTR:
    """One shared table, ``encoder`` on it, one logit head."""
    return TF4CTR(
        SELECTORS.get("shared").builder(context),
        encoder,
        seed=context.derive_seed(HEAD_SEED),
        name=name,
    )


AFN_HYPERPARAMETERS = {
    **PARALLEL_HYPERPARAMETERS,
    "logarithmic_neurons": 1200,
    "afn_units": (400, 400, 400),
}


def _afn(context: BuildContext, values: Mapping[str, Any], name: str) -> TF4CTR:
    """AFN+ (AFN with a DNN ensemble; Cheng et al. AAAI 2020; FuxiCTR ``AFN``,
    ``ensemble_dnn=True``): two tables of ``embedding_dim``, the logarithmic network with its
    MLP (``afn_units``) on one and an MLP (``complex_units``) on the other, each with its logit,
    fused by a ``Linear(2, 1)`` (FuxiCTR's ``fc``: :class:`WeightedSumFusion` with a bias,
    Xavier-normal). In TF4CTR terms: SER with equal widths, :class:`AdaptiveFactorizationNetwork`
    as the simple encoder; ``twin_output=True`` exposes the two logits for the TF loss.

    Hyperparameters: :data:`AFN_HYPERPARAMETERS` (``logarithmic_neurons`` 1200 and
    ``afn_units`` [400, 400, 400]: FuxiCTR's ``AFN_default``; ``simple_units`` is unused, the
    AFN's MLP being ``afn_units``) and the encoder options."""
    selector = SELECTORS.get("ser").builder(context, simple_embedding_dim=context.embedding_dim)
    afn = AdaptiveFactorizationNetwork(
        values["logarithmic_neurons"],
        list(values["afn_units"]),
        dropout=context.dropout,
        batch_norm=context.batch_norm,
        seed=context.derive_seed(SIMPLE_SEED),
        name="afn",
    )
    # PyTorch's xavier_normal_ on the (1, 2) weight: std sqrt(2 / (2 + 1)), not truncated.
    ensemble = WeightedSumFusion(
        use_bias=True,
        kernel_initializer=keras.initializers.RandomNormal(
            stddev=math.sqrt(2.0 / 3.0), seed=context.derive_seed(FUSION_SEED)
        ),
        name="fusion",
    )
    return TF4CTR(
        selector,
        mlp_tower(context, context.complex_units, COMPLEX_SEED, "complex_encoder"),
        simple_encoder=afn,
        fusion=ensemble,
        twin_output=values["twin_output"],
        seed=context.derive_seed(HEAD_SEED),
        name=name,
    )


EDCN_HYPERPARAMETERS = {
    **{k: v for k, v in DNN_HYPERPARAMETERS.items() if k != "complex_units"},
    "cross_layers": 3,
    "bridge_type": "hadamard_product",
    "regulation_temperature": 1.0,
}


def _edcn(context: BuildContext, values: Mapping[str, Any], name: str) -> TF4CTR:
    """EDCN (Chen et al. CIKM 2021; FuxiCTR ``EDCN``): :class:`EnhancedCrossNetwork` on one
    table, its ``[cross, deep, bridge]`` output to one logit (FuxiCTR's ``fc``).

    Hyperparameters: :data:`EDCN_HYPERPARAMETERS`: ``cross_layers`` 3, ``bridge_type``
    ``"hadamard_product"``, ``regulation_temperature`` 1 (FuxiCTR's ``EDCN_default``); the deep
    layers are ``fields * d`` wide (no ``complex_units``), ``dropout`` is theirs and
    ``batch_norm`` the regulation modules' (FuxiCTR's default is off; the study's shared
    setting is on)."""
    network = EnhancedCrossNetwork(
        values["cross_layers"],
        bridge_type=values["bridge_type"],
        temperature=values["regulation_temperature"],
        dropout=context.dropout,
        batch_norm=context.batch_norm,
        seed=context.derive_seed(COMPLEX_SEED),
        name="complex_encoder",
    )
    return _single_tower(context, network, name)


CL4CTR_HYPERPARAMETERS = {
    **DNN_HYPERPARAMETERS,
    "contrastive_units": (400, 400, 400),
    "contrastive_weight": 1.0,
    "alignment_weight": 0.01,
    "mask_rate": 0.1,
}


def _cl4ctr(context: BuildContext, values: Mapping[str, Any], name: str) -> TF4CTR:
    """CL4CTR (Wang et al. WSDM 2023) on a DNN: one table, an MLP of ``complex_units`` to the
    logit, and :class:`ContrastiveRegularization` on the embeddings (training only).

    FuxiCTR has no CL4CTR; this is the one the TF4CTR authors ran in FuxiCTR
    (``salmon1802/CETN``, ``CL4CTR_torch``), whose config gives the defaults of
    :data:`CL4CTR_HYPERPARAMETERS`: FI encoder ``contrastive_units`` [400, 400, 400],
    ``contrastive_weight`` (alpha) 1, ``alignment_weight`` (beta) 0.01, ``mask_rate`` 0.1."""
    regularization = ContrastiveRegularization(
        list(values["contrastive_units"]),
        contrastive_weight=values["contrastive_weight"],
        alignment_weight=values["alignment_weight"],
        mask_rate=values["mask_rate"],
        dropout=context.dropout,
        batch_norm=context.batch_norm,
        seed=context.derive_seed(SIMPLE_SEED),
        name="contrastive",
    )
    tower = mlp_tower(context, context.complex_units, COMPLEX_SEED, "mlp")
    encoder = keras.Sequential([regularization, tower], name="complex_encoder")
    return _single_tower(context, encoder, name)


EULERNET_HYPERPARAMETERS = {
    "embedding_dim": COMMON_HYPERPARAMETERS["embedding_dim"],
    "embedding_l2": COMMON_HYPERPARAMETERS["embedding_l2"],
    "euler_orders": (20,),
    "euler_layer_norm": True,
    "explicit_dropout": 0.0,
    "implicit_dropout": 0.0,
}


def _eulernet(context: BuildContext, values: Mapping[str, Any], name: str) -> TF4CTR:
    """EulerNet (Tian et al. SIGIR 2023; FuxiCTR ``EulerNet``): :class:`EulerInteraction` on
    one table and one logit (FuxiCTR's ``reg``, shared by the real and imaginary parts).

    Hyperparameters: :data:`EULERNET_HYPERPARAMETERS`: ``euler_orders`` [20] (FuxiCTR's
    ``shape``), ``euler_layer_norm`` True, both dropouts 0 (``EulerNet_default``); EulerNet has
    no MLP, so the study's ``dropout`` and ``batch_norm`` do not apply."""
    network = EulerInteraction(
        list(values["euler_orders"]),
        layer_norm=values["euler_layer_norm"],
        explicit_dropout=values["explicit_dropout"],
        implicit_dropout=values["implicit_dropout"],
        seed=context.derive_seed(COMPLEX_SEED),
        name="complex_encoder",
    )
    return _single_tower(context, network, name)


build_afn = baseline_model("afn", AFN_HYPERPARAMETERS, _afn)
build_edcn = baseline_model("edcn", EDCN_HYPERPARAMETERS, _edcn)
build_cl4ctr = baseline_model("cl4ctr", CL4CTR_HYPERPARAMETERS, _cl4ctr)
build_eulernet = baseline_model("eulernet", EULERNET_HYPERPARAMETERS, _eulernet)
_ENCODER_OPTIONS = ENCODERS.hyperparameters()
MODELS.add("afn", build_afn, defaults={**AFN_HYPERPARAMETERS, **_ENCODER_OPTIONS}, aliases=["afn+"])
MODELS.add("edcn", build_edcn, defaults={**_ENCODER_OPTIONS, **EDCN_HYPERPARAMETERS})
MODELS.add("cl4ctr", build_cl4ctr, defaults={**CL4CTR_HYPERPARAMETERS, **_ENCODER_OPTIONS})
MODELS.add("eulernet", build_eulernet, defaults={**EULERNET_HYPERPARAMETERS, **_ENCODER_OPTIONS})


def build_model(name: str, vocab_sizes: Mapping[str, int], **hparams) -> TF4CTR:
    """Builds a model by name: ``tf4ctr``, ``dnn``, ``dualmlp``, ``widedeep``, ``deepfm``,
    ``dcn``, ``dcnv2``, ``xdeepfm``, ``autoint``, ``afn`` (AFN+), ``edcn``, ``cl4ctr`` or
    ``eulernet``. Unknown names raise with the valid list.

    ``hparams`` include the data-given ``sequence_fields`` and ``numeric_fields`` (see
    :func:`build_tf4ctr`), which every model takes."""
    return MODELS.get(name).builder(vocab_sizes, **hparams)
