"""manifest.json: the frozen view, and validation that rejects inconsistent manifests."""

from __future__ import annotations

import json

import pytest

from pipelines.data.manifest import load_manifest
from pipelines.data.prepare import prepare
from tests.pipeline_fixtures import write_text

ROW = "1\t5\t\t3\t" + "\t".join(["1"] * 10) + "\t" + "\t".join(f"{j:08x}" for j in range(26))


@pytest.fixture()
def data_dir(tmp_path):
    raw = write_text(tmp_path / "train.txt", "\n".join([ROW] * 50) + "\n")
    return prepare("criteo", str(raw), str(tmp_path / "out"), min_count=1, shards=2)


def test_manifest_view_exposes_model_inputs(data_dir):
    manifest = load_manifest(data_dir)
    assert load_manifest(data_dir / "manifest.json") == manifest
    assert load_manifest(manifest) is manifest
    assert list(manifest.vocab_sizes) == manifest.field_names
    assert manifest.vocab_sizes["I1"] == 2 and manifest.vocab_sizes["I2"] == 1  # I2 always missing
    assert manifest.field("I1").reference_vocab_size == 3
    assert manifest.sequence_fields == {}
    assert manifest.raw["schema_version"] == 1 and manifest.label_key == "label"
    assert [p.rsplit("/", 1)[1] for p in manifest.shard_paths("train")] == [
        "train-00000-of-00002.tfrecord.gz",
        "train-00001-of-00002.tfrecord.gz",
    ]
    with pytest.raises(KeyError, match="Unknown field `I99`"):
        manifest.field("I99")
    with pytest.raises(AttributeError):
        manifest.dataset = "frappe"  # frozen


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(schema_version=2), "schema_version 2 is not supported"),
        (lambda m: m["fields"][0].update(vocab_size=99), "vocab_size 99 != num_tokens 1 \\+ 1"),
        (lambda m: m["fields"][0].update(kind="dense"), "kind `dense`"),
        (lambda m: m["splits"].pop("test"), "missing splits \\['test'\\]"),
        (lambda m: m["splits"]["train"].update(rows=1), "shard rows do not add up"),
        (lambda m: m.pop("fingerprint"), "missing key `fingerprint`"),
    ],
    ids=["version", "vocab_size", "kind", "split", "rows", "key"],
)
def test_invalid_manifests_are_rejected(data_dir, edit, message):
    path = data_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=message):
        load_manifest(data_dir)


def test_missing_manifest_says_how_to_prepare(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m pipelines.prepare"):
        load_manifest(tmp_path)
