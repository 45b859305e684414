"""End-to-end tests of ``python -m pipelines.train`` on small generated Criteo-format data."""

import json
import logging
import os
import signal
import subprocess
import sys
import time
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


def _state(checkpoints):
    """The latest checkpoint's state, or None (also while LATEST is being replaced)."""
    try:
        return read_state(checkpoints)
    except (OSError, ValueError):
        return None


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_checkpoint(prepared, tmp_path):
    args = [
        "--dataset",
        "criteo",
        "--data",
        str(prepared),
        "--epochs",
        "6",
        "--quiet",
        "--set",
        "train.patience=10",
        *SMALL,
    ]
    reference = _run([*args, "--run-dir", str(tmp_path / "uninterrupted")])
    assert reference.returncode == 0, reference.stderr[-3000:]

    run_dir = tmp_path / "killed"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.train", *args, "--run-dir", str(run_dir)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoints = run_dir / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline:
        state = _state(checkpoints)
        if state is not None and state["epochs_done"] >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = read_state(checkpoints)["epochs_done"]
    assert 2 <= done_before < 6 and not (run_dir / "metrics.json").exists()

    resumed = _run([*args, "--run-dir", str(run_dir)])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"after epoch {done_before}" in resumed.stderr
    history = json.loads((run_dir / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5, 6]
    got = json.loads((run_dir / "metrics.json").read_text())["test"]["auc"]
    want = json.loads((tmp_path / "uninterrupted" / "metrics.json").read_text())["test"]["auc"]
    assert abs(got - want) < 0.01


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
    assert "Valid choices: autoint, dcn, dcnv2, deepfm, dnn, dualmlp, tf4ctr" in caplog.text
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
