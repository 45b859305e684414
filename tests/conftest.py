"""Shared pytest set-up: quiet TensorFlow, fixed seeds, float32 policy restored after each test."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

FRAPPE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "frappe"
SMALL_RUN = {
    "model.simple_units": [32],
    "model.complex_units": [64, 64],
    "train.max_epochs": 1,
    "train.eval_batch_size": 30000,
}


@pytest.fixture(autouse=True)
def _seed_and_policy():
    keras.utils.set_random_seed(1234)
    yield
    keras.mixed_precision.set_dtype_policy("float32")


def generated_criteo_dataset(root: Path, rows: int, seed: int, min_count: int) -> Path:
    """Generates `rows` of Criteo-format data under `root` and prepares them; returns the
    prepared dataset directory."""
    from pipelines.data.generate import generate_criteo
    from pipelines.data.prepare import prepare

    raw = root / "train.txt.gz"
    generate_criteo(str(raw), rows, seed=seed)
    return prepare("criteo", str(raw), root / "prepared", min_count=min_count)


def train_small_run(root: Path, dataset: str, dataset_dir: Path, **overrides) -> Path:
    """Trains a small model for one epoch on a prepared dataset; returns the run directory."""
    from pipelines.training.config import resolve_config
    from pipelines.training.run import train

    config = resolve_config(
        dataset, overrides={**SMALL_RUN, "data.path": str(dataset_dir), **overrides}
    )
    run_dir = root / f"run-{dataset}"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    train(config, dataset_dir, run_dir, verbose=0)
    return run_dir


@pytest.fixture(scope="session")
def frappe_export(tmp_path_factory):
    """(run_dir, prepared dataset dir, exported version dir) of a small model on real Frappe."""
    if not FRAPPE.is_dir():
        pytest.skip("../shared/data/frappe is not present")
    from export import export_run
    from pipelines.data.prepare import prepare

    root = tmp_path_factory.mktemp("export")
    dataset_dir = prepare("frappe", str(FRAPPE), root / "data")
    run_dir = train_small_run(root, "frappe", dataset_dir)
    version_dir = export_run(run_dir, root / "models", model_name="frappe_ctr")
    return run_dir, dataset_dir, version_dir
