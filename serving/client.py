"""REST and gRPC clients for an exported tf4ctr-keras model on TF Serving.

The request builders are pure functions (rows in, JSON dict or ``PredictRequest`` out) and
validate every field before anything is sent, so a bad request fails here with the field
named instead of as an opaque server error ("input #7 expected string").

Field specs come from the export's ``assets.extra/manifest.json`` (:func:`load_input_spec`):
categorical and sequence fields take strings, Criteo-style numeric fields take numbers (a
missing number is ``None`` or NaN).

CLI::

    python -m serving.client --rest http://localhost:8501 --model tf4ctr_frappe rows.jsonl
    python -m serving.client --grpc localhost:8500 --model tf4ctr_frappe rows.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

STRING = "string"
FLOAT = "double"
OUTPUT_NAME = "ctr_probability"
SERVING_SIGNATURE = "serving_default"


class RequestError(ValueError):
    """A request that does not fit the model's inputs; the message names the field."""


def load_input_spec(path: str | Path) -> dict[str, str]:
    """``{field: "string" | "double"}`` in model order, from an export version directory (its
    ``assets.extra/inputs.json``, written by ``python -m export``) or that file itself."""
    path = Path(path)
    for candidate in (path, path / "assets.extra" / "inputs.json"):
        if candidate.is_file():
            spec = json.loads(candidate.read_text())
            bad = {k: v for k, v in spec.items() if v not in (STRING, FLOAT)}
            if bad:
                raise ValueError(f"{candidate}: unknown input types {bad}")
            return spec
    raise FileNotFoundError(
        f"No inputs.json at {path} (nor in its assets.extra/): pass an export version directory."
    )


def _check_value(field: str, kind: str, value: Any, row: int | None) -> Any:
    where = f"field `{field}`" + (f" of instance {row}" if row is not None else "")
    if kind == STRING:
        if not isinstance(value, str):
            raise RequestError(f"{where} must be a string, got {type(value).__name__} {value!r}")
        return value
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(
            f"{where} must be a number (or null), got {type(value).__name__} {value!r}"
        )
    return float(value)


def validate_rows(rows: Sequence[Mapping[str, Any]], spec: Mapping[str, str]) -> list[dict]:
    """Checks every row has exactly the model's fields with the right types; returns them
    normalised (missing numbers as NaN)."""
    if not rows:
        raise RequestError("A request needs at least one instance.")
    out = []
    for i, row in enumerate(rows):
        missing = [f for f in spec if f not in row]
        extra = [f for f in row if f not in spec]
        if missing:
            raise RequestError(f"instance {i} is missing field(s) {missing}")
        if extra:
            raise RequestError(
                f"instance {i} has unknown field(s) {extra}; the model takes {list(spec)}"
            )
        out.append({f: _check_value(f, spec[f], row[f], i) for f in spec})
    return out


def validate_columns(columns: Mapping[str, Sequence[Any]], spec: Mapping[str, str]) -> dict:
    """Columnar form of :func:`validate_rows`: every field present, equal batch sizes."""
    missing = [f for f in spec if f not in columns]
    if missing:
        raise RequestError(f"missing field(s) {missing}")
    extra = [f for f in columns if f not in spec]
    if extra:
        raise RequestError(f"unknown field(s) {extra}; the model takes {list(spec)}")
    sizes = {f: len(columns[f]) for f in spec}
    first = next(iter(spec))
    for field, size in sizes.items():
        if size != sizes[first]:
            raise RequestError(
                f"field `{field}` has {size} values but `{first}` has "
                f"{sizes[first]}: all fields need the same batch size"
            )
    if sizes[first] == 0:
        raise RequestError("A request needs at least one instance.")
    return {f: [_check_value(f, spec[f], v, None) for v in columns[f]] for f in spec}


def rest_instances_request(rows, spec, signature_name: str = SERVING_SIGNATURE) -> dict:
    """The REST row format: ``{"signature_name", "instances": [{field: value}, ...]}``."""
    return {"signature_name": signature_name, "instances": validate_rows(rows, spec)}


def rest_inputs_request(columns, spec, signature_name: str = SERVING_SIGNATURE) -> dict:
    """The REST columnar format: ``{"signature_name", "inputs": {field: [values]}}``."""
    return {"signature_name": signature_name, "inputs": validate_columns(columns, spec)}


def rows_to_columns(rows: Sequence[Mapping[str, Any]], spec) -> dict[str, list]:
    rows = validate_rows(rows, spec)
    return {f: [r[f] for r in rows] for f in spec}


def grpc_predict_request(
    columns,
    spec,
    model_name: str,
    signature_name: str = SERVING_SIGNATURE,
    version: int | None = None,
):
    """A ``tensorflow.serving.PredictRequest`` with one 1-D tensor per field."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    columns = validate_columns(columns, spec)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    for field, kind in spec.items():
        values = columns[field]
        request.inputs[field].CopyFrom(
            tf.make_tensor_proto(
                values, dtype=tf.float64 if kind == FLOAT else tf.string, shape=[len(values)]
            )
        )
    request.output_filter.append(OUTPUT_NAME)
    return request


def parse_rest_response(body: Mapping[str, Any]) -> list[float]:
    """Probabilities from a REST response (``predictions`` or ``outputs`` form)."""
    if "error" in body:
        raise RequestError(f"server error: {body['error']}")
    values = body.get("predictions", body.get("outputs"))
    if isinstance(values, Mapping):
        values = values[OUTPUT_NAME]
    if values is None or isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise RequestError(f"unexpected response: {body}")
    try:
        return [float(v[OUTPUT_NAME]) if isinstance(v, Mapping) else float(v) for v in values]
    except (KeyError, TypeError, ValueError) as error:
        raise RequestError(f"unexpected response ({error}): {body}") from None


def check_scores(scores: Sequence[Any], expected: int) -> list[float]:
    """``scores`` when there is exactly one per request row and each is a finite probability
    in [0, 1]; a RequestError naming the first problem otherwise (a server that answers for
    fewer rows, or a model that does not end in a sigmoid, is caught here, not downstream)."""
    scores = list(scores)
    if len(scores) != expected:
        raise RequestError(f"expected {expected} scores, got {len(scores)} (one per request row)")
    for k, score in enumerate(scores):
        if (
            isinstance(score, bool)
            or not isinstance(score, int | float)
            or not math.isfinite(score)
            or not 0.0 <= score <= 1.0
        ):
            raise RequestError(f"score {k} is {score!r}: not a probability in [0, 1]")
    return [float(s) for s in scores]


class RestClient:
    """``POST /v1/models/<name>[/versions/<v>]:predict`` with the row or columnar format."""

    def __init__(
        self,
        base_url: str,
        model_name: str,
        spec: Mapping[str, str],
        version: int | None = None,
        timeout: float = 10.0,
    ) -> None:
        name = urllib.parse.quote(model_name, safe="")
        self.url = f"{base_url.rstrip('/')}/v1/models/{name}"
        if version is not None:
            self.url += f"/versions/{int(version)}"
        self.url += ":predict"
        self.spec = dict(spec)
        self.timeout = timeout

    def predict(self, rows: Sequence[Mapping[str, Any]], columnar: bool = False) -> list[float]:
        body = (
            rest_inputs_request(rows_to_columns(rows, self.spec), self.spec)
            if columnar
            else rest_instances_request(rows, self.spec)
        )
        data = json.dumps(body).encode()
        request = urllib.request.Request(
            self.url, data=data, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = response.read()
        except urllib.error.HTTPError as error:  # TF Serving answers {"error": ...}
            raise RequestError(f"{self.url}: HTTP {error.code}: {error.read().decode()}") from None
        try:
            answer = json.loads(answer)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise RequestError(f"{self.url}: the response is not JSON: {error}") from None
        if not isinstance(answer, Mapping):
            raise RequestError(f"{self.url}: unexpected response: {answer!r}")
        return check_scores(parse_rest_response(answer), len(rows))


class GrpcClient:
    """``PredictionService.Predict`` over gRPC (port 8500 by convention)."""

    def __init__(
        self,
        target: str,
        model_name: str,
        spec: Mapping[str, str],
        version: int | None = None,
        timeout: float = 10.0,
    ) -> None:
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        self.channel = grpc.insecure_channel(target)
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.model_name = model_name
        self.spec = dict(spec)
        self.version = version
        self.timeout = timeout

    def predict(self, rows: Sequence[Mapping[str, Any]]) -> list[float]:
        import tensorflow as tf

        request = grpc_predict_request(
            rows_to_columns(rows, self.spec), self.spec, self.model_name, version=self.version
        )
        response = self.stub.Predict(request, self.timeout)
        if OUTPUT_NAME not in response.outputs:
            raise RequestError(f"the response has no `{OUTPUT_NAME}` output")
        scores = tf.make_ndarray(response.outputs[OUTPUT_NAME]).reshape(-1).tolist()
        return check_scores(scores, len(rows))


def _read_rows(path: str) -> Iterable[dict]:
    stream = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
    with stream:
        for line_number, line in enumerate(stream, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as error:
                    raise RequestError(f"{path} line {line_number}: not JSON: {error}") from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m serving.client", description="Score JSON-lines rows on TF Serving."
    )
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--rest", help="e.g. http://localhost:8501")
    target.add_argument("--grpc", help="e.g. localhost:8500")
    p.add_argument("--model", required=True, help="the served model name")
    p.add_argument(
        "--spec",
        required=True,
        help="export version directory (or manifest.json) giving the input fields",
    )
    p.add_argument("--version", type=int)
    p.add_argument("--columnar", action="store_true", help="REST `inputs` form")
    p.add_argument("rows", help="JSON-lines file of {field: raw value} rows, or -")
    args = p.parse_args(argv)
    try:
        spec = load_input_spec(args.spec)
        rows = list(_read_rows(args.rows))
        if args.rest:
            scores = RestClient(args.rest, args.model, spec, args.version).predict(
                rows, columnar=args.columnar
            )
        else:
            scores = GrpcClient(args.grpc, args.model, spec, args.version).predict(rows)
        scores = check_scores(scores, len(rows))  # whichever client answered
    except (ValueError, OSError) as error:  # RequestError is a ValueError
        print(f"error: {error}", file=sys.stderr)
        return 2
    for score in scores:
        print(score)
    return 0


if __name__ == "__main__":
    sys.exit(main())
