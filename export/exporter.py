"""Export a finished run as a TF Serving model version (``OUT/<name>/<version>/``)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import tf4ctr_keras  # noqa: F401  (registers the model's classes for loading)
from export.raw_rows import RawDecoder
from export.serving_module import OUTPUT_NAME, SERVING_SIGNATURE, RawFeatureServer
from pipelines.data.fileio import atomic_directory, remove_stale_directories
from pipelines.data.manifest import load_manifest
from pipelines.training.rundir import CONFIG_FILE, METRICS_FILE, RunDir

log = logging.getLogger(__name__)

WARMUP_FILE = "tf_serving_warmup_requests"
INPUTS_FILE = "inputs.json"  # {field: "string" | "double"}, read by serving.client
MAX_WARMUP_RECORDS = 1000
LOCK_FILE = ".export.lock"  # holds the exporting PID; TF Serving ignores non-integer names
_TEMP_VERSION = re.compile(r"^(\d+)\.tmp-\d+$")  # atomic_directory's `<version>.tmp-<pid>`


class ExportBusyError(RuntimeError):
    """Another process is exporting the same model name right now."""


def check_model_name(name: str) -> str:
    """``name`` if it is exactly one path component (the directory under ``--model-base-path``
    and the name TF Serving serves); a ValueError naming the problem otherwise."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"The model name must be a non-empty string. Received: {name!r}")
    if "/" in name or "\\" in name:
        raise ValueError(
            f"The model name must be one path component, without `/` or `\\`: {name!r} "
            "would be written outside --model-base-path or in a subdirectory."
        )
    if name.startswith("."):
        raise ValueError(
            f"The model name must not start with `.` (`.`, `..` and hidden names): {name!r}"
        )
    if "\0" in name:
        raise ValueError(f"The model name must not contain a NUL byte: {name!r}")
    return name


@contextlib.contextmanager
def export_lock(model_dir: Path) -> Iterator[Path]:
    """Holds ``model_dir/.export.lock`` (an exclusive, non-blocking ``flock``, the holder's PID
    written in it) for the block; a second export of the same model raises ExportBusyError. The
    kernel releases the lock when the holder dies, so a killed export never blocks the next; the
    file is removed on a clean release."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ExportBusyError(
                f"{model_dir} is being exported by another process (PID {holder}, lock "
                f"{path}); wait for it to finish, or pass another --model-name."
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:  # the holder we waited on may have removed the file: lock the one on disk
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


def remove_stale_versions(model_dir: Path) -> None:
    """Removes every ``<version>.tmp-<pid>`` directory a killed export left in ``model_dir``
    (those of live processes are kept). ``atomic_directory`` only cleans the temporaries of the
    version it writes, so a leftover of another version would otherwise stay for good."""
    if not model_dir.is_dir():
        return
    versions = {m.group(1) for p in model_dir.iterdir() if (m := _TEMP_VERSION.match(p.name))}
    for version in sorted(versions):
        remove_stale_directories(model_dir / version)


def next_version(model_dir: Path) -> int:
    """1 + the highest integer-named version directory (1 when there is none)."""
    versions = (
        [int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()]
        if model_dir.is_dir()
        else []
    )
    return max(versions, default=0) + 1


def read_run(run_dir: Path):
    """The run's model, manifest and metrics; fails clearly when the run is not finished."""
    run = RunDir(run_dir)
    if not run.finished() or not run.model_path.is_file():
        raise FileNotFoundError(
            f"{run_dir} is not a finished run: expected metrics.json and model.keras "
            "(run `python -m pipelines.train` to completion first)."
        )
    metrics = run.read_metrics()
    manifest = run_manifest(run, metrics)
    model = keras.saving.load_model(run.model_path)
    return model, manifest, metrics


def run_manifest(run: RunDir, metrics: dict):
    """The manifest and vocabularies the run trained on: the run's own copy (``data/``), whose
    fingerprint must be the one its metrics recorded; for a run written before runs kept a copy,
    the prepared directory, refused when its fingerprint is not the recorded one."""
    recorded = metrics.get("data_fingerprint")
    manifest = run.bound_manifest()
    source = "its copy"
    if manifest is None:
        manifest = load_manifest(metrics["dataset_dir"])
        source = metrics["dataset_dir"]
        if recorded is None:
            log.warning(
                "%s records no data fingerprint (an older run); exporting with the vocabularies "
                "of %s as they are now",
                run.path,
                source,
            )
    if recorded is not None and manifest.fingerprint != recorded:
        raise ValueError(
            f"{run.path} was trained on data with fingerprint {recorded[:16]}, but {source} "
            f"({manifest.directory}) has fingerprint {manifest.fingerprint[:16]}: exporting would "
            "build other vocabularies into the model. Train again on that data."
        )
    return manifest


def sample_source(manifest, metrics: dict):
    """Where warmup rows come from: the prepared data when it is still what the run trained on
    (same fingerprint), else None (warmup then uses ids drawn from the vocabularies)."""
    try:
        prepared = load_manifest(metrics["dataset_dir"])
    except (FileNotFoundError, ValueError, KeyError):
        return None
    return prepared if prepared.fingerprint == manifest.fingerprint else None


def synthetic_ids(manifest, rows: int) -> dict[str, np.ndarray]:
    """Valid model inputs cycling through each field's ids (and a few dense values): warmup
    rows when the prepared data is gone."""
    out = {}
    index = np.arange(rows)
    for field in manifest.fields:
        if field.is_dense:
            out[field.name] = np.array([-1.0, 0.0, 1.0, np.nan], np.float32)[index % 4]
        elif field.is_sequence:
            ids = (index[:, None] + np.arange(field.max_len)[None, :]) % field.vocab_size
            out[field.name] = ids.astype(np.int64)
        else:
            out[field.name] = (index % field.vocab_size).astype(np.int64)
    return out


def sample_ids(manifest, split: str, rows: int) -> dict[str, np.ndarray]:
    """Up to `rows` encoded rows of a split, in file order."""
    from pipelines.data.reader import make_dataset

    batch = next(iter(make_dataset(manifest.directory, split, rows, shuffle=False)))[0]
    return {k: v.numpy() for k, v in batch.items()}


def warmup_requests(
    server, manifest, model_name: str, raw: dict[str, np.ndarray], batch_sizes=(1, 8, 64)
) -> list:
    """PredictionLog protos replaying representative raw rows at several batch sizes."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    types = server.input_types()
    logs = []
    total = len(next(iter(raw.values())))
    start = 0
    for batch in batch_sizes:
        for _ in range(4):
            if start + batch > total:
                start = 0
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=SERVING_SIGNATURE)
            )
            for field in manifest.fields:
                values = raw[field.name][start : start + batch]
                dtype = tf.float64 if types[field.name] == "double" else tf.string
                request.inputs[field.name].CopyFrom(
                    tf.make_tensor_proto(values.tolist(), dtype=dtype, shape=[len(values)])
                )
            logs.append(
                prediction_log_pb2.PredictionLog(
                    predict_log=prediction_log_pb2.PredictLog(request=request)
                )
            )
            start += batch
    if len(logs) > MAX_WARMUP_RECORDS:
        raise ValueError(f"{len(logs)} warmup records; TF Serving reads at most 1000.")
    return logs


def export_run(
    run_dir: str | Path,
    model_base_path: str | Path,
    model_name: str | None = None,
    version: int | None = None,
    *,
    lookup: str = "fused",
) -> Path:
    """Writes ``model_base_path/model_name/version/`` atomically and returns its path.

    Without ``version``: the next integer, unless the newest version already holds this run
    (:func:`holds_run`), which is returned as it is, so running the same export again never
    stacks a copy. An explicit ``version`` that exists is refused (versions are immutable).
    ``lookup`` is :class:`RawFeatureServer`'s (``"per_field"`` builds the earlier, slower graph
    with the same ids, for ``benchmarks/serving_bench.py``'s comparison).
    """
    run_dir = Path(run_dir)
    if model_name is not None:
        check_model_name(model_name)
    if version is not None and (
        isinstance(version, bool) or not isinstance(version, int) or version < 1
    ):
        raise ValueError(f"`version` must be a positive int. Received: {version!r}")
    model, manifest, metrics = read_run(run_dir)
    model_name = model_name or f"{metrics['model']}_{manifest.dataset}".replace("-", "_")
    check_model_name(model_name)
    model_dir = Path(model_base_path) / model_name
    with export_lock(model_dir):
        remove_stale_versions(model_dir)
        if version is None:  # the same command again (after a kill, a rerun script): no copy
            newest = model_dir / str(next_version(model_dir) - 1)
            if newest.name != "0" and holds_run(newest, run_dir, metrics):
                log.info("%s already holds this run's export; nothing to do", newest)
                return newest
        return _export_version(
            run_dir, model, manifest, metrics, model_name, model_dir, version, lookup
        )


def holds_run(version_dir: Path, run_dir: Path, metrics: dict) -> bool:
    """Whether an exported version is this run's: the same recorded metrics (which include
    the data fingerprint) and the same resolved config."""
    extra = version_dir / "assets.extra"
    try:
        same_metrics = json.loads((extra / METRICS_FILE).read_text()) == metrics
        config = (extra / CONFIG_FILE).read_bytes()
    except (OSError, ValueError):
        return False
    return same_metrics and config == RunDir(run_dir).config_path.read_bytes()


def _export_version(
    run_dir, model, manifest, metrics, model_name, model_dir, version, lookup="fused"
) -> Path:
    version = version if version is not None else next_version(model_dir)
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"`version` must be a positive int. Received: {version!r}")
    final = model_dir / str(version)
    if final.exists():
        raise FileExistsError(
            f"{final} exists; TF Serving versions are immutable. Pass another --version."
        )
    # the version appears whole or not at all (TF Serving ignores the non-integer temp name)
    with atomic_directory(final) as tmp:
        server = RawFeatureServer(model, manifest, lookup=lookup)
        tf.saved_model.save(server, str(tmp), signatures=server.signatures())
        extra = tmp / "assets.extra"
        extra.mkdir()
        prepared = sample_source(manifest, metrics)
        ids = sample_ids(prepared, "test", 64) if prepared else synthetic_ids(manifest, 64)
        raw = RawDecoder(manifest).decode(ids)
        with tf.io.TFRecordWriter(str(extra / WARMUP_FILE)) as writer:
            for record in warmup_requests(server, manifest, model_name, raw):
                writer.write(record.SerializeToString())
        shutil.copy(manifest.directory / "manifest.json", extra / "manifest.json")
        shutil.copy(RunDir(run_dir).config_path, extra / CONFIG_FILE)
        (extra / METRICS_FILE).write_text(json.dumps(metrics, indent=1))
        (extra / INPUTS_FILE).write_text(json.dumps(server.input_types(), indent=1))
    log.info("exported %s (output `%s`)", final, OUTPUT_NAME)
    return final
