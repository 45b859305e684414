"""Where a training run's data comes from: a prepared directory, raw files, or generated data."""

from __future__ import annotations

import hashlib
import logging
import shlex
from pathlib import Path

from pipelines.data.errors import DataError
from pipelines.data.manifest import MANIFEST_NAME, load_manifest
from pipelines.training.config import ConfigError, RunConfig

log = logging.getLogger(__name__)


def _key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def resolve_dataset(config: RunConfig) -> Path:
    """Returns a prepared dataset directory for the run, preparing or generating it if needed.

    * ``data.path`` holding ``manifest.json``: used as is.
    * ``data.path`` raw: prepared by the dataset's schema (``data.schema``, else the bundled
      one of ``dataset``) into ``data.data_dir/<dataset>-<hash of path>/<dataset>`` (reused
      while the raw input, schema and options are unchanged).
    * no ``data.path`` and dataset ``criteo``: ``data.generated_rows`` rows of generated
      Criteo-format data (seeded by ``train.seed``) are written and prepared.

    Raw data is prepared in process, or as an Apache Beam pipeline with ``data.runner``
    (``beam`` or a Beam runner) and ``data.beam_options``.
    """
    from pipelines.data.beam import prepare
    from pipelines.data.datasets import get_spec

    data = config.data
    spec = get_spec(data.schema or config.dataset)
    runner = {"runner": data.runner} if data.runner else {}
    if data.beam_options:
        runner["pipeline_args"] = shlex.split(data.beam_options)
    root = Path(data.data_dir)
    if data.path is None:
        if config.dataset != "criteo" or data.schema is not None:
            raise ConfigError(f"--dataset {config.dataset} needs --data PATH: {spec.expected}.")
        from pipelines.data.generate import generate_criteo

        name = f"generated-criteo-{data.generated_rows}-seed{config.train.seed}"
        raw = root / name / "train.txt.gz"
        if not raw.exists():
            log.info(
                "no --data: generating %d rows of Criteo-format data at %s",
                data.generated_rows,
                raw,
            )
            raw.parent.mkdir(parents=True, exist_ok=True)
            # written beside and renamed when complete (generate_criteo's own guarantee)
            generate_criteo(str(raw), data.generated_rows, seed=config.train.seed)
        else:
            log.info("no --data: training on generated Criteo-format data %s", raw)
        return prepare(
            "criteo",
            str(raw),
            root / name,
            min_count=data.min_count,
            max_bad_fraction=data.max_bad_fraction,
            **runner,
        )
    path = Path(data.path)
    if (path / MANIFEST_NAME).is_file():
        problems = load_manifest(path).shard_problems()
        if problems:  # the raw input is unknown here: refuse rather than die mid-epoch
            raise DataError(
                f"--data {path}: the prepared data is damaged ({'; '.join(problems[:3])}); "
                "prepare it again (python -m pipelines.prepare ... --force)."
            )
        return path
    glob = any(c in data.path for c in "*?[")
    if "://" not in data.path and not glob and not path.exists():
        raise FileNotFoundError(f"--data {data.path} does not exist; expected {spec.expected}.")
    target = (
        root
        / f"{config.dataset}-{_key(str(path.resolve()) if '://' not in data.path else data.path)}"
    )
    return prepare(
        spec.schema,
        data.path,
        target,
        min_count=data.min_count,
        max_bad_fraction=data.max_bad_fraction,
        **runner,
    )
