"""End-to-end tests of ``python -m pipelines.train`` on small generated Criteo-format data."""

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipelines.training.cli import main
from pipelines.training.schedule import read_state
from tests.conftest import generated_criteo_dataset

REPO = Path(__file__).resolve().parents[1]
SMALL = [
    "--simple-units",
    "32",
    "--complex-units",
    "64,64",
    "--batch-size",
    "1024",
    "--set",
    "train.eval_batch_size=8192",
]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return generated_criteo_dataset(tmp_path_factory.mktemp("criteo"), 60000, seed=5, min_count=5)


def _run(args, **kwargs):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, "-m", "pipelines.train", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        **kwargs,
    )


@pytest.mark.slow
def test_cli_trains_and_writes_metrics_json(prepared, tmp_path):
    run_dir = tmp_path / "run"
    result = _run(
        [
            "--dataset",
            "criteo",
            "--data",
            str(prepared),
            "--epochs",
            "2",
            "--quiet",
            "--run-dir",
            str(run_dir),
            *SMALL,
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["valid"]) == {"auc", "logloss"}  # Criteo has no group key: no gAUC
    assert metrics["epochs"] == 2 and 1 <= metrics["best_epoch"] <= 2
    assert metrics["test"]["auc"] > 0.6  # the generator's labels depend on the features
    assert json.loads(result.stdout.strip().splitlines()[-1]) == metrics["test"]
    for name in (
        "config.yaml",
        "history.csv",
        "history.json",
        "model.keras",
        "checkpoints/LATEST",
        "checkpoints/epoch-0002/state.json",
        "checkpoints/epoch-0002/last.weights.h5",
        "checkpoints/epoch-0002/best.weights.h5",
        "checkpoints/epoch-0001/state.json",
    ):
        assert (run_dir / name).exists(), name
    assert any((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    # The same command again reports the finished run instead of training again.
    again = _run(
        [
            "--dataset",
            "criteo",
            "--data",
            str(prepared),
            "--epochs",
            "2",
            "--quiet",
            "--run-dir",
            str(run_dir),
            *SMALL,
        ]
    )
    assert again.returncode == 0 and "already finished" in again.stderr


@pytest.mark.slow
def test_run_killed_mid_epoch_resumes_to_the_uninterrupted_result_exactly(prepared, tmp_path):
    """SIGKILL in the middle of epoch 3 (dropout on): the restart resumes after epoch 2 and
    ends with metrics.json and history.json equal to an uninterrupted run's, timings aside:
    the epoch's data order is a function of (seed, epoch) and the checkpoint holds the
    dropout generators' state."""
    from pipelines.data.manifest import load_manifest
    from tests.fault_child import timeless

    args = [
        "--dataset",
        "criteo",
        "--data",
        str(prepared),
        "--epochs",
        "4",
        "--quiet",
        "--dropout",
        "0.2",
        "--set",
        "train.patience=10",
        *SMALL,
    ]
    reference = _run([*args, "--run-dir", str(tmp_path / "uninterrupted")])
    assert reference.returncode == 0, reference.stderr[-3000:]

    run_dir = tmp_path / "killed"
    steps = -(-load_manifest(prepared).splits["train"].rows // 1024)
    killed = subprocess.run(
        [
            sys.executable,
            str(REPO / "tests" / "fault_child.py"),
            str(2 * steps + steps // 2),  # the middle of epoch 3
            "pipelines.training.cli",
            *args,
            "--run-dir",
            str(run_dir),
        ],
        cwd=REPO,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert read_state(run_dir / "checkpoints")["epochs_done"] == 2
    assert not (run_dir / "metrics.json").exists()

    resumed = _run([*args, "--run-dir", str(run_dir)])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "after epoch 2" in resumed.stderr
    for name in ("metrics.json", "history.json"):
        got = json.loads((run_dir / name).read_text())
        want = json.loads((tmp_path / "uninterrupted" / name).read_text())
        assert timeless(got) == timeless(want), name
    assert [h["epoch"] for h in json.loads((run_dir / "history.json").read_text())] == [1, 2, 3, 4]


def test_run_killed_after_its_last_epoch_is_finished_from_its_checkpoint(
    prepared, tmp_path, caplog
):
    """Killed after the schedule's last checkpoint but before ``metrics.json``: the next start
    trains nothing, restores the best epoch's weights and writes the same metrics."""
    run_dir = tmp_path / "run"
    args = [
        "--dataset", "criteo", "--data", str(prepared), "--epochs", "3", "--quiet",
        "--run-dir", str(run_dir), *SMALL,
    ]  # fmt: skip
    assert main(args) == 0
    first = json.loads((run_dir / "metrics.json").read_text())
    assert first["best_epoch"] < first["epochs"] == 3  # the best weights are not the last ones
    (run_dir / "metrics.json").unlink()
    caplog.clear()
    caplog.set_level(logging.INFO)
    assert main(args) == 0
    assert "after epoch 3 (best 2)" in caplog.text and "epoch 3: val_auc" not in caplog.text
    again = json.loads((run_dir / "metrics.json").read_text())
    assert again["valid"] == first["valid"] and again["test"] == first["test"]
    assert again["best_epoch"] == first["best_epoch"] and again["epochs"] == 3


def test_bad_arguments_are_refused_before_any_work(tmp_path, caplog):
    run_dir = tmp_path / "never"
    assert main(["--dataset", "frappe", "--model", "deepfn", "--run-dir", str(run_dir)]) == 2
    assert (
        "Valid choices: afn, autoint, cl4ctr, dcn, dcnv2, deepfm, dnn, dualmlp, edcn, eulernet, tf4ctr"
        in caplog.text
    )
    assert main(["--dataset", "frappe", "--alpha", "1.5", "--run-dir", str(run_dir)]) == 2
    assert "`loss.alpha` must be in [0.0, 1.0]. Received: `loss.alpha=1.5`" in caplog.text
    assert main(["--dataset", "frappe", "--set", "model.hidden=3", "--run-dir", str(run_dir)]) == 2
    assert "Unknown key(s) ['model.hidden']" in caplog.text
    assert main(["--dataset", "frappe", "--run-dir", str(run_dir)]) == 2
    assert "--dataset frappe needs --data PATH" in caplog.text
    assert (
        main(["--dataset", "frappe", "--data", str(tmp_path / "nope"), "--run-dir", str(run_dir)])
        == 2
    )
    assert "does not exist; expected a directory with libfm files per split" in caplog.text
    assert not run_dir.exists()


def test_unknown_dataset_lists_choices(caplog):
    assert main(["--dataset", "avazu"]) == 2
    assert "Unknown dataset `avazu`. Bundled datasets: criteo, frappe" in caplog.text


def test_a_run_dir_with_another_config_is_refused(prepared, tmp_path, caplog):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("dataset: criteo\n")
    assert main(["--dataset", "criteo", "--data", str(prepared), "--run-dir", str(run_dir)]) == 2
    assert "holds a run with another configuration" in caplog.text


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return generated_criteo_dataset(tmp_path_factory.mktemp("tiny"), 4000, seed=9, min_count=2)


@pytest.mark.slow
@pytest.mark.parametrize("precision, jit", [("mixed_float16", True), ("mixed_bfloat16", False)])
def test_mixed_precision_and_xla_train_with_float32_loss(tiny, tmp_path, precision, jit):
    from pipelines.training.config import resolve_config
    from pipelines.training.run import train

    config = resolve_config(
        "criteo",
        overrides={
            "model.simple_units": [16],
            "model.complex_units": [16, 16],
            "train.batch_size": 512,
            "train.max_epochs": 2,
            "train.precision": precision,
            "train.jit": jit,
            "data.path": str(tiny),
        },
    )
    metrics = train(config, tiny, tmp_path / "run", verbose=0)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert all(np.isfinite(h["loss"]) for h in history)
    assert 0.0 < metrics["test"]["logloss"] < 1.0 and 0.0 < metrics["test"]["auc"] <= 1.0
    import keras

    import tf4ctr_keras  # noqa: F401

    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    assert model.dtype_policy.name == precision
    assert all(w.dtype == "float32" for w in model.trainable_weights)
