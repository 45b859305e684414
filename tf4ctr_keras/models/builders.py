"""Builders: configuration values in, a :class:`TF4CTR` model out.

Configs stop here: layers never see a dataset spec or a config object. Every builder takes the
ordered ``vocab_sizes`` (from the dataset manifest) plus explicit hyperparameters, and returns
an uncompiled model. :func:`build_model` dispatches by name and rejects unknown names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tf4ctr_keras.layers.fusion import FUSIONS
from tf4ctr_keras.layers.interactions import (
    CompressedInteractionNetwork,
    CrossNetwork,
    CrossNetworkV2,
    FactorizationMachine,
    LinearLogit,
    MultiHeadSelfAttention,
)
from tf4ctr_keras.layers.mlp_block import MLPBlock
from tf4ctr_keras.layers.sample_selection import SELECTORS, SharedEmbeddingSelector
from tf4ctr_keras.layers.utils import derive_seed
from tf4ctr_keras.models.tf4ctr import TF4CTR
from tf4ctr_keras.registry import Registry

MODELS: Registry = Registry("model")
SIMPLE_ENCODERS: Registry = Registry("simple encoder")
# Simple-side encoders of paper Table V, with the baseline each one comes from as an alias.
for _name, _alias in (
    ("mlp", "dualmlp"),
    ("fm", "deepfm"),
    ("linear", "widedeep"),
    ("cin", "xdeepfm"),
    ("cross", "dcn"),
    ("cross_v2", "dcnv2"),
    ("attention", "autoint"),
):
    SIMPLE_ENCODERS.add(_name, _name, aliases=[_alias] + (["wide"] if _name == "linear" else []))

# Defaults of the interaction encoders (FuxiCTR model zoo defaults).
ENCODER_DEFAULTS = {
    "cross_layers": 3,
    "cin_layer_sizes": (64, 64),
    "attention_dim": 64,
    "attention_heads": 2,
    "attention_layers": 3,
    "attention_residual": True,
    "attention_scale": False,
}


def _mlp(units, dropout, batch_norm, seed, offset, name) -> MLPBlock:
    return MLPBlock(
        list(units),
        dropout=dropout,
        batch_norm=batch_norm,
        seed=derive_seed(seed, offset),
        name=name,
    )


def _shared(vocab_sizes, embedding_dim, sequence_fields, embedding_l2, seed):
    return SharedEmbeddingSelector(
        vocab_sizes,
        embedding_dim=embedding_dim,
        sequence_fields=sequence_fields,
        embedding_l2=embedding_l2,
        seed=seed,
        name="selector",
    )


def _wide(vocab_sizes, sequence_fields, embedding_l2, seed, use_bias=True) -> LinearLogit:
    return LinearLogit(
        vocab_sizes,
        use_bias=use_bias,
        sequence_fields=sequence_fields,
        embedding_l2=embedding_l2,
        seed=derive_seed(seed, 77),
        name="wide",
    )


def _interaction(kind: str, seed, options: Mapping, output_dim=None):
    opts = {**ENCODER_DEFAULTS, **options}
    if kind == "fm":
        return FactorizationMachine(name="fm")
    if kind == "cin":
        return CompressedInteractionNetwork(
            list(opts["cin_layer_sizes"]),
            output_dim=output_dim,
            seed=derive_seed(seed, 40),
            name="cin",
        )
    if kind == "cross":
        return CrossNetwork(opts["cross_layers"], seed=derive_seed(seed, 41), name="cross")
    if kind == "cross_v2":
        return CrossNetworkV2(opts["cross_layers"], seed=derive_seed(seed, 42), name="cross_v2")
    if kind == "attention":
        return MultiHeadSelfAttention(
            attention_dim=opts["attention_dim"],
            num_heads=opts["attention_heads"],
            num_layers=opts["attention_layers"],
            use_residual=opts["attention_residual"],
            use_scale=opts["attention_scale"],
            seed=derive_seed(seed, 43),
            name="attention",
        )
    raise ValueError(f"No interaction encoder {kind!r}.")  # unreachable: names are validated


def _check_options(options: Mapping) -> None:
    unknown = sorted(set(options) - set(ENCODER_DEFAULTS))
    if unknown:
        raise TypeError(
            f"Unknown model options {unknown}. Valid encoder options: {sorted(ENCODER_DEFAULTS)}."
        )


def build_tf4ctr(
    vocab_sizes: Mapping[str, int],
    *,
    selector: str = "ser",
    fusion: str = "wsf",
    simple_encoder: str = "mlp",
    simple_units: Sequence[int] = (400, 400),
    complex_units: Sequence[int] = (400, 400, 400),
    embedding_dim: int = 16,
    simple_embedding_dim: int | None = None,
    sequence_fields: Mapping[str, str] | None = None,
    embedding_l2: float = 0.0,
    dropout: float = 0.0,
    batch_norm: bool = True,
    num_experts: int = 2,
    temperature: float = 0.8,
    noisy_inference: bool = False,
    seed: int | None = None,
    name: str = "tf4ctr",
    **options,
) -> TF4CTR:
    """TF4CTR: any sample selector x any fusion, with an MLP or another simple encoder.

    Defaults are the reference's best Frappe configuration (SER + WSF, simple [400, 400],
    complex [400, 400, 400], d = 16, simple side d / 2). ``simple_encoder`` picks the simple
    side of paper Table V: ``"mlp"`` (TF4CTR), ``"fm"`` (DeepFM: FM + LR), ``"linear"``
    (WideDeep: LR only), ``"cin"`` (xDeepFM: CIN to the complex width, LR added to the fused
    logit), ``"cross"`` / ``"cross_v2"`` (DCN / DCNv2), ``"attention"`` (AutoInt).

    Args:
        vocab_sizes: ordered mapping field -> number of ids (manifest ``vocab_size``).
        selector: ``ser``, ``gate``, ``mmoe`` or ``shared`` (aliases ``gm``, ``moe``, ``none``).
        fusion: ``wsf``, ``vf``, ``cf``, ``moef`` or ``sum``.
        simple_encoder: see above.
        simple_units, complex_units: MLP widths.
        embedding_dim: d. simple_embedding_dim: SER's simple width (default d // 2).
        sequence_fields: field -> ``"mean"``/``"sum"`` pooling for sequence inputs.
        embedding_l2: the reference's lambda (penalty lambda / 2 * ||E||^2).
        dropout: dropout of every MLP layer (towers, gates, experts).
        batch_norm: BatchNorm in every MLP. num_experts: MMoE experts.
        temperature, noisy_inference: VF options.
        seed: optional int; all parts derive distinct seeds from it.
        **options: interaction-encoder options (``cross_layers``, ``cin_layer_sizes``,
            ``attention_dim``, ``attention_heads``, ``attention_layers``, ...).
    """
    _check_options(options)
    kind = SIMPLE_ENCODERS.get(simple_encoder)
    selector_cls = SELECTORS.get(selector)
    fusion_name = FUSIONS.canonical(fusion)
    sel_kwargs = dict(
        embedding_dim=embedding_dim,
        sequence_fields=sequence_fields,
        embedding_l2=embedding_l2,
        seed=derive_seed(seed, 1),
        name="selector",
    )
    canonical_selector = SELECTORS.canonical(selector)
    if canonical_selector == "ser":
        sel_kwargs["simple_embedding_dim"] = simple_embedding_dim
    elif simple_embedding_dim is not None:
        raise ValueError("`simple_embedding_dim` applies to the SER selector only.")
    if canonical_selector in ("gate", "mmoe"):
        sel_kwargs.update(dropout=dropout, batch_norm=batch_norm)
    if canonical_selector == "mmoe":
        sel_kwargs["num_experts"] = num_experts
    selector_layer = selector_cls(vocab_sizes, **sel_kwargs)

    fusion_kwargs = {"seed": derive_seed(seed, 3), "name": "fusion"}
    if fusion_name == "vf":
        fusion_kwargs.update(temperature=temperature, noisy_inference=noisy_inference)
    if fusion_name == "moef":
        fusion_kwargs["num_experts"] = num_experts
    fusion_layer = FUSIONS.get(fusion_name)(**fusion_kwargs)

    complex_layer = _mlp(complex_units, dropout, batch_norm, seed, 4, "complex_encoder")
    wide = None
    wide_position = "simple"
    simple_head = True
    if kind == "mlp":
        simple_layer = _mlp(simple_units, dropout, batch_norm, seed, 5, "simple_encoder")
    elif kind == "fm":
        simple_layer = _interaction("fm", seed, options)
        wide = _wide(vocab_sizes, sequence_fields, embedding_l2, seed)
    elif kind == "linear":
        simple_layer = None
        wide = _wide(vocab_sizes, sequence_fields, embedding_l2, seed, use_bias=False)
        simple_head = fusion_name != "wsf"  # reference: WSF uses the LR logit directly
    elif kind == "cin":
        simple_layer = _interaction("cin", seed, options, output_dim=list(complex_units)[-1])
        wide = _wide(vocab_sizes, sequence_fields, embedding_l2, seed, use_bias=False)
        wide_position = "fused"
    else:
        simple_layer = _interaction(kind, seed, options)
    return TF4CTR(
        selector_layer,
        complex_layer,
        simple_encoder=simple_layer,
        fusion=fusion_layer,
        wide=wide,
        wide_position=wide_position,
        simple_head=simple_head,
        twin_output=True,
        seed=derive_seed(seed, 6),
        name=name,
    )


def build_dnn(
    vocab_sizes,
    *,
    complex_units=(400, 400, 400),
    embedding_dim=16,
    sequence_fields=None,
    embedding_l2=0.0,
    dropout=0.0,
    batch_norm=True,
    seed=None,
    name="dnn",
    **options,
) -> TF4CTR:
    """DNN: embeddings -> MLP -> logit (single tower, log loss)."""
    _check_options(options)
    return TF4CTR(
        _shared(vocab_sizes, embedding_dim, sequence_fields, embedding_l2, derive_seed(seed, 1)),
        _mlp(complex_units, dropout, batch_norm, seed, 4, "complex_encoder"),
        seed=derive_seed(seed, 6),
        name=name,
    )


def _parallel(
    vocab_sizes,
    simple_layer,
    *,
    complex_units,
    embedding_dim,
    sequence_fields,
    embedding_l2,
    dropout,
    batch_norm,
    seed,
    name,
    fusion="sum",
    wide=None,
    wide_position="simple",
    simple_head=True,
    twin_output=False,
) -> TF4CTR:
    return TF4CTR(
        _shared(vocab_sizes, embedding_dim, sequence_fields, embedding_l2, derive_seed(seed, 1)),
        _mlp(complex_units, dropout, batch_norm, seed, 4, "complex_encoder"),
        simple_encoder=simple_layer,
        fusion=FUSIONS.get(fusion)(seed=derive_seed(seed, 3), name="fusion"),
        wide=wide,
        wide_position=wide_position,
        simple_head=simple_head,
        twin_output=twin_output,
        seed=derive_seed(seed, 6),
        name=name,
    )


def _baseline(kind: str):
    def builder(
        vocab_sizes,
        *,
        simple_units=(400, 400),
        complex_units=(400, 400, 400),
        embedding_dim=16,
        sequence_fields=None,
        embedding_l2=0.0,
        dropout=0.0,
        batch_norm=True,
        twin_output=False,
        seed=None,
        name=None,
        **options,
    ) -> TF4CTR:
        _check_options(options)
        common = dict(
            complex_units=complex_units,
            embedding_dim=embedding_dim,
            sequence_fields=sequence_fields,
            embedding_l2=embedding_l2,
            dropout=dropout,
            batch_norm=batch_norm,
            seed=seed,
            name=name or kind,
            twin_output=twin_output,
        )
        wide = _wide(vocab_sizes, sequence_fields, embedding_l2, seed)
        if kind == "dualmlp":
            return _parallel(
                vocab_sizes,
                _mlp(simple_units, dropout, batch_norm, seed, 5, "simple_encoder"),
                **common,
            )
        if kind == "widedeep":
            return _parallel(vocab_sizes, None, wide=wide, simple_head=False, **common)
        if kind == "deepfm":
            return _parallel(
                vocab_sizes,
                _interaction("fm", seed, options),
                wide=wide,
                simple_head=False,
                **common,
            )
        if kind in ("dcn", "dcnv2"):
            # Concatenation fusion; with ``twin_output`` (the TF loss, paper Table II) each tower
            # gets its own logit head, as the reference's CF keeps fc1/fc2 as auxiliary heads.
            encoder = _interaction("cross" if kind == "dcn" else "cross_v2", seed, options)
            return _parallel(vocab_sizes, encoder, fusion="cf", **common)
        if kind == "xdeepfm":
            return _parallel(
                vocab_sizes,
                _interaction("cin", seed, options),
                wide=wide,
                wide_position="fused",
                **common,
            )
        if kind == "autoint":
            return _parallel(vocab_sizes, _interaction("attention", seed, options), **common)
        raise ValueError(kind)  # unreachable: the registry holds only the kinds above

    builder.__name__ = f"build_{kind}"
    builder.__doc__ = f"The {kind} baseline as a parallel TF4CTR composition (shared embedding)."
    return builder


MODELS.add("tf4ctr", build_tf4ctr)
MODELS.add("dnn", build_dnn)
for _kind in ("dualmlp", "widedeep", "deepfm", "dcn", "dcnv2", "xdeepfm", "autoint"):
    MODELS.add(_kind, _baseline(_kind), aliases=["autoint+"] if _kind == "autoint" else ())


def build_model(name: str, vocab_sizes: Mapping[str, int], **hparams) -> TF4CTR:
    """Builds a model by name: ``tf4ctr``, ``dnn``, ``dualmlp``, ``widedeep``, ``deepfm``,
    ``dcn``, ``dcnv2``, ``xdeepfm`` or ``autoint``. Unknown names raise with the valid list."""
    return MODELS.get(name)(vocab_sizes, **hparams)
