"""Preprocessing: raw files -> vocabularies + gzip TFRecord shards + ``manifest.json``.

Two streaming passes with bounded memory (only the per-field token counts grow, with the number
of distinct values):

1. **Count.** Read the train rows block by block, count tokens per field with pandas
   ``value_counts`` (partial counts are merged in vectorized compactions), keep tokens with count
   >= min count, and write ``vocab/<field>.txt``: one raw token per line, UTF-8, sorted by
   descending count, then by token (Unicode code point order).
2. **Encode.** Read every split block by block, map values to ids with ``pd.Index.get_indexer``
   against the vocabulary (Keras lookup convention: 0 = OOV/missing/rare, line ``i`` -> ``i + 1``;
   sequences 0 = padding, 1 = OOV, line ``i`` -> ``i + 2``), serialize the rows with
   :class:`pipelines.data.example_codec.ExampleEncoder` and write them round-robin to
   ``{split}-{i:05d}-of-{n:05d}.tfrecord.gz`` (GZIP). Train rows are permuted within each block
   (seeded) so that adjacent records are not adjacent raw lines; valid and test keep raw order.

Everything is written to ``<out>/<dataset>.tmp-<pid>`` and renamed to ``<out>/<dataset>`` when
complete; ``manifest.json`` is written last. A re-run whose fingerprint (raw file identities,
options, pipeline version) equals the manifest's reuses the shards.

Malformed rows are skipped and counted per split, file and reason; the first few are logged with
file and line. If a file's malformed fraction exceeds ``max_bad_fraction`` the run fails with that
report and leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf

from pipelines.data import fileio
from pipelines.data.datasets import SchemaSpec, get_spec
from pipelines.data.datasets.base import SPLITS, Block, RawFile
from pipelines.data.errors import DataError
from pipelines.data.example_codec import ExampleEncoder
from pipelines.data.hashing import hash_ids
from pipelines.data.manifest import (
    GROUP_FEATURE,
    ID_CONVENTION,
    MANIFEST_NAME,
    SCHEMA_VERSION,
    load_manifest,
)

logger = logging.getLogger(__name__)

PIPELINE_VERSION = 2  # 2: records carry the gAUC group (GROUP_FEATURE)
DEFAULT_SHARDS = 8
# Shard names have five digits; more than this many open writers per split is a mistake.
MAX_SHARDS = 4096
DEFAULT_MAX_BAD_FRACTION = 0.01
MAX_EXAMPLES = 10
# A file whose rows are mostly malformed is the wrong file or format: stop early, don't read 45 M rows.
EARLY_FAIL_ROWS = 5000
EARLY_FAIL_FRACTION = 0.5
# Level 1: about 4x faster than zlib's default 6 and ~30 % larger shards.
GZIP_LEVEL = 1
# Merge partial counts once the unmerged entries exceed this or the merged table's size, so the
# pending parts never hold more than about the distinct values themselves.
_COMPACT_ENTRIES = 500_000


def hash_split(
    line_numbers: np.ndarray,
    seed: int,
    ratios: tuple[int, int, int] = (8, 1, 1),
    stream: int = 0,
) -> np.ndarray:
    """Seeded split of rows by a hash of their 0-based row index (splitmix64).

    Args:
        line_numbers: 1-based line numbers of the rows.
        seed: split seed.
        ratios: train:valid:test weights.
        stream: the file's number among the files of one hashed split (0 for the first or
            only file), so the same row number in two files is split independently.

    Returns:
        int array: 0 = train, 1 = valid, 2 = test.
    """
    with np.errstate(over="ignore"):
        z = (line_numbers.astype(np.uint64) - np.uint64(1)) + np.uint64(seed % 2**63) * np.uint64(
            0x9E3779B97F4A7C15
        )
        if stream:
            z = z + np.uint64(stream) * np.uint64(0xD1B54A32D192ED03)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    bucket = (z % np.uint64(sum(ratios))).astype(np.int64)
    return (bucket >= ratios[0]).astype(np.int64) + (bucket >= ratios[0] + ratios[1]).astype(
        np.int64
    )


class _TokenCounter:
    """Streaming token counts: per-block ``value_counts`` merged in vectorized compactions.

    Partial counters merge (:meth:`merge`), so the Beam path combines the same object
    (:class:`pipelines.data.beam.combiners.TokenCountsFn`)."""

    def __init__(self):
        self._parts: list[pd.Series] = []
        self._pending = 0
        self._merged = 0

    def add(self, tokens: pd.Series) -> None:
        if len(tokens) == 0:
            return
        # value_counts drops NaN (missing numeric values); "" (missing strings) is dropped here,
        # cheaper than filtering every row before counting.
        counts = tokens.value_counts(sort=False)
        if counts.index.dtype.kind not in "fiu":
            counts = counts.drop("", errors="ignore")
        self.add_counts(counts)

    def add_counts(self, counts: pd.Series) -> None:
        """Adds partial counts (token index -> count)."""
        if len(counts) == 0:
            return
        self._parts.append(counts)
        self._pending += len(counts)
        if self._pending > max(_COMPACT_ENTRIES, self._merged) and len(self._parts) > 1:
            self._compact()

    def merge(self, other: _TokenCounter) -> None:
        """Adds ``other``'s counts to these."""
        for part in other._parts:
            self.add_counts(part)

    def _compact(self) -> None:
        merged = pd.concat(self._parts).groupby(level=0, sort=False).sum()
        self._parts = [merged]
        self._merged = len(merged)
        self._pending = 0

    @property
    def distinct(self) -> int:
        """Distinct tokens counted so far (after :meth:`vocabulary` or :meth:`counts`, exact)."""
        return self._merged

    def counts(self) -> pd.Series:
        """The merged counts (token index -> count), unordered."""
        if not self._parts:
            return pd.Series([], dtype=np.int64)
        if len(self._parts) > 1:
            self._compact()
        self._merged = len(self._parts[0])
        return self._parts[0]

    def vocabulary(self, min_count: int) -> list[str]:
        """Tokens with count >= ``min_count``, by descending count, then token."""
        return vocabulary_of(self.counts(), min_count)


def vocabulary_of(counts: pd.Series, min_count: int) -> list[str]:
    """The vocabulary of merged token counts: the tokens with count >= ``min_count``, by
    descending count, then token (Unicode code point order); numeric tokens as the integer's
    decimal string."""
    counts = counts[counts >= min_count]
    if len(counts) == 0:
        return []
    tokens = counts.index
    if tokens.dtype.kind == "f":  # numeric fields: the token is the integer's decimal string
        tokens = tokens.to_numpy().astype(np.int64).astype(str)
    table = pd.DataFrame({"token": np.asarray(tokens, dtype=object), "count": counts.to_numpy()})
    table = table.sort_values(["count", "token"], ascending=[False, True], kind="stable")
    return table["token"].tolist()


class _Malformed:
    """Malformed-row bookkeeping: counts per split, file and reason; rows seen per file; the
    first :data:`MAX_EXAMPLES` rows in input order (file order, then line).

    Partial reports merge (:meth:`merge`), so the Beam path combines the same object and
    reports the same examples."""

    def __init__(self, max_bad_fraction: float, log: bool = True, unit: str = "line"):
        self.unit = unit
        self.max_bad_fraction = max_bad_fraction
        self.log = log
        self.counts: dict[str, dict[str, dict[str, int]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(int))
        )
        self.rows: dict[str, int] = defaultdict(int)
        self.bad: dict[str, int] = defaultdict(int)
        # (input position, text): the first MAX_EXAMPLES in input order
        self._examples: list[tuple[tuple[int, ...], str]] = []

    def __getstate__(self):  # nested defaultdicts of lambdas do not pickle (Beam ships these)
        state = dict(self.__dict__)
        state["counts"] = {s: {f: dict(r) for f, r in fs.items()} for s, fs in self.counts.items()}
        state["rows"], state["bad"] = dict(self.rows), dict(self.bad)
        return state

    def __setstate__(self, state):
        counts, rows, bad = state.pop("counts"), state.pop("rows"), state.pop("bad")
        self.__init__(state["max_bad_fraction"], state["log"], state["unit"])
        self._examples = state["_examples"]
        for split, files in counts.items():
            for name, reasons in files.items():
                self.counts[split][name].update(reasons)
        self.rows.update(rows)
        self.bad.update(bad)

    @property
    def examples(self) -> list[str]:
        return [text for _, text in self._examples]

    def add(
        self,
        file: RawFile,
        block: Block,
        bad_splits: np.ndarray | None,
        position: tuple[int, ...] = (),
    ) -> None:
        """Counts ``block``'s rows and malformed rows of ``file``; ``position`` orders the
        block in the input (file index, block index), so merged partial reports keep the
        examples that one pass in input order keeps."""
        name = fileio.basename(file.path)
        self.rows[name] += len(block.line) + len(block.bad)
        self.bad[name] += len(block.bad)
        for i, (line, reason, detail) in enumerate(block.bad):
            split = file.split if bad_splits is None else SPLITS[int(bad_splits[i])]
            self.counts[split][name][reason] += 1
            if len(self._examples) < MAX_EXAMPLES:
                text = f"{name} {self.unit} {line}: {detail}"
                self._examples.append(((*position, i), text))
                if self.log:
                    logger.warning(
                        "Skipping malformed row: %s %s %d: %s", name, self.unit, line, detail
                    )

    def merge(self, other: _Malformed) -> None:
        """Adds ``other``'s counts and keeps the first examples of both."""
        for split, files in other.counts.items():
            for name, reasons in files.items():
                for reason, n in reasons.items():
                    self.counts[split][name][reason] += n
        for name, n in other.rows.items():
            self.rows[name] += n
        for name, n in other.bad.items():
            self.bad[name] += n
        self._examples = sorted(self._examples + other._examples)[:MAX_EXAMPLES]

    def fraction(self, name: str) -> float:
        return self.bad[name] / max(self.rows[name], 1)

    def check(self, names: list[str], *, early: bool = False) -> None:
        for name in names:
            frac = self.fraction(name)
            if early and (
                self.rows[name] < EARLY_FAIL_ROWS
                or frac <= max(EARLY_FAIL_FRACTION, self.max_bad_fraction)
            ):
                continue
            if frac > self.max_bad_fraction:
                raise DataError(
                    f"{name}: {self.bad[name]} of {self.rows[name]} rows malformed ({frac:.2%} > "
                    f"max_bad_fraction {self.max_bad_fraction:.2%}). First: "
                    + "; ".join(self.examples),
                    report=self.report(),
                )

    def report(self) -> dict[str, Any]:
        counts = {s: {f: dict(r) for f, r in files.items()} for s, files in self.counts.items()}
        return {"malformed": counts, "malformed_examples": self.examples}


_PROGRESS_EVERY = 1_000_000
_last_progress: dict[str, int] = {}


def _progress(stage: str, name: str, rows: int, start: float) -> None:
    """Logs progress about every million rows of a file (long files otherwise log nothing)."""
    key = f"{stage}:{name}"
    if rows - _last_progress.get(key, 0) >= _PROGRESS_EVERY:
        _last_progress[key] = rows
        logger.info("%s: %s line %d (%.0f s)", stage, name, rows, time.perf_counter() - start)


def _splits_of(spec: SchemaSpec, file: RawFile, lines: np.ndarray, seed: int) -> np.ndarray | None:
    if file.split is not None:
        return None
    return hash_split(lines - spec.header_lines, seed, spec.split_ratios, file.stream)


class _Moments:
    """Streaming count, mean and sum of squared deviations (Chan et al.'s pairwise update,
    stable where sums of squares are not), plus min and max, of a dense numeric field."""

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0, 0.0, 0.0
        self.min, self.max = math.inf, -math.inf

    def add(self, values: np.ndarray) -> None:
        values = values[np.isfinite(values)]
        if not len(values):
            return
        batch = _Moments()
        batch.n, batch.mean = len(values), float(values.mean())
        batch.m2 = float(((values - batch.mean) ** 2).sum())
        batch.min, batch.max = float(values.min()), float(values.max())
        self.merge(batch)

    def merge(self, other: _Moments) -> None:
        """Adds ``other``'s values (Chan et al.'s parallel update; the Beam path's combine)."""
        if not other.n:
            return
        total = self.n + other.n
        delta = other.mean - self.mean
        self.mean += delta * other.n / total
        self.m2 += other.m2 + delta * delta * self.n * other.n / total
        self.n = total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def normalization(self, method: str) -> dict[str, Any]:
        """The manifest's normalization entry: ``x -> (x - shift) / scale``."""
        if method == "standard":
            std = math.sqrt(self.m2 / self.n) if self.n else 0.0
            shift, scale = (self.mean if self.n else 0.0), (std if std > 0 else 1.0)
        elif method == "minmax":
            lo = self.min if self.n else 0.0
            span = (self.max - self.min) if self.n else 0.0
            shift, scale = lo, (span if span > 0 else 1.0)
        else:
            shift, scale = 0.0, 1.0
        return {
            "method": method,
            "shift": shift,
            "scale": scale,
            "count": self.n,
            "mean": self.mean if self.n else None,
            "min": self.min if self.n else None,
            "max": self.max if self.n else None,
        }


def normalize(values: np.ndarray, normalization: dict[str, Any]) -> np.ndarray:
    """Dense model input of a numeric field: ``(x - shift) / scale`` in float64, then float32
    (NaN stays NaN: the model's missing-value vector). The serving graph computes the same."""
    x = (np.asarray(values, dtype=np.float64) - normalization["shift"]) / normalization["scale"]
    return x.astype(np.float32)


def _encode_block(
    spec: SchemaSpec,
    frame: pd.DataFrame,
    indexes: dict[str, pd.Index],
    entries: dict[str, dict[str, Any]],
) -> dict[str, np.ndarray]:
    """Model inputs of a block's rows: ids in the Keras lookup convention, dense values."""
    out = {}
    n = len(frame)
    for f in spec.fields:
        values = frame[f.name].reset_index(drop=True)
        entry = entries[f.name]
        if f.dense:
            out[f.name] = normalize(values.to_numpy(dtype=np.float64), entry["normalization"])
        elif f.kind == "sequence":
            tokens = spec.tokens(f.name, values)
            ids = np.zeros((n, f.max_len), dtype=np.int64)
            if len(tokens):
                rows = tokens.index.to_numpy()
                pos = tokens.groupby(level=0, sort=False).cumcount().to_numpy()
                keep = pos < f.max_len
                kept = tokens.to_numpy(dtype=object)[keep]
                if f.hash_buckets:
                    found = hash_ids(kept, f.hash_buckets)
                else:
                    found = indexes[f.name].get_indexer(kept)
                ids[rows[keep], pos[keep]] = np.where(found < 0, 1, found + 2)
            out[f.name] = ids
        elif f.hash_buckets:
            tokens = values.to_numpy(dtype=object)
            ids = hash_ids(tokens, f.hash_buckets) + 1
            out[f.name] = np.where(tokens == "", 0, ids).astype(np.int64)
        else:
            index = indexes[f.name]
            found = index.get_indexer(values.to_numpy(dtype=index.dtype))
            out[f.name] = found.astype(np.int64) + 1
    return out


class _ShardWriters:
    def __init__(self, directory: Path, split: str, shards: int):
        options = tf.io.TFRecordOptions(compression_type="GZIP", compression_level=GZIP_LEVEL)
        self.names = [f"{split}-{i:05d}-of-{shards:05d}.tfrecord.gz" for i in range(shards)]
        self.writers = [tf.io.TFRecordWriter(str(directory / n), options) for n in self.names]
        self.rows = np.zeros(shards, dtype=np.int64)
        self.next = 0
        self.positives = 0

    def write(self, records: list[bytes], labels: np.ndarray) -> None:
        n = len(self.writers)
        for i, record in enumerate(records):
            self.writers[(self.next + i) % n].write(record)
        counts = np.bincount((self.next + np.arange(len(records))) % n, minlength=n)
        self.rows += counts
        self.next = (self.next + len(records)) % n
        self.positives += int(labels.sum())

    def close(self) -> None:
        for w in self.writers:
            w.close()


def _fingerprint(
    spec: SchemaSpec,
    files: list[RawFile],
    options: dict[str, Any],
    identity: Callable[[str], dict] = fileio.file_fingerprint,
) -> tuple[str, list[dict]]:
    identities = [dict(identity(f.path), split=f.split) for f in files]
    identities += [dict(identity(p), split="side") for p in spec.side_files()]
    payload = {
        "pipeline_version": PIPELINE_VERSION,
        "dataset": spec.name,
        "options": options,
        "files": identities,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()
    return digest, identities


def _reusable(final: Path, fingerprint: str, verify: bool = False) -> bool:
    """Whether ``final`` holds this fingerprint's output, sound: every shard there at its
    recorded size (and sha256 with ``verify``) and every vocabulary file; a damaged one is
    logged, naming the file, and the dataset is prepared again."""
    try:
        manifest = load_manifest(final)
    except (FileNotFoundError, ValueError, KeyError):
        return False
    if manifest.fingerprint != fingerprint:
        return False
    problems = manifest.shard_problems(verify)
    problems += [
        f"{manifest.vocab_path(f.name)}: missing"
        for f in manifest.fields
        if f.vocab_file and not manifest.vocab_path(f.name).is_file()
    ]
    for problem in problems:
        logger.warning("Prepared data damaged, preparing it again: %s", problem)
    return not problems


@dataclass(frozen=True)
class PrepareJob:
    """One preparation, as both runners (in process and Beam) carry it out: the spec, the raw
    files, the options that decide the output, its fingerprint and the raw files' identities."""

    spec: SchemaSpec
    files: list[RawFile]
    options: dict[str, Any]
    fingerprint: str
    identities: list[dict]
    max_bad_fraction: float

    @property
    def train_files(self) -> list[tuple[int, RawFile]]:
        """``(file index, file)`` of the files that feed the train split (pass 1 reads these)."""
        return [(i, f) for i, f in enumerate(self.files) if f.split in ("train", None)]


def plan_job(
    dataset,
    raw: str,
    *,
    min_count: int | None = None,
    max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION,
    shards: int = DEFAULT_SHARDS,
    seed: int | None = None,
    block_bytes: int = fileio.BLOCK_BYTES,
    resolve: Callable[[SchemaSpec, str], list[RawFile]] | None = None,
    identity: Callable[[str], dict] = fileio.file_fingerprint,
) -> PrepareJob:
    """Validates the options, resolves ``raw`` to files and fingerprints the job (see
    :func:`prepare` for the arguments; ``resolve`` and ``identity`` find and identify raw
    files on another file system layer, as the Beam path does).

    Raises:
        ValueError: an option out of range.
        DataError: a bad schema or raw input.
    """
    spec = get_spec(dataset)
    if not 1 <= shards <= MAX_SHARDS:
        raise ValueError(f"`shards` must be in [1, {MAX_SHARDS}]. Received: `shards={shards}`")
    if not 0 <= max_bad_fraction <= 1:
        raise ValueError(
            f"`max_bad_fraction` must be in [0, 1]. Received: `max_bad_fraction={max_bad_fraction}`"
        )
    min_count = spec.default_min_count if min_count is None else int(min_count)
    if min_count < 1:
        raise ValueError(f"`min_count` must be >= 1. Received: `min_count={min_count}`")
    seed = spec.default_seed if seed is None else int(seed)
    raw = str(raw)
    files = resolve(spec, raw) if resolve is not None else spec.resolve(raw)
    options = {
        "min_count": min_count,
        "shards": shards,
        "seed": seed,
        "block_bytes": block_bytes,
        "split": "hash " + ":".join(map(str, spec.split_ratios))
        if any(f.split is None for f in files)
        else "official",
        **spec.options,
    }
    fingerprint, identities = _fingerprint(spec, files, options, identity)
    return PrepareJob(spec, files, options, fingerprint, identities, max_bad_fraction)


def prepare(
    dataset,
    raw: str,
    out_dir: str | os.PathLike,
    *,
    min_count: int | None = None,
    max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION,
    shards: int = DEFAULT_SHARDS,
    seed: int | None = None,
    block_bytes: int = fileio.BLOCK_BYTES,
    force: bool = False,
    verify: bool = False,
) -> Path:
    """Prepares ``dataset`` from ``raw`` into ``out_dir/<name>/`` and returns that directory.

    Reuses an existing output whose manifest fingerprint matches (same raw files, schema and
    options; ``max_bad_fraction`` and ``force`` decide whether a run succeeds, not what it
    writes, so they are not part of the fingerprint). The same job on Apache Beam:
    :func:`pipelines.data.beam.prepare_beam` (same output and fingerprint).

    Args:
        dataset: a bundled dataset name (``criteo``, ``frappe``, ``movielenslatest``, ``ml-1m``,
            ``kkbox``), a schema YAML path, a schema mapping or a
            :class:`~pipelines.data.schema.DatasetSchema`.
        raw: raw file, directory or glob (local path or any TensorFlow file system URI, e.g.
            ``gs://``); see the schema's ``format`` and ``splits``.
        out_dir: local directory that receives ``<name>/`` (URIs are refused: the atomic
            rename needs a local file system).
        min_count: vocabulary min count of the fields that set none (default: the schema's).
        max_bad_fraction: largest tolerated fraction of malformed rows per file (default 1 %).
        shards: TFRecord shards per split (default 8).
        seed: seed of the hashed split and of the train within-block permutation (default:
            the schema's ``splits.seed``).
        block_bytes: raw bytes per processing block (bounds memory). It decides the train
            permutation blocks, so it is an option and part of the fingerprint.
        force: rebuild even if the fingerprint matches.
        verify: on reuse, check every shard's sha256 too (sizes are always checked).

    Returns:
        Path of the prepared dataset directory.

    Raises:
        DataError: a bad schema, missing/empty raw files, a directory without the expected
            splits, a declared column missing from a file, or too many malformed rows;
            nothing partial is left behind.
    """
    if "://" in str(out_dir):
        # Atomic directory renames need a local file system; copy the prepared dir afterwards.
        raise ValueError(f"`out_dir` must be a local directory. Received: `out_dir={out_dir}`")
    job = plan_job(
        dataset,
        raw,
        min_count=min_count,
        max_bad_fraction=max_bad_fraction,
        shards=shards,
        seed=seed,
        block_bytes=block_bytes,
    )
    spec = job.spec
    final = Path(out_dir).resolve() / spec.name
    if not force and _reusable(final, job.fingerprint, verify):
        logger.info("Reusing %s (fingerprint %s matches)", final, job.fingerprint[:12])
        return final
    with fileio.atomic_directory(final, replace=True) as tmp:
        (tmp / "vocab").mkdir()
        manifest = _build(job, tmp)
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    logger.info("Prepared %s in %s", spec.name, final)
    return final


def count_block(
    spec: SchemaSpec,
    file: RawFile,
    block: Block,
    seed: int,
    counters: dict[str, _TokenCounter],
    moments: dict[str, _Moments],
) -> int:
    """Pass 1 on one block: adds its train rows' tokens to ``counters`` (vocabulary fields)
    and values to ``moments`` (dense fields); returns the train rows counted."""
    frame = block.frame
    if file.split is None:
        frame = frame.loc[_splits_of(spec, file, block.line, seed) == 0]
    for f in spec.fields:
        values = frame[f.name].reset_index(drop=True)
        if f.name in counters:
            tokens = spec.tokens(f.name, values) if f.kind == "sequence" else values
            counters[f.name].add(tokens)
        elif f.name in moments:
            moments[f.name].add(values.to_numpy(dtype=np.float64))
    return len(frame)


def bad_splits(spec: SchemaSpec, file: RawFile, block: Block, seed: int) -> np.ndarray | None:
    """The split of each of ``block``'s malformed rows (``None``: the file's own split)."""
    return _splits_of(spec, file, np.array([b[0] for b in block.bad], dtype=np.int64), seed)


def counted_fields(spec: SchemaSpec) -> tuple[list[str], list[str]]:
    """Pass 1's fields: ``(vocabulary fields (token counts), dense fields (moments))``."""
    vocab = [f.name for f in spec.fields if not f.dense and not f.hash_buckets]
    return vocab, [f.name for f in spec.fields if f.dense]


def _count_train(job: PrepareJob, start: float):
    """Pass 1: token counts (vocabulary fields) and moments (dense fields) over train rows."""
    spec, seed, block_bytes = job.spec, job.options["seed"], job.options["block_bytes"]
    vocab_fields, dense_fields = counted_fields(spec)
    counters = {name: _TokenCounter() for name in vocab_fields}
    moments = {name: _Moments() for name in dense_fields}
    # pass 2 logs the same rows
    check1 = _Malformed(job.max_bad_fraction, log=False, unit=spec.unit)
    rows = 0
    for _, file in job.train_files:
        name = fileio.basename(file.path)
        for block in spec.blocks(file, block_bytes):
            check1.add(file, block, bad_splits(spec, file, block, seed))
            check1.check([name], early=True)
            rows += count_block(spec, file, block, seed, counters, moments)
            _progress("Pass 1 (count)", name, check1.rows[name], start)
        check1.check([name])
    logger.info("Pass 1 (count): %d train rows in %.1f s", rows, time.perf_counter() - start)
    return counters, moments


def field_entry(
    spec: SchemaSpec,
    f,
    options: dict[str, Any],
    vocab: list[str] | None = None,
    distinct: int = 0,
    moments: _Moments | None = None,
) -> dict[str, Any]:
    """A field's manifest entry, from its pass-1 results: the ``vocab`` and ``distinct`` train
    tokens of a vocabulary field, the ``moments`` of a dense one."""
    reserved = 2 if f.kind == "sequence" else 1
    entry: dict[str, Any] = {"name": f.name, "kind": f.encoded_kind, "column": f.source}
    if f.dense:
        entry.update(
            vocab_size=2,
            num_tokens=0,
            vocab_file=None,
            normalization=(moments or _Moments()).normalization(f.normalize),
        )
    elif f.hash_buckets:
        entry.update(
            vocab_size=f.hash_buckets + reserved,
            num_tokens=0,
            vocab_file=None,
            hash_buckets=f.hash_buckets,
        )
    else:
        vocab = vocab or []
        entry.update(
            vocab_size=len(vocab) + reserved,
            num_tokens=len(vocab),
            reference_vocab_size=len(vocab) + 2,
            vocab_file=f"vocab/{f.name}.txt",
            train_distinct=int(distinct),
            min_count=spec.schema.min_count_of(f, options["min_count"]),
        )
    if f.kind == "sequence":
        entry["max_len"] = f.max_len
        entry["separator"] = f.separator
    if f.transform:
        entry["transform"] = f.transform
    return entry


def vocab_text(vocab: list[str]) -> str:
    """A vocabulary file's text: one raw token per line, UTF-8."""
    return "".join(f"{t}\n" for t in vocab)


def _field_entry(spec, f, tmp, counters, moments, options) -> tuple[dict, pd.Index | None]:
    """A field's manifest entry (writing its vocabulary file) and its lookup index."""
    if f.name not in counters:
        return field_entry(spec, f, options, moments=moments.get(f.name)), None
    vocab = counters[f.name].vocabulary(spec.schema.min_count_of(f, options["min_count"]))
    (tmp / "vocab" / f"{f.name}.txt").write_text(vocab_text(vocab), encoding="utf-8")
    entry = field_entry(spec, f, options, vocab, counters[f.name].distinct)
    return entry, lookup_index(f, vocab)


def make_encoder(spec: SchemaSpec, entries: dict[str, dict[str, Any]]) -> ExampleEncoder:
    """Pass 2's ``tf.train.Example`` encoder: every field, the group (with a group key),
    then the label."""
    group = [(GROUP_FEATURE, 1)] if spec.group_key else []
    return ExampleEncoder(
        [(f.name, f.max_len if f.kind == "sequence" else 1) for f in spec.fields]
        + group
        + [("label", 1)],
        {f.name: entries[f.name]["vocab_size"] for f in spec.fields if not f.dense} | {"label": 1},
        float_features={f.name for f in spec.fields if f.dense},
    )


def encode_splits(
    spec: SchemaSpec,
    file: RawFile,
    position: tuple[int, int],
    block: Block,
    indexes: dict[str, pd.Index | None],
    entries: dict[str, dict[str, Any]],
    encoder: ExampleEncoder,
    seed: int,
) -> Iterator[tuple[str, list[bytes], np.ndarray]]:
    """Pass 2 on one block: ``(split, serialized records, labels)`` per split with rows.

    ``position`` is ``(file index, block index)``: train rows are permuted within the block by
    a generator seeded with ``[seed, file index, block index]``, so that adjacent records are
    not adjacent raw lines, and both runners write the same records in the same block order.
    """
    assign = _splits_of(spec, file, block.line, seed)
    for split_id, split in enumerate(SPLITS):
        if assign is None:
            if file.split != split:
                continue
            rows_idx = np.arange(len(block.line))
        else:
            rows_idx = np.flatnonzero(assign == split_id)
        if len(rows_idx) == 0:
            continue
        if split == "train":
            rng = np.random.default_rng([seed, *position])
            rows_idx = rng.permutation(rows_idx)
        frame = block.frame.iloc[rows_idx].reset_index(drop=True)
        labels = block.label[rows_idx].astype(np.int64)
        columns = _encode_block(spec, frame, indexes, entries)
        if spec.group_key:
            columns[GROUP_FEATURE] = group_ids(frame[spec.group_key])
        columns["label"] = labels
        yield split, encoder.encode(columns), labels


def group_ids(values: pd.Series) -> np.ndarray:
    """The gAUC group of each row: a 62-bit hash of the group field's raw (canonical) value.

    The reference groups by the raw value (``group_id: copy_from(user), remap: False``), not by
    the encoded id, which maps every user below the min count or unseen in train to id 0 (one
    group; Frappe's valid split: 884 users, 870 groups by id). pandas' ``hash_array`` is a
    fixed-key SipHash, the same in every process and on every Beam worker; 62 bits keep the
    value a small non-negative int64 (collisions: about n^2 / 2^63).
    """
    array = values.to_numpy()
    if array.dtype.kind == "f":  # a bucketized number: its value, NaN (missing) one group
        array = np.where(np.isnan(array), -np.inf, array)
    hashed = pd.util.hash_array(array.astype(object) if array.dtype.kind == "O" else array)
    return (hashed >> np.uint64(2)).astype(np.int64)


def lookup_index(f, vocab: list[str]) -> pd.Index:
    """The lookup index of a vocabulary field (position = vocabulary line)."""
    if f.encoded_kind == "numeric-bucketed":  # values are float64 in blocks (NaN = missing)
        return pd.Index(np.array([float(t) for t in vocab], dtype=np.float64))
    return pd.Index(vocab, dtype=object)


def encode_file(
    manifest, path: str, block_bytes: int = fileio.BLOCK_BYTES
) -> tuple[dict[str, np.ndarray], np.ndarray, list[tuple[int, str, str]]]:
    """Encodes every row of one raw file with a prepared dataset's schema, vocabularies and
    normalization: the code of preprocessing's second pass, for scoring new rows offline or
    checking the serving graph against it.

    Args:
        manifest: a prepared dataset directory or its :class:`Manifest` (with a schema).
        path: a raw file in the schema's format.

    Returns:
        ``(model inputs by field, labels, malformed rows as (line, reason, detail))``.
    """
    manifest = load_manifest(manifest)
    if manifest.schema is None:
        raise ValueError(f"{manifest.directory}: the manifest holds no schema; prepare it again.")
    spec = get_spec(manifest.schema)
    entries = {e["name"]: e for e in manifest.raw["fields"]}
    indexes = {
        f.name: lookup_index(f, manifest.vocabulary(f.name))
        if entries[f.name]["vocab_file"]
        else None
        for f in spec.fields
    }
    inputs, labels, bad = [], [], []
    for block in spec.blocks(RawFile(path, "test"), block_bytes):
        inputs.append(_encode_block(spec, block.frame, indexes, entries))
        labels.append(block.label.astype(np.int64))
        bad.extend(block.bad)
    columns = {f.name: np.concatenate([x[f.name] for x in inputs]) for f in spec.fields}
    return columns, np.concatenate(labels), bad


def _build(job: PrepareJob, tmp: Path) -> dict[str, Any]:
    spec, seed, block_bytes = job.spec, job.options["seed"], job.options["block_bytes"]
    _last_progress.clear()
    start = time.perf_counter()
    counters, moments = _count_train(job, start)
    field_entries, indexes, entries = [], {}, {}
    for f in spec.fields:
        entry, index = _field_entry(spec, f, tmp, counters, moments, job.options)
        field_entries.append(entry)
        entries[f.name] = entry
        indexes[f.name] = index
    del counters

    # Pass 2: encode and write.
    start2 = time.perf_counter()
    encoder = make_encoder(spec, entries)
    writers = {s: _ShardWriters(tmp, s, job.options["shards"]) for s in SPLITS}
    malformed = _Malformed(job.max_bad_fraction, unit=spec.unit)
    written = 0
    try:
        for file_index, file in enumerate(job.files):
            name = fileio.basename(file.path)
            for block_index, block in enumerate(spec.blocks(file, block_bytes)):
                malformed.add(file, block, bad_splits(spec, file, block, seed))
                malformed.check([name], early=True)
                for split, records, labels in encode_splits(
                    spec, file, (file_index, block_index), block, indexes, entries, encoder, seed
                ):
                    writers[split].write(records, labels)
                    written += len(records)
                _progress("Pass 2 (encode)", name, malformed.rows[name], start2)
            malformed.check([name])
            logger.info(
                "Encoded %s (%d rows so far, %.0f rows/s)",
                name,
                written,
                written / (time.perf_counter() - start2),
            )
    finally:
        for w in writers.values():
            w.close()
    logger.info("Pass 2 (encode): %d rows in %.1f s", written, time.perf_counter() - start2)

    splits = {}
    for split, w in writers.items():
        shards = [
            {
                "file": n,
                "rows": int(r),
                "bytes": (tmp / n).stat().st_size,
                "sha256": fileio.sha256_file(str(tmp / n)),
            }
            for n, r in zip(w.names, w.rows.tolist(), strict=True)
        ]
        splits[split] = {"rows": int(w.rows.sum()), "positives": int(w.positives), "shards": shards}
    return build_manifest(job, field_entries, splits, malformed)


def build_manifest(
    job: PrepareJob,
    field_entries: list[dict[str, Any]],
    splits: dict[str, dict[str, Any]],
    malformed: _Malformed,
) -> dict[str, Any]:
    """The manifest of a prepared dataset (see :mod:`pipelines.data.manifest`) from the two
    passes' results: field entries, splits (rows, positives, shards) and malformed rows."""
    spec = job.spec
    report = malformed.report()
    for split in SPLITS:
        report["malformed"].setdefault(split, {})
    for file in job.files:
        split_names = [file.split] if file.split else list(SPLITS)
        for split in split_names:
            report["malformed"][split].setdefault(fileio.basename(file.path), {})
    return {
        "schema_version": SCHEMA_VERSION,
        "dataset": spec.name,
        "label_key": "label",
        "group_key": spec.group_key,
        "group_feature": GROUP_FEATURE if spec.group_key else None,
        "fields": field_entries,
        "splits": splits,
        "malformed": report["malformed"],
        "malformed_examples": report["malformed_examples"],
        "fingerprint": job.fingerprint,
        "options": {k: v for k, v in job.options.items() if k != "schema"},
        "schema": spec.schema.to_dict(),
        "max_bad_fraction": job.max_bad_fraction,
        "raw_files": job.identities,
        "reference_vocab_total": sum(e.get("reference_vocab_size", 0) for e in field_entries),
        "id_convention": ID_CONVENTION,
        "vocab_order": "descending train count, then token (Unicode code point order)",
        "pipeline_version": PIPELINE_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
