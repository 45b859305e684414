"""A stand-in for TF Serving's REST predict handler, for tests only (nothing outside tests/
imports it).

It maps a ``{"instances": ...}`` or ``{"inputs": ...}`` body to tensors the way the server does
(row format: every instance an object with the same keys; columnar: a dict of lists), calls the
loaded SavedModel's signature and shapes the answer as ``{"predictions": [...]}`` or
``{"outputs": [...]}`` (single output: the name is omitted). It pins the JSON contract; it is
not the server.

Like the server it answers a bad body with ``{"error": ...}`` (HTTP 400) instead of crashing:
unknown top-level keys or input names are refused, and a value nested deeper than its input's
rank is refused before any tensor is built (a 300-deep list used to abort the process).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

BODY_KEYS = {"signature_name", "instances", "inputs"}


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of lists in ``value`` (a scalar is 0), iteratively; stops counting past
    ``limit`` so that a hostile body costs nothing."""
    depth, level = 0, [value]
    while level:
        lists = [v for v in level if isinstance(v, list)]
        if not lists:
            return depth
        depth += 1
        if depth > limit:
            return depth
        level = [item for v in lists for item in v]
    return depth


def _error(message: str) -> dict:
    return {"error": message, "status": 400}


def predict(signature, body: Mapping[str, Any]) -> dict:
    import tensorflow as tf

    if not isinstance(body, Mapping):
        return _error("The request body must be a JSON object.")
    unknown = sorted(set(body) - BODY_KEYS)
    if unknown:
        return _error(f"Unknown key(s) {unknown} in the request body; expected {sorted(BODY_KEYS)}")
    if ("instances" in body) == ("inputs" in body):
        return _error("Request must have exactly one of 'instances' or 'inputs'.")
    spec = signature.structured_input_signature[1]
    try:
        if "instances" in body:
            rows = body["instances"]
            if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
                return _error("'instances' must be a list of objects, one per row.")
            for i, row in enumerate(rows):
                extra = sorted(set(row) - set(spec))
                if extra:
                    return _error(f"instance {i}: unknown input(s) {extra}; inputs: {sorted(spec)}")
            columns = {name: [row[name] for row in rows] for name in spec}
        else:
            if not isinstance(body["inputs"], Mapping):
                return _error("'inputs' must be an object of input name to values.")
            columns = dict(body["inputs"])
            extra = sorted(set(columns) - set(spec))
            if extra:
                return _error(f"unknown input(s) {extra}; inputs: {sorted(spec)}")
        for name in spec:
            rank = spec[name].shape.rank
            if name in columns and rank is not None and _depth(columns[name], rank) > rank:
                return _error(f"input `{name}` is nested deeper than its rank {rank}")
        tensors = {name: tf.constant(columns[name], dtype=spec[name].dtype) for name in spec}
        (output,) = signature(**tensors).values()
    except (KeyError, TypeError, ValueError, tf.errors.InvalidArgumentError) as error:
        return _error(str(error))
    values = output.numpy().tolist()
    return {"predictions": values} if "instances" in body else {"outputs": values}
