"""Request builders against golden JSON and protos; gRPC and REST requests run against the
exported SavedModel's signature (the tensors TF Serving would feed)."""

import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

from export import OUTPUT_NAME, SERVING_SIGNATURE
from export.raw_rows import RawDecoder
from pipelines.data.manifest import load_manifest
from pipelines.data.reader import make_dataset
from serving import client
from serving.client import (
    RequestError,
    RestClient,
    check_scores,
    grpc_predict_request,
    load_input_spec,
    parse_rest_response,
    rest_inputs_request,
    rest_instances_request,
    rows_to_columns,
)
from tests import rest_shim

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden"
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


# -- response checks and the CLI ------------------------------------------------------------


def test_check_scores_accepts_one_probability_per_row():
    assert check_scores([0, 0.25, 1], 3) == [0.0, 0.25, 1.0]


@pytest.mark.parametrize(
    "scores, expected, message",
    [
        ([0.5], 3, "expected 3 scores, got 1"),
        ([0.5, 0.5, 0.5, 0.5], 3, "expected 3 scores, got 4"),
        ([0.1, 1.5, 0.2], 3, "score 1 is 1.5"),
        ([-0.1, 0.5], 2, "score 0 is -0.1"),
        ([0.5, math.nan], 2, "score 1 is nan"),
        ([math.inf], 1, "score 0 is inf"),
        ([True], 1, "score 0 is True"),
    ],
)
def test_check_scores_refuses_a_wrong_count_or_a_non_probability(scores, expected, message):
    with pytest.raises(RequestError, match=re.escape(message)):
        check_scores(scores, expected)


def test_rest_url_quotes_the_model_name():
    url = RestClient("http://h:8501/", "a/b c?", {"x": "double"}, version=2).url
    assert url == "http://h:8501/v1/models/a%2Fb%20c%3F/versions/2:predict"
    assert RestClient("http://h", "tf4ctr_criteo", {}).url == (
        "http://h/v1/models/tf4ctr_criteo:predict"
    )


class _Answer(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Runs ``python -m serving.client --rest`` on 3 rows against a server answering `text`."""
    spec = tmp_path / "inputs.json"
    spec.write_text(json.dumps(SPEC))
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in [*ROWS, ROWS[0]]))
    seen = []

    def run(text: str, model: str = "tf4ctr_criteo") -> int:
        def urlopen(request, timeout):
            seen.append(request.full_url)
            return _Answer(text.encode())

        monkeypatch.setattr(client.urllib.request, "urlopen", urlopen)
        argv = ["--rest", "http://localhost:8501", "--model", model, "--spec", str(spec)]
        return client.main([*argv, str(rows)])

    run.seen = seen
    return run


@pytest.mark.parametrize(
    "answer, message",
    [
        ('{"predictions": [0.5]}', "expected 3 scores, got 1"),
        ('{"predictions": [0.1, 1.5, 0.2]}', "score 1 is 1.5"),
        ('{"predictions": [0.1, 0.2, NaN]}', "score 2 is nan"),
        ('{"predictions": [-1, 0.2, 0.3]}', "score 0 is -1.0"),
        ('{"predictions": ["a", 0.2, 0.3]}', "unexpected response"),
        ("not json", "not JSON"),
        ('{"error": "boom"}', "server error: boom"),
    ],
)
def test_cli_exits_2_naming_the_problem_with_the_scores(cli, capsys, answer, message):
    assert cli(answer) == 2
    out, err = capsys.readouterr()
    assert out == "" and message in err


def test_cli_prints_one_score_per_row_and_quotes_the_model_name(cli, capsys):
    assert cli('{"predictions": [0.1, 0.2, 0.3]}', model="team/ctr") == 0
    assert capsys.readouterr().out.split() == ["0.1", "0.2", "0.3"]
    assert cli.seen == ["http://localhost:8501/v1/models/team%2Fctr:predict"]


# -- the REST shim stays bounded ------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_signature(tmp_path_factory):
    """A SavedModel signature {user: string[None], x: double[None]} -> sigmoid(x)."""

    class Tiny(tf.Module):
        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.string, name="user"),
                tf.TensorSpec([None], tf.float64, name="x"),
            ]
        )
        def serve(self, user, x):
            del user
            return {OUTPUT_NAME: tf.cast(tf.sigmoid(x), tf.float32)}

    path = tmp_path_factory.mktemp("tiny") / "1"
    module = Tiny()
    tf.saved_model.save(module, str(path), signatures={SERVING_SIGNATURE: module.serve})
    return tf.saved_model.load(str(path)).signatures[SERVING_SIGNATURE]


def _nested(depth: int):
    value = "u"
    for _ in range(depth):
        value = [value]
    return value


def test_rest_shim_scores_a_valid_body(tiny_signature):
    body = {"instances": [{"user": "a", "x": 0.0}, {"user": "b", "x": 0.0}]}
    assert rest_shim.predict(tiny_signature, body) == {"predictions": [0.5, 0.5]}
    body = {"inputs": {"user": ["a"], "x": [0.0]}}
    assert rest_shim.predict(tiny_signature, body) == {"outputs": [0.5]}


@pytest.mark.parametrize(
    "body, message",
    [
        ({"inputs": {"user": _nested(300), "x": [0.0]}}, "`user` is nested deeper than its rank 1"),
        ({"instances": [{"user": _nested(300), "x": 0.0}]}, "nested deeper than its rank 1"),
        ({"inputs": {"user": [["a"]], "x": [0.0]}}, "nested deeper than its rank 1"),
        ({"instances": [{"user": "a", "x": 0.0, "bogus": 1}]}, "unknown input(s) ['bogus']"),
        ({"inputs": {"user": ["a"], "x": [0.0], "bogus": [1]}}, "unknown input(s) ['bogus']"),
        ({"instances": [{"user": "a", "x": 0.0}], "extra": 1}, "Unknown key(s) ['extra']"),
        ({"instances": "rows"}, "list of objects"),
    ],
)
def test_rest_shim_refuses_deep_nesting_and_unknown_names_with_a_400(tiny_signature, body, message):
    response = rest_shim.predict(tiny_signature, body)
    assert response["status"] == 400 and message in response["error"]


# -- the documented commands ----------------------------------------------------------------


def _commands(markdown: str) -> list[str]:
    """Shell commands of the ```bash blocks, continuation lines joined."""
    blocks = re.findall(r"```bash\n(.*?)```", markdown, flags=re.S)
    return [c for b in blocks for c in b.replace("\\\n", " ").splitlines() if c.strip()]


DOCS = [REPO / "README.md", REPO / "serving" / "README.md"]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_documented_curl_bodies_send_nan_not_null(doc):
    curls = [c for c in _commands(doc.read_text()) if c.startswith("curl")]
    assert curls and not [c for c in curls if "null" in c]


def test_documented_serving_image_build_passes_the_model_name():
    builds = [
        c
        for doc in DOCS
        for c in _commands(doc.read_text())
        if c.startswith("docker build") and "--target serving" in c
    ]
    assert builds and all("MODEL_NAME=" in c for c in builds)


def test_serving_image_runs_as_a_non_root_user():
    dockerfile = (REPO / "Dockerfile").read_text()
    stage = dockerfile.split(" AS serving", 1)[1].split("\nFROM ", 1)[0]
    users = re.findall(r"^USER\s+(\S+)", stage, flags=re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert stage.index("USER") > stage.index("COPY")  # after the files are in place
