"""The fused serving lookup (one table for every field, steps run over stacked fields): known
ids by hand for Frappe's and Criteo's layouts, unseen, malformed and missing values included;
the same ids and bit-identical predictions as the per-field graph; a SavedModel a TF1 session
(TF Serving's loader) restores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from export.serving_module import (
    KEY_SEPARATOR,
    OUTPUT_NAME,
    SERVING_SIGNATURE,
    VOCABULARY_ASSET,
    RawFeatureServer,
    write_vocabularies,
)
from pipelines.data.manifest import load_manifest
from pipelines.data.prepare import prepare
from pipelines.data.schema import load_schema
from pipelines.data.transforms import LOG_SQUARED
from tests.pipeline_fixtures import write_text

FRAPPE_RANGES = {f.name: f.range for f in load_schema("frappe").fields}


def _frappe_libfm(rows: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(rows):
        tokens = [f"{rng.integers(lo, min(hi, lo + 5) + 1)}:1" for lo, hi in FRAPPE_RANGES.values()]
        lines.append(" ".join([str(rng.choice([-1, 1])), *tokens]))
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def frappe_layout(tmp_path_factory):
    """Frappe's schema (10 `dtype: int` categorical fields) on 300 small libFM rows."""
    root = tmp_path_factory.mktemp("frappe-layout")
    names = {"train": "frappe.train.libfm", "valid": "frappe.validation.libfm"}
    names["test"] = "frappe.test.libfm"
    for i, name in enumerate(names.values()):
        write_text(root / "raw" / name, _frappe_libfm(300 if i == 0 else 40, seed=i))
    return load_manifest(prepare("frappe", str(root / "raw"), root / "out", min_count=1))


@pytest.fixture(scope="module")
def criteo_layout(tmp_path_factory):
    """Criteo's schema (13 log_squared bucketized numbers, 26 strings) on 3,000 generated rows."""
    from pipelines.data.generate import generate_criteo

    root = tmp_path_factory.mktemp("criteo-layout")
    generate_criteo(str(root / "train.txt"), 3000, seed=5)
    return load_manifest(prepare("criteo", str(root / "train.txt"), root / "out", min_count=2))


def _cases(manifest, field) -> tuple[list, list[int]]:
    """Raw values a client may send for ``field`` and the id each must get, by hand from the
    vocabulary file (line i -> id i + 1; 0 for unseen, malformed and missing values)."""
    vocab = manifest.vocabulary(field.name)
    assert len(vocab) >= 2, field.name
    line = {token: i + 1 for i, token in enumerate(vocab)}
    if field.is_numeric:  # a number; its log_squared bucket is the token
        huge = 1e15  # bucket floor(ln(1e15)^2) = 1192: never in a vocabulary of 3,000 rows
        assert str(int(LOG_SQUARED.apply(np.array([huge]))[0])) not in line
        values = [LOG_SQUARED.raw_for(t) for t in (vocab[0], vocab[1], vocab[-1])]
        return [*values, math.nan, huge, math.inf], [1, 2, len(vocab), 0, 0, 0]
    values = [vocab[0], f"  {vocab[1]} ", vocab[-1], "never-seen", "", " "]
    ids = [1, 2, len(vocab), 0, 0, 0]
    if field.name in FRAPPE_RANGES:  # `dtype: int`: canonical integers, the rest malformed
        values += [f"00{vocab[1]}", f"{vocab[-1]}.0", "1.5", "x7"]
        ids += [2, len(vocab), 0, 0]
    assert "never-seen" not in line
    return values, ids


def _batch(manifest) -> tuple[dict, dict]:
    cases = {f.name: _cases(manifest, f) for f in manifest.fields}
    rows = max(len(v) for v, _ in cases.values())
    raw, expected = {}, {}
    for field in manifest.fields:
        values, ids = cases[field.name]
        order = [i % len(values) for i in range(rows)]
        dtype = tf.float64 if field.is_numeric else tf.string
        raw[field.name] = tf.constant([values[i] for i in order], dtype)
        expected[field.name] = np.asarray([ids[i] for i in order], np.int64)
    return raw, expected


def _model(manifest):
    from tf4ctr_keras import build_tf4ctr

    return build_tf4ctr(
        manifest.vocab_sizes, simple_units=[8], complex_units=[8], embedding_dim=4, seed=1
    )


@pytest.mark.parametrize("layout", ["frappe_layout", "criteo_layout"])
def test_fused_lookup_gives_the_ids_known_by_hand_and_the_per_field_ids(layout, request):
    manifest = request.getfixturevalue(layout)
    assert len(manifest.fields) == {"frappe_layout": 10, "criteo_layout": 39}[layout]
    raw, expected = _batch(manifest)
    model = _model(manifest)
    fused = RawFeatureServer(model, manifest)
    per_field = RawFeatureServer(model, manifest, lookup="per_field")
    got, reference = fused.encode(raw), per_field.encode(raw)
    for name in manifest.field_names:
        np.testing.assert_array_equal(got[name].numpy(), expected[name], err_msg=name)
        np.testing.assert_array_equal(reference[name].numpy(), expected[name], err_msg=name)
    np.testing.assert_array_equal(
        fused.serve(raw)[OUTPUT_NAME].numpy(), per_field.serve(raw)[OUTPUT_NAME].numpy()
    )


def test_one_vocabulary_file_holds_every_field_behind_its_index(criteo_layout, tmp_path):
    fields = [f for f in criteo_layout.fields if f.vocab_file]
    starts = write_vocabularies(criteo_layout, fields, tmp_path / VOCABULARY_ASSET)
    lines = (tmp_path / VOCABULARY_ASSET).read_text(encoding="utf-8").split("\n")[:-1]
    assert len(lines) == sum(len(criteo_layout.vocabulary(f.name)) for f in fields)
    for index, (field, start) in enumerate(zip(fields, starts, strict=True)):
        vocab = criteo_layout.vocabulary(field.name)
        assert lines[start : start + len(vocab)] == [f"{index}{KEY_SEPARATOR}{t}" for t in vocab]


def test_a_batch_size_mismatch_names_the_first_differing_field(criteo_layout):
    server = RawFeatureServer(_model(criteo_layout), criteo_layout)
    raw, _ = _batch(criteo_layout)
    short = dict(raw, C7=raw["C7"][:2])  # a string field after the 13 numbers
    with pytest.raises(tf.errors.InvalidArgumentError, match="input `C7` has a different batch"):
        server.serve(short)
    short = dict(raw, I3=raw["I3"][:2])
    with pytest.raises(tf.errors.InvalidArgumentError, match="input `I3` has a different batch"):
        server.serve(short)


def test_export_restores_in_a_tf1_session_as_tf_serving_loads_it(frappe_layout, tmp_path):
    """TF Serving and `saved_model_cli run` restore variables through the SavedModel's saver;
    before the signatures' variables were tracked, that left the model's weights unset
    ("Could not find variable ...", tensorflow/serving#2250)."""
    server = RawFeatureServer(_model(frappe_layout), frappe_layout)
    tf.saved_model.save(server, str(tmp_path / "1"), signatures=server.signatures())
    assert (tmp_path / "1" / "assets" / VOCABULARY_ASSET).is_file()
    raw, _ = _batch(frappe_layout)
    eager = tf.saved_model.load(str(tmp_path / "1")).signatures[SERVING_SIGNATURE](**raw)
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(tmp_path / "1"))
        signature = meta.signature_def[SERVING_SIGNATURE]
        feeds = {signature.inputs[k].name: v.numpy() for k, v in raw.items()}
        got = session.run(signature.outputs[OUTPUT_NAME].name, feeds)
    np.testing.assert_array_equal(got, eager[OUTPUT_NAME].numpy())


def test_unknown_lookup_is_refused_with_the_value():
    with pytest.raises(ValueError, match="Received: `lookup='shared'`"):
        RawFeatureServer(None, None, lookup="shared")
