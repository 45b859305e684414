"""``--strategy mirrored``: fit under MirroredStrategy on a CPU split into 2 logical devices,
then export the run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import generated_criteo_dataset

REPO = Path(__file__).resolve().parents[1]
# Logical devices must be configured before TensorFlow initialises, so training runs in a
# child process that splits its CPU in two and then calls the CLI's main().
TWO_CPUS = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, {repo!r})
from pipelines.training.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_mirrored_strategy_trains_on_two_logical_devices_and_exports(tmp_path):
    from export import SERVING_SIGNATURE, export_run
    from export.raw_rows import RawDecoder
    from pipelines.data.manifest import load_manifest
    from pipelines.data.reader import make_dataset

    dataset_dir = generated_criteo_dataset(tmp_path, 8000, seed=4, min_count=2)
    script = tmp_path / "two_cpus.py"
    script.write_text(TWO_CPUS.format(repo=str(REPO)))
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            "--dataset",
            "criteo",
            "--data",
            str(dataset_dir),
            "--strategy",
            "mirrored",
            "--epochs",
            "2",
            "--quiet",
            "--simple-units",
            "16",
            "--complex-units",
            "16,16",
            "--batch-size",
            "512",
            "--run-dir",
            str(run_dir),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "training on 2 replica(s) (strategy mirrored)" in result.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["test"]["auc"] > 0.6

    version = export_run(run_dir, tmp_path / "models")
    serve = tf.saved_model.load(str(version)).signatures[SERVING_SIGNATURE]
    manifest = load_manifest(dataset_dir)
    features, _ = next(iter(make_dataset(dataset_dir, "test", 200)))
    ids = {k: v.numpy() for k, v in features.items()}
    raw = RawDecoder(manifest).decode(ids)
    got = serve(
        **{
            k: tf.constant(v) if v.dtype == np.float64 else tf.constant(v.tolist())
            for k, v in raw.items()
        }
    )["ctr_probability"].numpy()
    import keras

    import tf4ctr_keras  # noqa: F401

    expected = keras.saving.load_model(run_dir / "model.keras").predict(ids, verbose=0)["ctr"]
    np.testing.assert_allclose(got, expected[:, 0], atol=1e-5)
