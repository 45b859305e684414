"""The serving contract of an exported run, checked without the TF Serving binary
(../shared/reference/serving.md section 8)."""

import math
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from export import EXAMPLES_SIGNATURE, OUTPUT_NAME, SERVING_SIGNATURE, export_run, next_version
from export.exporter import WARMUP_FILE
from export.raw_rows import RawDecoder
from pipelines.data.manifest import load_manifest
from pipelines.data.reader import make_dataset
from pipelines.data.transforms import LOG_SQUARED
from tests.conftest import train_small_run


@pytest.fixture(scope="module")
def loaded(frappe_export):
    return tf.saved_model.load(str(frappe_export[2]))


def _keras_model(run_dir):
    import keras

    import tf4ctr_keras  # noqa: F401

    return keras.saving.load_model(run_dir / "model.keras")


@pytest.mark.slow
def test_layout_is_a_versioned_tf_serving_directory(frappe_export):
    _, _, version_dir = frappe_export
    assert version_dir.name == "1" and version_dir.parent.name == "frappe_ctr"
    for name in (
        "saved_model.pb",
        "variables",
        "fingerprint.pb",
        "assets/vocabularies.txt",  # every field's vocabulary, one table (serving_module)
        f"assets.extra/{WARMUP_FILE}",
        "assets.extra/manifest.json",
        "assets.extra/config.yaml",
    ):
        assert (version_dir / name).exists(), name
    assert [p.name for p in version_dir.parent.iterdir()] == ["1"]  # no temporary left


@pytest.mark.slow
def test_saved_model_cli_lists_predict_signature_with_only_the_probability(frappe_export):
    _, dataset_dir, version_dir = frappe_export
    out = subprocess.run(
        [
            "saved_model_cli",
            "show",
            "--dir",
            str(version_dir),
            "--tag_set",
            "serve",
            "--signature_def",
            SERVING_SIGNATURE,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Method name is: tensorflow/serving/predict" in out
    assert out.count("outputs['") == 1 and "outputs['ctr_probability']" in out
    fields = load_manifest(dataset_dir).field_names
    assert sorted(
        out.split("inputs['")[i].split("'")[0] for i in range(1, len(fields) + 1)
    ) == sorted(fields)
    assert "DT_FLOAT" in out.split("outputs[")[1]


@pytest.mark.slow
def test_raw_signature_matches_keras_on_ids_for_every_frappe_test_row(frappe_export, loaded):
    run_dir, dataset_dir, _ = frappe_export
    manifest = load_manifest(dataset_dir)
    model = _keras_model(run_dir)
    decoder = RawDecoder(manifest)
    serve = loaded.signatures[SERVING_SIGNATURE]
    rows, worst = 0, 0.0
    for features, _ in make_dataset(dataset_dir, "test", 8192):
        ids = {k: v.numpy() for k, v in features.items()}
        expected = model.predict(ids, verbose=0)["ctr"][:, 0]
        raw = decoder.decode(ids)
        got = serve(**{k: tf.constant(v.tolist()) for k, v in raw.items()})[OUTPUT_NAME]
        worst = max(worst, float(np.max(np.abs(got.numpy() - expected))))
        rows += len(expected)
    assert rows == manifest.splits["test"].rows == 28860
    assert worst < 1e-5


@pytest.mark.slow
def test_example_signature_agrees_with_raw_signature(frappe_export, loaded):
    _, dataset_dir, _ = frappe_export
    manifest = load_manifest(dataset_dir)
    features, _ = next(iter(make_dataset(dataset_dir, "test", 50)))
    raw = RawDecoder(manifest).decode({k: v.numpy() for k, v in features.items()})
    examples = []
    for i in range(50):
        feature = {
            k: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v[i].encode()]))
            for k, v in raw.items()
            if v[i] != ""
        }  # empty = absent feature
        examples.append(
            tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
        )
    by_example = loaded.signatures[EXAMPLES_SIGNATURE](examples=tf.constant(examples))
    by_raw = loaded.signatures[SERVING_SIGNATURE](
        **{k: tf.constant(v.tolist()) for k, v in raw.items()}
    )
    np.testing.assert_allclose(by_example[OUTPUT_NAME], by_raw[OUTPUT_NAME], atol=1e-6)


@pytest.mark.slow
def test_unseen_and_empty_values_map_to_the_oov_id(frappe_export, loaded):
    run_dir, dataset_dir, _ = frappe_export
    manifest = load_manifest(dataset_dir)
    model = _keras_model(run_dir)
    raw = {f: tf.constant(["never-seen", "", "\x00"]) for f in manifest.field_names}
    got = loaded.signatures[SERVING_SIGNATURE](**raw)[OUTPUT_NAME].numpy()
    zeros = {f: np.zeros(3, "int64") for f in manifest.field_names}
    np.testing.assert_allclose(got, model.predict(zeros, verbose=0)["ctr"][:, 0], atol=1e-6)
    assert np.all((got > 0) & (got < 1))


@pytest.mark.slow
def test_bad_requests_fail_with_the_field_named(frappe_export, loaded):
    _, dataset_dir, _ = frappe_export
    fields = load_manifest(dataset_dir).field_names
    serve = loaded.signatures[SERVING_SIGNATURE]
    good = {f: tf.constant(["1", "2"]) for f in fields}
    missing = dict(good)
    del missing["city"]
    with pytest.raises(TypeError, match="city"):
        serve(**missing)
    # A wrong dtype is refused by the signature, but only the client names the field
    # (serving.client validates before sending; see test_serving.py).
    with pytest.raises((TypeError, tf.errors.InvalidArgumentError)):
        serve(**dict(good, user=tf.constant([1.0, 2.0])))
    with pytest.raises(tf.errors.InvalidArgumentError, match="input `item` has a different batch"):
        serve(**dict(good, item=tf.constant(["1", "2", "3"])))


@pytest.mark.slow
def test_every_warmup_record_parses_and_runs(frappe_export, loaded):
    from tensorflow_serving.apis import prediction_log_pb2

    _, _, version_dir = frappe_export
    serve = loaded.signatures[SERVING_SIGNATURE]
    records = list(tf.data.TFRecordDataset(str(version_dir / "assets.extra" / WARMUP_FILE)))
    assert 0 < len(records) <= 1000
    for record in records:
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = log.predict_log.request
        assert request.model_spec.name == "frappe_ctr"
        assert request.model_spec.signature_name == SERVING_SIGNATURE
        inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        out = serve(**inputs)[OUTPUT_NAME].numpy()
        assert out.shape == (len(next(iter(inputs.values()))),) and np.all(np.isfinite(out))


@pytest.mark.slow
def test_versions_increment_and_existing_versions_are_refused(frappe_export, tmp_path):
    run_dir, _, _ = frappe_export
    assert next_version(tmp_path / "absent") == 1
    first = export_run(run_dir, tmp_path, model_name="m", version=3)
    assert first.name == "3" and next_version(tmp_path / "m") == 4
    with pytest.raises(FileExistsError, match="immutable"):
        export_run(run_dir, tmp_path, model_name="m", version=3)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["3"]


def test_unfinished_run_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a finished run"):
        export_run(tmp_path, tmp_path / "models")


def test_in_graph_log_squared_equals_the_pipelines_transform_on_raw_integers():
    # Raw Criteo values are integers: every one up to 3 million, the integers around each
    # bucket edge e^sqrt(k) up to 2**40, and a few beyond float32's exact range.
    edges = np.exp(np.sqrt(np.arange(1, 800)))
    near = np.floor(edges[edges < 2.0**40])[:, None] + np.arange(-2, 3)[None, :]
    values = np.concatenate([np.arange(-3, 3_000_000), near.ravel(), [2.0**24 + 1, 2.0**31 + 3]])
    got = LOG_SQUARED.apply_tf(tf.constant(values, tf.float64)).numpy()
    np.testing.assert_array_equal(got, LOG_SQUARED.apply(values))


@pytest.mark.parametrize("token", ["-1", "0", "2", "3", "7", "25", "150"])
def test_representative_raw_numbers_transform_back_to_their_token(token):
    value = LOG_SQUARED.raw_for(token)
    assert int(LOG_SQUARED.apply(np.array([value]))[0]) == int(token)


@pytest.mark.slow
def test_criteo_export_buckets_raw_integers_in_graph(tmp_path):
    from pipelines.data.generate import generate_criteo
    from pipelines.data.prepare import prepare

    raw_file = tmp_path / "train.txt"
    generate_criteo(str(raw_file), 20000, seed=3)
    dataset_dir = prepare("criteo", str(raw_file), tmp_path / "data", min_count=3)
    run_dir = train_small_run(tmp_path, "criteo", dataset_dir)
    version_dir = export_run(run_dir, tmp_path / "models")
    serve = tf.saved_model.load(str(version_dir)).signatures[SERVING_SIGNATURE]
    manifest = load_manifest(dataset_dir)
    features, _ = next(iter(make_dataset(dataset_dir, "test", 500)))
    ids = {k: v.numpy() for k, v in features.items()}
    raw = RawDecoder(manifest).decode(ids)
    assert np.isnan(raw["I1"]).any()  # missing integers are sent as NaN
    from serving.client import load_input_spec

    spec = load_input_spec(version_dir)
    assert spec["I1"] == "double" and spec["C1"] == "string"
    inputs = {
        k: tf.constant(v) if v.dtype == np.float64 else tf.constant(v.tolist())
        for k, v in raw.items()
    }
    got = serve(**inputs)[OUTPUT_NAME].numpy()
    expected = _keras_model(run_dir).predict(ids, verbose=0)["ctr"][:, 0]
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_kkbox_serving_graph_applies_isrc_age_and_sequence_transforms(tmp_path):
    from export.serving_module import RawFeatureServer
    from tests.pipeline_fixtures import write_text
    from tests.test_pipeline_kkbox import TEST, TRAIN, _csv
    from tf4ctr_keras import build_tf4ctr

    raw_dir = tmp_path / "raw"
    write_text(raw_dir / "train.csv", _csv(TRAIN))
    write_text(raw_dir / "valid.csv", _csv(TRAIN))
    write_text(raw_dir / "test.csv", _csv(TEST))
    from pipelines.data.prepare import prepare

    manifest = load_manifest(prepare("kkbox", str(raw_dir), tmp_path / "out", min_count=1))
    assert manifest.field("isrc").transform == "isrc_country"
    assert manifest.field("bd").transform == "age_bucket"
    model = build_tf4ctr(
        manifest.vocab_sizes,
        sequence_fields={"genre_ids": "mean", "artist_name": "mean"},
        simple_units=[8],
        complex_units=[8],
        embedding_dim=4,
        seed=1,
    )
    server = RawFeatureServer(model, manifest)
    # Raw rows exactly as in the CSV: full ISRC codes, ages, '|'-separated sequences.
    rows = TRAIN + TEST
    raw = {
        f.name: tf.constant([float(r[f.name]) if r[f.name] else math.nan for r in rows], tf.float64)
        if f.name == "bd"
        else tf.constant([r[f.name] for r in rows])
        for f in manifest.fields
    }
    ids = server.encode(raw)
    from tests.pipeline_fixtures import read_split

    written = read_split(manifest.directory, "valid")  # valid = the train rows, raw order
    for name in manifest.field_names:
        np.testing.assert_array_equal(ids[name].numpy()[:6], written[name][:6], err_msg=name)
    got = server.serve(raw)[OUTPUT_NAME].numpy()
    expected = model({k: v.numpy() for k, v in ids.items()}, training=False)["ctr"][:, 0]
    np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.slow
def test_inputs_json_names_the_type_each_field_takes(frappe_export):
    from serving.client import load_input_spec

    _, dataset_dir, version_dir = frappe_export
    spec = load_input_spec(version_dir)
    assert list(spec) == load_manifest(dataset_dir).field_names
    assert set(spec.values()) == {"string"}
