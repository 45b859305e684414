"""A stand-in for TF Serving's REST predict handler, for tests only.

It maps a ``{"instances": ...}`` or ``{"inputs": ...}`` body to tensors the way the server does
(row format: every instance an object with the same keys; columnar: a dict of lists), calls the
loaded SavedModel's signature and shapes the answer as ``{"predictions": [...]}`` or
``{"outputs": [...]}`` (single output: the name is omitted). It pins the JSON contract; it is
not the server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def predict(signature, body: Mapping[str, Any]) -> dict:
    import tensorflow as tf

    if ("instances" in body) == ("inputs" in body):
        return {"error": "Request must have exactly one of 'instances' or 'inputs'."}
    spec = signature.structured_input_signature[1]
    try:
        if "instances" in body:
            rows = body["instances"]
            columns = {name: [row[name] for row in rows] for name in spec}
        else:
            columns = dict(body["inputs"])
        tensors = {name: tf.constant(columns[name], dtype=spec[name].dtype) for name in spec}
        (output,) = signature(**tensors).values()
    except (KeyError, TypeError, ValueError, tf.errors.InvalidArgumentError) as error:
        return {"error": str(error)}
    values = output.numpy().tolist()
    return {"predictions": values} if "instances" in body else {"outputs": values}
