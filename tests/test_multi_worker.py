"""``--strategy multi_worker``: two worker processes on localhost ports, custom step.

Checks: both workers end with identical weights (same SHA-256), the chief alone writes the run
directory, the result equals single-worker ``fit`` on the same global batches, a killed worker
is reported by its peer, and the input sharding helpers split data as documented.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines.training.config import ConfigError
from pipelines.training.multi_worker import (
    cluster_role,
    input_mode,
    replica_bounds,
    steps_per_epoch,
    train_input_fn,
)
from tests.conftest import generated_criteo_dataset

REPO = Path(__file__).resolve().parents[1]
# Small and deterministic: no dropout and no batch norm (per-replica batch statistics differ
# from whole-batch ones by design), embedding L2 on to check the regulariser's scaling.
SMALL = [
    "--simple-units",
    "16",
    "--complex-units",
    "16,16",
    "--batch-size",
    "500",
    "--dropout",
    "0",
    "--embedding-l2",
    "0.01",
    "--set",
    "model.batch_norm=false",
    "--quiet",
]


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _tf_config(ports: list[int], index: int) -> str:
    return json.dumps(
        {
            "cluster": {"worker": [f"localhost:{p}" for p in ports]},
            "task": {"type": "worker", "index": index},
        }
    )


def _launch(args: list[str], tf_config: str | None, log: Path) -> subprocess.Popen:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = tf_config
    return subprocess.Popen(
        [sys.executable, "-m", "pipelines.train", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )


def _digest(log: Path) -> str:
    lines = [line for line in log.read_text().splitlines() if "final weights sha256" in line]
    assert lines, log.read_text()[-3000:]
    return lines[-1].split()[-1]


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """One train file: two workers cannot split files, so they slice the global batches."""
    from pipelines.data.generate import generate_criteo
    from pipelines.data.prepare import prepare

    root = tmp_path_factory.mktemp("mw")
    generate_criteo(str(root / "train.txt.gz"), 6000, seed=11)
    return prepare("criteo", str(root / "train.txt.gz"), root / "prepared", min_count=2, shards=1)


@pytest.fixture(scope="module")
def sharded_dataset_dir(tmp_path_factory):
    """Eight train files (the default): each worker reads its own four."""
    return generated_criteo_dataset(tmp_path_factory.mktemp("mw8"), 6000, seed=11, min_count=2)


@pytest.mark.slow
def test_two_workers_match_each_other_and_single_worker_fit(dataset_dir, tmp_path):
    # Two epochs: epoch e is read in the order of (seed, e) on both paths (Keras `fit`
    # single-host, the custom loop on two workers), so the second epoch agrees as well.
    common = ["--dataset", "criteo", "--data", str(dataset_dir), "--epochs", "2", *SMALL]
    ports = _free_ports(2)
    run_dir = tmp_path / "mw-run"
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = [
        _launch(
            [*common, "--strategy", "multi_worker", "--run-dir", str(run_dir)],
            _tf_config(ports, i),
            logs[i],
        )
        for i in range(2)
    ]
    codes = [w.wait(timeout=600) for w in workers]
    assert codes == [0, 0], "\n".join(log.read_text()[-3000:] for log in logs)
    assert _digest(logs[0]) == _digest(logs[1])  # identical weights on both workers
    assert "(chief)" in logs[0].read_text() and "(chief)" not in logs[1].read_text()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["workers"] == 2 and metrics["replicas"] == 2
    assert metrics["input_mode"] == "batches" and metrics["epochs"] == 2

    single_dir = tmp_path / "single-run"
    single = _launch([*common, "--run-dir", str(single_dir)], None, tmp_path / "single.log")
    assert single.wait(timeout=600) == 0, (tmp_path / "single.log").read_text()[-3000:]
    multi_model = keras.saving.load_model(run_dir / "model.keras")
    single_model = keras.saving.load_model(single_dir / "model.keras")
    for a, b in zip(multi_model.weights, single_model.weights, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    single_metrics = json.loads((single_dir / "metrics.json").read_text())
    assert abs(metrics["test"]["auc"] - single_metrics["test"]["auc"]) < 1e-4


@pytest.mark.slow
def test_a_killed_worker_is_reported_by_its_peer(sharded_dataset_dir, tmp_path):
    ports = _free_ports(2)
    run_dir = tmp_path / "run"
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    args = [
        "--dataset",
        "criteo",
        "--data",
        str(sharded_dataset_dir),
        "--epochs",
        "50",
        "--strategy",
        "multi_worker",
        "--run-dir",
        str(run_dir),
        *SMALL,
        "--set",
        "train.patience=50",
    ]
    chief, worker = (_launch(args, _tf_config(ports, i), logs[i]) for i in range(2))
    deadline = time.time() + 300
    while not (run_dir / "checkpoints" / "LATEST").exists():  # one epoch done
        assert time.time() < deadline and chief.poll() is None, logs[0].read_text()[-3000:]
        time.sleep(0.5)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    code = chief.wait(timeout=300)
    text = logs[0].read_text()
    assert code == 3, text[-3000:]
    assert "a peer of this multi-worker run failed" in text
    assert "Restart every worker" in text and str(run_dir / "checkpoints") in text
    assert not (run_dir / "metrics.json").exists()


def test_tf_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="needs the TF_CONFIG"):
        cluster_role({})
    with pytest.raises(ConfigError, match="not valid JSON"):
        cluster_role({"TF_CONFIG": "{"})
    bad_index = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}
    with pytest.raises(ConfigError, match=r'task\["index"\] = 2 is out of range'):
        cluster_role({"TF_CONFIG": json.dumps(bad_index)})
    bad_address = {"cluster": {"worker": ["a:1", "b"]}, "task": {"type": "worker", "index": 0}}
    with pytest.raises(ConfigError, match=r'cluster\["worker"\]\[1\] = \'b\' is not "host:port"'):
        cluster_role({"TF_CONFIG": json.dumps(bad_address)})
    ps = {"cluster": {"worker": ["a:1"], "ps": ["p:1"]}, "task": {"type": "worker", "index": 0}}
    with pytest.raises(ConfigError, match=r"jobs \['ps'\] are not used"):
        cluster_role({"TF_CONFIG": json.dumps(ps)})
    chief = {"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "worker"}}
    chief["task"]["index"] = 0
    role = cluster_role({"TF_CONFIG": json.dumps(chief)})
    assert (role.num_workers, role.is_chief, role.name) == (2, False, "worker:0")


def test_cli_refuses_multi_worker_without_tf_config_or_on_raw_data(tmp_path, caplog):
    from pipelines.training.cli import main

    os.environ.pop("TF_CONFIG", None)
    assert main(["--dataset", "criteo", "--data", str(tmp_path), "--strategy", "multi_worker"]) == 2
    assert "needs the TF_CONFIG environment variable" in caplog.text
    os.environ["TF_CONFIG"] = _tf_config([1234], 0)
    try:
        assert (
            main(["--dataset", "criteo", "--data", str(tmp_path), "--strategy", "multi_worker"])
            == 2
        )
    finally:
        del os.environ["TF_CONFIG"]
    assert "trains on a prepared dataset directory" in caplog.text


def test_replica_slices_partition_every_global_batch():
    for rows in (1, 2, 7, 500):
        for replicas in (1, 2, 3, 4):
            bounds = [replica_bounds(rows, r, replicas) for r in range(replicas)]
            assert bounds[0][0] == 0 and bounds[-1][1] == rows
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
            assert max(h - lo for lo, h in bounds) - min(h - lo for lo, h in bounds) <= 1
    assert steps_per_epoch(1001, 500, 2, "batches") == 2  # the 1-row batch is skipped
    assert steps_per_epoch(1002, 500, 2, "batches") == 3
    assert steps_per_epoch(1002, 500, 2, "files") == 2
    assert input_mode(1, 2) == "batches" and input_mode(4, 2) == "files"
    assert input_mode(4, 1) == "batches"


def test_batches_mode_slices_are_the_single_worker_batches(dataset_dir):
    from pipelines.data.reader import make_dataset

    global_batches = list(make_dataset(dataset_dir, "train", 700, shuffle=True, seed=5))
    pieces = []
    for worker in range(2):
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=worker, num_replicas_in_sync=4
        )
        pieces.append(list(train_input_fn(dataset_dir, 700, 5, "batches")(context)))
    # Worker w holds replicas 2w and 2w+1: per global batch, two consecutive slices.
    assert len(pieces[0]) == len(pieces[1]) == 2 * len(global_batches)
    for i, (features, label) in enumerate(global_batches):
        parts = [pieces[w][2 * i + k] for w in range(2) for k in range(2)]
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), label.numpy())
        for name in ("I1", "C1"):
            np.testing.assert_array_equal(
                np.concatenate([p[0][name] for p in parts]), features[name].numpy()
            )


def test_files_mode_gives_each_worker_its_own_shards(tmp_path):
    from pipelines.data.generate import generate_criteo
    from pipelines.data.manifest import load_manifest
    from pipelines.data.prepare import prepare
    from pipelines.data.reader import make_dataset

    raw = tmp_path / "train.txt.gz"
    generate_criteo(str(raw), 3000, seed=2)
    dataset_dir = prepare("criteo", str(raw), tmp_path / "prepared", min_count=1, shards=4)
    files = load_manifest(dataset_dir).shard_paths("train")
    assert len(files) == 4
    rows = []
    for index in range(2):
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=index, num_replicas_in_sync=2
        )
        ds = train_input_fn(dataset_dir, 20, 3, "files")(context)
        batch = next(iter(ds))
        assert batch[1].shape == (10,)  # per-replica batch: global 20 over 2 replicas
        one_pass = make_dataset(
            dataset_dir, "train", 100_000, shuffle=False, num_shards=2, shard_index=index
        )
        rows.append(next(iter(one_pass))[1].shape[0])
    everything = next(iter(make_dataset(dataset_dir, "train", 100_000, shuffle=False)))[1]
    assert rows[0] > 0 and rows[1] > 0 and rows[0] + rows[1] == everything.shape[0]
    with pytest.raises(ValueError, match="cannot be split into 5 file shards"):
        make_dataset(dataset_dir, "train", 10, num_shards=5, shard_index=0)


def test_files_mode_resumed_at_an_epoch_continues_the_uninterrupted_stream(
    sharded_dataset_dir,
):
    """A multi-worker run resumed after epoch k (files mode) must read, on every worker, the
    batches its uninterrupted stream would have read next: epoch k starts k * steps steps
    into the stream (each step takes one per-replica batch per local replica)."""
    from pipelines.data.manifest import load_manifest

    def batches(ds, n):
        return [np.column_stack([x["C1"], x["I1"], y]) for x, y in ds.take(n)]

    rows = load_manifest(sharded_dataset_dir).splits["train"].rows
    steps = steps_per_epoch(rows, 400, 4, "files")
    local = 2  # replicas per worker: one batch each per step
    for worker in range(2):
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=worker, num_replicas_in_sync=4
        )
        tf.random.set_seed(9)
        stream = train_input_fn(sharded_dataset_dir, 400, 9, "files", steps=steps)(context)
        want = batches(stream, (2 * steps + 3) * local)[2 * steps * local :]
        tf.random.set_seed(9)
        resumed = train_input_fn(
            sharded_dataset_dir, 400, 9, "files", first_epoch=2, epochs=1, steps=steps
        )(context)
        got = batches(resumed, 3 * local)
        assert len(got) == len(want) == 3 * local
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)
