"""The fixed value sets of the run configuration and the CLIs, in one stdlib-only module.

The command-line parsers (``pipelines.train``, ``pipelines.tune``) take their ``choices`` from
here, so that building a parser (and ``--help``) imports neither TensorFlow nor Keras;
:mod:`pipelines.training.config` validates against the same tuples. Value sets that come from a
registry (models, losses, selectors, fusions, encoders) or from the bundled dataset schemas are
not here: the parsers leave those options free and the config validation refuses an unknown
name, listing the valid ones.
"""

from __future__ import annotations

MONITORS = ("auc", "auc+gauc", "gauc")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# tf.distribute strategies: "default" (one device) and "mirrored" (this host's devices) run
# `fit`; "multi_worker" (MultiWorkerMirroredStrategy, TF_CONFIG) runs pipelines.training.multi_worker's
# custom step, because Keras 3 `fit` does not run under it (keras-team/keras#20585).
STRATEGIES = ("default", "mirrored", "multi_worker")
# keras-tuner search algorithms of ``pipelines.tune --tuner``.
TUNERS = ("bayesian", "hyperband", "random")


def add_dataset_arguments(parser) -> None:
    """``--dataset NAME`` and ``--schema PATH``, as the train and tune parsers take them."""
    from pipelines.data.schema import bundled_names  # stdlib + PyYAML only

    parser.add_argument(
        "--dataset",
        help=f"a bundled dataset: {', '.join(bundled_names())} (required unless --schema or "
        "--config names one)",
    )
    parser.add_argument(
        "--schema",
        metavar="PATH",
        help="a dataset schema YAML; the dataset is the schema's `name` (with or instead of "
        "--dataset)",
    )


__all__ = ["MONITORS", "PRECISIONS", "STRATEGIES", "TUNERS", "add_dataset_arguments"]
