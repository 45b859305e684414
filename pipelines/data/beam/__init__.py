"""Preprocessing on Apache Beam (``pip install .[beam]``): the in-process two passes of
:mod:`pipelines.data.prepare` as one Beam pipeline, on Beam's local runners or at scale on
Dataflow, Flink or Spark (:mod:`pipelines.data.beam.pipeline`).

:func:`prepare` is what the command lines call: the in-process path or Beam, by ``runner``.
This module imports neither Beam nor TensorFlow; Beam is imported when a Beam runner is used.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

IN_PROCESS = "in-process"  # --runner default: this process, two streaming passes


def prepare(
    dataset,
    raw: str,
    out_dir: str | os.PathLike,
    *,
    runner: str | None = IN_PROCESS,
    pipeline_args: Sequence[str] = (),
    **options,
) -> Path | str:
    """Prepares a dataset in process (:func:`pipelines.data.prepare.prepare`) or as a Beam
    pipeline (:func:`prepare_beam`): the same dataset either way.

    Args:
        dataset, raw, out_dir, **options: as for :func:`pipelines.data.prepare.prepare`.
        runner: ``in-process`` (or ``None``), ``beam`` (Beam's local runner) or a Beam
            runner's name (``DirectRunner``, ``DataflowRunner``, ``FlinkRunner``, ...).
        pipeline_args: Beam pipeline options (``--direct_num_workers=2``, ``--project=...``).

    Raises:
        ValueError: pipeline options without a Beam runner; see the two functions for the rest.
    """
    if runner in (None, IN_PROCESS):
        if pipeline_args:
            raise ValueError(
                f"Beam pipeline options {list(pipeline_args)} need a Beam runner (--runner beam)."
            )
        from pipelines.data.prepare import prepare as prepare_in_process

        return prepare_in_process(dataset, raw, out_dir, **options)
    return prepare_beam(
        dataset, raw, out_dir, runner=runner, pipeline_args=pipeline_args, **options
    )


def prepare_beam(*args, **kwargs) -> Path | str:
    """:func:`pipelines.data.beam.pipeline.prepare_beam` (Beam is imported on first use)."""
    from pipelines.data.beam.pipeline import prepare_beam as run

    return run(*args, **kwargs)


__all__ = ["IN_PROCESS", "prepare", "prepare_beam"]
