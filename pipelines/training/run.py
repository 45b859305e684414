"""Training a run: the one place where the training loop (and so the strategy) is chosen."""

from __future__ import annotations

from pathlib import Path

from pipelines.training.config import RunConfig


def train(config: RunConfig, dataset_dir: str | Path, run_dir: str | Path, verbose: int = 1):
    """Trains ``config`` on the prepared ``dataset_dir`` with the reference schedule, writes
    ``run_dir`` and returns the run's metrics.

    ``train.strategy`` picks the loop: ``default`` / ``mirrored`` run Keras ``fit``
    (:mod:`pipelines.training.keras_fit`); ``multi_worker`` runs the custom synchronous step
    (:mod:`pipelines.training.multi_worker`), because Keras 3 ``fit`` does not run under
    MultiWorkerMirroredStrategy (keras-team/keras#20585).
    """
    if config.train.strategy == "multi_worker":
        # every worker runs this; the chief's CLI binds the data (pipelines.training.cli)
        from pipelines.training.multi_worker import train_multi_worker

        return train_multi_worker(config, dataset_dir, run_dir, verbose=verbose)
    from pipelines.training.keras_fit import train_fit
    from pipelines.training.rundir import RunDir

    run = RunDir(run_dir)
    with run.lock():  # one training per run directory
        run.bind_data(dataset_dir)  # refuses data that changed under the run
        return train_fit(config, dataset_dir, run_dir, verbose=verbose)
