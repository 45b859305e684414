"""Request builders against golden JSON and protos; gRPC and REST requests run against the
exported SavedModel's signature (the tensors TF Serving would feed)."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from export import OUTPUT_NAME, SERVING_SIGNATURE
from export.raw_rows import RawDecoder
from pipelines.data.manifest import load_manifest
from pipelines.data.reader import make_dataset
from serving import rest_shim
from serving.client import (
    RequestError,
    grpc_predict_request,
    load_input_spec,
    parse_rest_response,
    rest_inputs_request,
    rest_instances_request,
    rows_to_columns,
)

GOLDEN = Path(__file__).resolve().parent / "golden"
SPEC = {"I1": "double", "I2": "double", "C1": "string", "C2": "string"}
ROWS = [
    {"I1": 3, "I2": None, "C1": "68fd1e64", "C2": ""},
    {"I1": -1, "I2": 120, "C1": "05db9164", "C2": "80e26c9b"},
]


def _same(a, b):
    """JSON equality where NaN equals NaN."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_rest_instances_request_matches_golden_json():
    golden = json.loads((GOLDEN / "rest_instances.json").read_text())
    assert _same(rest_instances_request(ROWS, SPEC), golden)


def test_rest_inputs_request_matches_golden_json():
    golden = json.loads((GOLDEN / "rest_inputs.json").read_text())
    assert _same(rest_inputs_request(rows_to_columns(ROWS, SPEC), SPEC), golden)


def test_grpc_request_matches_golden_proto():
    from tensorflow_serving.apis import predict_pb2

    golden = text_format.Parse(
        (GOLDEN / "predict_request.pbtxt").read_text(), predict_pb2.PredictRequest()
    )
    request = grpc_predict_request(rows_to_columns(ROWS, SPEC), SPEC, "tf4ctr_criteo", version=7)
    assert request.model_spec == golden.model_spec
    assert list(request.output_filter) == list(golden.output_filter)
    assert sorted(request.inputs) == sorted(golden.inputs)
    for name in golden.inputs:
        assert request.inputs[name].dtype == golden.inputs[name].dtype
        np.testing.assert_array_equal(
            tf.make_ndarray(request.inputs[name]), tf.make_ndarray(golden.inputs[name])
        )


@pytest.mark.parametrize(
    "rows, message",
    [
        ([{"I1": 1.0, "I2": 2.0, "C1": "a"}], r"instance 0 is missing field\(s\) \['C2'\]"),
        ([dict(ROWS[1], C1=5)], "field `C1` of instance 0 must be a string, got int 5"),
        ([dict(ROWS[1], I2="7")], "field `I2` of instance 0 must be a number"),
        ([dict(ROWS[1], I3=1.0)], r"unknown field\(s\) \['I3'\]"),
        ([], "at least one instance"),
    ],
)
def test_bad_rows_are_refused_naming_the_field(rows, message):
    with pytest.raises(RequestError, match=message):
        rest_instances_request(rows, SPEC)


def test_mismatched_batch_sizes_are_refused_naming_the_field():
    columns = rows_to_columns(ROWS, SPEC)
    columns["C2"] = columns["C2"][:1]
    with pytest.raises(RequestError, match="field `C2` has 1 values but `I1` has 2"):
        grpc_predict_request(columns, SPEC, "m")


def test_parse_rest_response_forms():
    assert parse_rest_response({"predictions": [0.25, 0.5]}) == [0.25, 0.5]
    assert parse_rest_response({"outputs": {OUTPUT_NAME: [0.5]}}) == [0.5]
    with pytest.raises(RequestError, match="server error: boom"):
        parse_rest_response({"error": "boom"})


@pytest.fixture(scope="module")
def served(frappe_export):
    run_dir, dataset_dir, version_dir = frappe_export
    manifest = load_manifest(dataset_dir)
    features, _ = next(iter(make_dataset(dataset_dir, "test", 16)))
    ids = {k: v.numpy() for k, v in features.items()}
    raw = RawDecoder(manifest).decode(ids)
    rows = [{k: str(v[i]) for k, v in raw.items()} for i in range(16)]
    import keras

    import tf4ctr_keras  # noqa: F401

    expected = keras.saving.load_model(run_dir / "model.keras").predict(ids, verbose=0)["ctr"]
    signature = tf.saved_model.load(str(version_dir)).signatures[SERVING_SIGNATURE]
    return version_dir, rows, expected[:, 0], signature


@pytest.mark.slow
def test_spec_is_read_from_the_export(served):
    version_dir, rows, _, _ = served
    spec = load_input_spec(version_dir)
    assert set(spec) == set(rows[0]) and set(spec.values()) == {"string"}


@pytest.mark.slow
def test_grpc_request_runs_against_the_loaded_signature(served):
    version_dir, rows, expected, signature = served
    spec = load_input_spec(version_dir)
    request = grpc_predict_request(rows_to_columns(rows, spec), spec, "frappe_ctr")
    inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
    got = signature(**inputs)[OUTPUT_NAME].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("columnar", [False, True])
def test_rest_request_round_trips_through_the_shim(served, columnar):
    version_dir, rows, expected, signature = served
    spec = load_input_spec(version_dir)
    body = (
        rest_inputs_request(rows_to_columns(rows, spec), spec)
        if columnar
        else rest_instances_request(rows, spec)
    )
    response = rest_shim.predict(signature, json.loads(json.dumps(body)))
    assert ("outputs" if columnar else "predictions") in response
    np.testing.assert_allclose(parse_rest_response(response), expected, atol=1e-5)


@pytest.mark.slow
def test_rest_shim_reports_errors_as_json(served):
    _, rows, _, signature = served
    assert "error" in rest_shim.predict(signature, {"instances": rows, "inputs": {}})
    broken = [dict(r) for r in rows]
    del broken[0]["user"]
    assert "user" in rest_shim.predict(signature, {"instances": broken})["error"]
