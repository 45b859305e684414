"""Serialization registration, the variant registries, and argument checks.

Every layer, loss and model of the package is registered once with :func:`register`, so
``keras.saving.load_model`` restores them without ``custom_objects`` dicts. Variants chosen by
name (selector, encoder, fusion, loss, model) come from a :class:`Registry`: each is registered
once with its builder, its hyperparameters and their defaults, and optionally a tuning domain
per hyperparameter. Unknown names are rejected with the valid ones listed: a typo never
silently trains another model.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, TypeVar

import keras

PACKAGE = "tf4ctr_keras"

T = TypeVar("T")


def register(obj: T) -> T:
    """Registers a class or function for Keras serialization under ``tf4ctr_keras>Name``."""
    return keras.saving.register_keras_serializable(package=PACKAGE)(obj)


def derive_seed(seed: int | None, offset: int) -> int | None:
    """A distinct, reproducible seed per part (same-shaped kernels must not start equal)."""
    return None if seed is None else int(seed) * 1009 + offset


@dataclasses.dataclass(frozen=True)
class Variant:
    """One registered variant.

    Attributes:
        name: canonical name.
        builder: what builds the variant (the registry's kind says how it is called).
        defaults: hyperparameter -> default value (read-only).
        space: hyperparameter -> tuning domain, ``[choices]`` or
            ``{"min", "max", "step" | "sampling"}`` (read-only; may be empty).
        aliases: other names that resolve to this variant.
    """

    name: str
    builder: Callable[..., Any]
    defaults: Mapping[str, Any]
    space: Mapping[str, Any]
    aliases: tuple[str, ...] = ()


class Registry:
    """Name -> :class:`Variant`, failing loudly on unknown names.

    Args:
        kind: what the registry holds, used in error messages ("fusion", "model", ...).
        namespace: optional dict shared with other registries whose hyperparameters become the
            same configuration keys (selectors and fusions); a hyperparameter declared twice in
            it must have the same default. Default: the registry's own.

    Example:
        >>> fusions = Registry("fusion")
        >>> fusions.add("vf", build_vf, defaults={"temperature": 0.8}, aliases=["voting"])
        >>> fusions.get("voting").defaults["temperature"]
        0.8
    """

    def __init__(self, kind: str, *, namespace: dict | None = None) -> None:
        self.kind = kind
        self._variants: dict[str, Variant] = {}
        self._aliases: dict[str, str] = {}
        # hyperparameter -> (default, who declared it first)
        self._namespace: dict[str, tuple[Any, str]] = {} if namespace is None else namespace

    def add(
        self,
        name: str,
        builder: Callable[..., Any],
        *,
        defaults: Mapping[str, Any] | None = None,
        space: Mapping[str, Any] | None = None,
        aliases: Iterable[str] = (),
    ) -> Callable[..., Any]:
        """Registers `builder` as variant `name`; returns `builder`."""
        key = name.lower()
        aliases = tuple(a.lower() for a in aliases)
        for label in (key, *aliases):
            if label in self._variants or label in self._aliases:
                raise ValueError(f"{self.kind} `{label}` is registered twice.")
        defaults = dict(defaults or {})
        space = dict(space or {})
        unknown = sorted(set(space) - set(defaults))
        if unknown:
            raise ValueError(
                f"{self.kind} `{key}`: tuning space for {unknown}, which it does not declare."
            )
        for hparam, value in defaults.items():
            if hparam in self._namespace and self._namespace[hparam][0] != value:
                first, owner = self._namespace[hparam]
                raise ValueError(
                    f"{self.kind} `{key}` declares `{hparam}={value!r}`, but {owner} declares "
                    f"it with default {first!r}; one name must have one default."
                )
        for hparam, value in defaults.items():
            self._namespace.setdefault(hparam, (value, f"{self.kind} `{key}`"))
        self._variants[key] = Variant(
            key, builder, MappingProxyType(defaults), MappingProxyType(space), aliases
        )
        for alias in aliases:
            self._aliases[alias] = key
        return builder

    def canonical(self, name: str) -> str:
        """Returns the canonical name for `name` or an alias of it."""
        if not isinstance(name, str):
            raise TypeError(f"{self.kind} must be named by a string. Received: {name!r}")
        key = name.lower()
        key = self._aliases.get(key, key)
        if key not in self._variants:
            raise ValueError(
                f"Unknown {self.kind} `{name}`. Valid choices: {', '.join(sorted(self._variants))} "
                f"(aliases: {', '.join(sorted(self._aliases)) or 'none'})."
            )
        return key

    def get(self, name: str) -> Variant:
        return self._variants[self.canonical(name)]

    def names(self) -> list[str]:
        """Canonical names in registration order."""
        return list(self._variants)

    def variants(self) -> list[Variant]:
        """The variants in registration order."""
        return list(self._variants.values())

    def hyperparameters(self) -> dict[str, Any]:
        """The union of the variants' hyperparameters and their defaults."""
        return {k: v for variant in self.variants() for k, v in variant.defaults.items()}

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = name.lower()
        return key in self._variants or key in self._aliases


@dataclasses.dataclass(frozen=True)
class BuildContext:
    """What every part builder of a model receives besides its own hyperparameters.

    Layers never see this object: part builders turn it into constructor arguments.

    Attributes:
        vocab_sizes: ordered mapping field -> number of ids.
        embedding_dim: d.
        sequence_fields: field -> ``"mean"``/``"sum"`` pooling, or None.
        numeric_fields: names of the dense numeric fields (2-row fields of ``vocab_sizes``),
            or None.
        embedding_l2: the embedding penalty lambda.
        dropout: dropout of every MLP.
        batch_norm: BatchNorm in every MLP.
        seed: the model's seed (parts derive theirs with :meth:`derive_seed`), or None.
        simple_units, complex_units: MLP widths of the two towers.
        fusion: canonical name of the model's fusion, or None.
    """

    vocab_sizes: Mapping[str, int]
    embedding_dim: int = 16
    sequence_fields: Mapping[str, str] | None = None
    embedding_l2: float = 0.0
    dropout: float = 0.0
    batch_norm: bool = True
    seed: int | None = None
    simple_units: Sequence[int] = (400, 400)
    complex_units: Sequence[int] = (400, 400, 400)
    fusion: str | None = None
    numeric_fields: Sequence[str] | None = None

    def derive_seed(self, offset: int) -> int | None:
        """The seed of the model's part at `offset` (:func:`derive_seed`)."""
        return derive_seed(self.seed, offset)


# Seed offsets of a model's parts. Fixed: changing one changes every initial weight.
SELECTOR_SEED = 1
FUSION_SEED = 3
COMPLEX_SEED = 4
SIMPLE_SEED = 5
HEAD_SEED = 6

#: Selectors and fusions share one hyperparameter namespace (they become model config keys).
PART_HYPERPARAMETERS: dict[str, tuple[Any, str]] = {}


def check_choice(name: str, value: object, choices: Iterable[object]) -> None:
    """Raises a ValueError naming the argument if `value` is not one of `choices`."""
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}. Received: `{name}={value!r}`")


def check_range(
    name: str,
    value: float,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> None:
    """Raises a ValueError naming the argument if `value` is outside the given range or not a
    finite number (NaN and infinities are refused whatever the bounds)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value >= low if low_inclusive else value > low
    if ok and high is not None:
        ok = value <= high if high_inclusive else value < high
    if not ok:
        lo = "" if low is None else ("[" if low_inclusive else "(") + f"{low}, "
        hi = "" if high is None else f"{high}" + ("]" if high_inclusive else ")")
        if low is None:
            bound = f"<= {high}" if high_inclusive else f"< {high}"
        elif high is None:
            bound = f">= {low}" if low_inclusive else f"> {low}"
        else:
            bound = f"in {lo}{hi}"
        raise ValueError(f"`{name}` must be {bound}. Received: `{name}={value!r}`")


def check_units(name: str, value: object) -> list[int]:
    """Validates a list of positive layer widths and returns it as a list of ints."""
    if isinstance(value, int | str) or not isinstance(value, Iterable):
        raise ValueError(f"`{name}` must be a list of positive ints. Received: `{name}={value!r}`")
    units = list(value)
    if not all(isinstance(u, int) and not isinstance(u, bool) and u > 0 for u in units):
        raise ValueError(f"`{name}` must be a list of positive ints. Received: `{name}={value!r}`")
    return units
