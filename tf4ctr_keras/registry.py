"""Serialization registration and the small name registries for model variants.

Every layer, loss and model of the package is registered once with :func:`register`, so
``keras.saving.load_model`` restores them without ``custom_objects`` dicts. Variants chosen by
name (selection, encoder, fusion, model) come from :class:`Registry`, which rejects unknown
names and lists the valid ones: a typo never silently trains another model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

import keras

PACKAGE = "tf4ctr_keras"

T = TypeVar("T")


def register(obj: T) -> T:
    """Registers a class or function for Keras serialization under ``tf4ctr_keras>Name``."""
    return keras.saving.register_keras_serializable(package=PACKAGE)(obj)


class Registry(Generic[T]):
    """A name -> factory map that fails loudly on unknown names.

    Args:
        kind: what the registry holds, used in error messages ("fusion", "encoder", ...).

    Example:
        >>> fusions = Registry("fusion")
        >>> fusions.add("sum", SumFusion)
        >>> fusions.get("sum")
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def add(self, name: str, item: T, aliases: Iterable[str] = ()) -> T:
        key = name.lower()
        if key in self._items or key in self._aliases:
            raise ValueError(f"{self.kind} `{name}` is registered twice.")
        self._items[key] = item
        for alias in aliases:
            self._aliases[alias.lower()] = key
        return item

    def canonical(self, name: str) -> str:
        """Returns the canonical name for `name` or an alias of it."""
        if not isinstance(name, str):
            raise TypeError(f"{self.kind} must be named by a string. Received: {name!r}")
        key = name.lower()
        key = self._aliases.get(key, key)
        if key not in self._items:
            raise ValueError(
                f"Unknown {self.kind} `{name}`. Valid choices: {', '.join(self.names())} "
                f"(aliases: {', '.join(sorted(self._aliases)) or 'none'})."
            )
        return key

    def get(self, name: str) -> T:
        return self._items[self.canonical(name)]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = name.lower()
        return key in self._items or key in self._aliases


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
    """Raises a ValueError naming the argument if `value` is outside the given range."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
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


Factory = Callable[..., object]
