"""A run is bound to the data it trained on (issue: a finished run silently paired with a
rebuilt dataset, and export building the new vocabulary into the old model)."""

from __future__ import annotations

import json

import pytest

from pipelines.data import load_manifest
from pipelines.data.generate import generate_criteo
from pipelines.training.cli import main as train_main
from pipelines.training.rundir import RunDir

SMALL = [
    "--simple-units", "8", "--complex-units", "8", "--embedding-dim", "4",
    "--set", "train.batch_size=256", "--set", "train.eval_batch_size=1024",
    "--set", "data.min_count=1", "--set", "train.monitor=auc", "--epochs", "1", "--quiet",
]  # fmt: skip


@pytest.mark.slow
def test_changed_data_is_refused_and_export_keeps_the_runs_own_vocabularies(tmp_path, caplog):
    from export.__main__ import main as export_main

    raw = tmp_path / "clicks.txt"
    generate_criteo(str(raw), 2000, seed=1)
    run_dir = tmp_path / "run"
    argv = ["--dataset", "criteo", "--data", str(raw), "--data-dir", str(tmp_path / "data")]
    argv += ["--run-dir", str(run_dir), *SMALL]
    assert train_main(argv) == 0
    run = RunDir(run_dir)
    first = run.bound_manifest()
    assert first is not None
    assert run.read_metrics()["data_fingerprint"] == first.fingerprint
    c1_vocab = first.vocabulary("C1")

    generate_criteo(str(raw), 2000, seed=2)  # the same path, other rows
    caplog.clear()
    assert train_main(argv) == 2  # not "already finished"
    assert f"was trained on data with fingerprint {first.fingerprint[:16]}" in caplog.text
    rebuilt = load_manifest(run.read_metrics()["dataset_dir"])
    assert rebuilt.fingerprint != first.fingerprint
    assert f"now has fingerprint {rebuilt.fingerprint[:16]}" in caplog.text
    assert rebuilt.vocabulary("C1") != c1_vocab

    # export builds the run's own vocabularies, not the rebuilt ones
    out = tmp_path / "serve"
    assert export_main(["--run-dir", str(run_dir), "--model-base-path", str(out)]) == 0
    version = next((out).glob("*/1"))
    extra = json.loads((version / "assets.extra" / "manifest.json").read_text())
    assert extra["fingerprint"] == first.fingerprint
    from export.serving_module import KEY_SEPARATOR, VOCABULARY_ASSET

    # the one vocabulary asset: each line "<field index>\x1f<token>", vocabulary fields in order
    index = [f.name for f in first.fields if f.vocab_file and not f.hash_buckets].index("C1")
    prefix = f"{index}{KEY_SEPARATOR}"
    lines = (version / "assets" / VOCABULARY_ASSET).read_text(encoding="utf-8").split("\n")
    assert [line[len(prefix) :] for line in lines if line.startswith(prefix)] == c1_vocab

    # a run whose copy does not match its recorded fingerprint is refused by export
    metrics = run.read_metrics()
    run.write_metrics({**metrics, "data_fingerprint": "0" * 64})
    caplog.clear()
    assert export_main(["--run-dir", str(run_dir), "--model-base-path", str(out)]) == 2
    assert "was trained on data with fingerprint 0000000000000000" in caplog.text
    assert first.fingerprint[:16] in caplog.text
    run.write_metrics(metrics)

    # --overwrite trains again, now bound to the new data
    assert train_main([*argv, "--overwrite"]) == 0
    assert run.bound_manifest().fingerprint == rebuilt.fingerprint


def test_a_second_training_of_the_same_run_directory_is_refused_naming_the_first(tmp_path, caplog):
    import os

    from tests.conftest import generated_criteo_dataset

    data_dir = generated_criteo_dataset(tmp_path, 500, seed=3, min_count=1)
    run_dir = tmp_path / "run"
    argv = ["--dataset", "criteo", "--data", str(data_dir), "--run-dir", str(run_dir), *SMALL]
    with RunDir(run_dir).lock():  # as a first training would hold it
        assert train_main(argv) == 2
    assert f"{run_dir} is being trained by process {os.getpid()}" in caplog.text
    assert not RunDir(run_dir).finished()
    assert train_main(argv) == 0  # released: the restart trains


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.learning_rate=.inf", "`train.learning_rate` must be > 0.0. Received"),
        ("train.learning_rate=.nan", "`train.learning_rate` must be > 0.0. Received"),
        ("loss.alpha=.nan", "`loss.alpha` must be in [0.0, 1.0]. Received"),
    ],
)
def test_non_finite_numbers_are_refused(override, message):
    from pipelines.training.config import ConfigError, parse_override, resolve_config

    with pytest.raises(ConfigError) as info:
        resolve_config("frappe", None, dict([parse_override(override)]))
    assert message in str(info.value)


def test_shards_have_an_upper_bound_and_generate_names_a_missing_directory(tmp_path, caplog):
    from pipelines.data.prepare import MAX_SHARDS, prepare
    from pipelines.generate import main as generate_main

    with pytest.raises(ValueError, match=rf"`shards` must be in \[1, {MAX_SHARDS}\]"):
        prepare("criteo", str(tmp_path / "x.txt"), tmp_path / "out", shards=MAX_SHARDS + 1)
    out = tmp_path / "nope" / "d.txt"
    assert generate_main(["--rows", "10", "--out", str(out)]) == 2
    assert f"the directory {out.parent} does not exist" in caplog.text


def test_a_truncated_shard_is_prepared_again_or_refused_naming_it(tmp_path, caplog):
    import gzip

    from pipelines.data.prepare import prepare

    raw = tmp_path / "raw.txt.gz"
    generate_criteo(str(raw), 600, seed=4)
    data_dir = prepare("criteo", str(raw), tmp_path / "out", min_count=1)
    manifest = load_manifest(data_dir)
    shard = data_dir / manifest.splits["train"].shards[0].file
    whole = shard.read_bytes()
    assert manifest.splits["train"].shards[0].bytes == len(whole)
    shard.write_bytes(whole[: len(whole) // 2])
    # training on the prepared directory refuses, naming the shard (the raw input is unknown)
    argv = ["--dataset", "criteo", "--data", str(data_dir), "--run-dir", str(tmp_path / "r")]
    assert train_main([*argv, *SMALL]) == 2
    assert f"{shard}: {len(whole) // 2} bytes, the manifest records {len(whole)}" in caplog.text
    # prepare with the raw input builds it again, the same bytes
    caplog.clear()
    assert prepare("criteo", str(raw), tmp_path / "out", min_count=1) == data_dir
    assert "Prepared data damaged, preparing it again" in caplog.text
    assert shard.read_bytes() == whole
    # same size, other bytes: only --verify sees it
    shard.write_bytes(bytes(len(whole)))
    caplog.clear()
    prepare("criteo", str(raw), tmp_path / "out", min_count=1)
    assert "damaged" not in caplog.text
    prepare("criteo", str(raw), tmp_path / "out", min_count=1, verify=True)
    assert "sha256 differs from the manifest's" in caplog.text
    assert shard.read_bytes() == whole
    # a truncated gzip raw file and a plain file named .gz are named
    from pipelines.data import DataError

    cut = tmp_path / "cut.txt.gz"
    cut.write_bytes(raw.read_bytes()[:2000])
    with pytest.raises(DataError, match=rf"{cut}: truncated gzip file"):
        prepare("criteo", str(cut), tmp_path / "out2", force=True)
    plain = tmp_path / "plain.txt.gz"
    plain.write_bytes(gzip.decompress(raw.read_bytes()))
    with pytest.raises(DataError, match=rf"{plain}: not a valid gzip file"):
        prepare("criteo", str(plain), tmp_path / "out2", force=True)
    assert not (tmp_path / "out2" / "criteo").exists()
