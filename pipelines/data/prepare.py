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

import sys
import argparse
import hashlib
import json
import logging
import os
import shutil
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf

from pipelines.data import fileio
from pipelines.data.datasets import SPECS, get_spec
from pipelines.data.datasets.base import SPLITS, Block, DatasetSpec, RawFile
from pipelines.data.errors import DataError
from pipelines.data.example_codec import ExampleEncoder
from pipelines.data.manifest import ID_CONVENTION, MANIFEST_NAME, SCHEMA_VERSION, load_manifest

logger = logging.getLogger(__name__)

PIPELINE_VERSION = 1
DEFAULT_SHARDS = 8
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
    line_numbers: np.ndarray, seed: int, ratios: tuple[int, int, int] = (8, 1, 1)
) -> np.ndarray:
    """Seeded split of rows by a hash of their 0-based row index (splitmix64).

    Args:
        line_numbers: 1-based line numbers of the rows.
        seed: split seed.
        ratios: train:valid:test weights.

    Returns:
        int array: 0 = train, 1 = valid, 2 = test.
    """
    with np.errstate(over="ignore"):
        z = (line_numbers.astype(np.uint64) - np.uint64(1)) + np.uint64(seed % 2**63) * np.uint64(
            0x9E3779B97F4A7C15
        )
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    bucket = (z % np.uint64(sum(ratios))).astype(np.int64)
    return (bucket >= ratios[0]).astype(np.int64) + (bucket >= ratios[0] + ratios[1]).astype(
        np.int64
    )


class _TokenCounter:
    """Streaming token counts: per-block ``value_counts`` merged in vectorized compactions."""

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
        self._parts.append(counts)
        self._pending += len(counts)
        if self._pending > max(_COMPACT_ENTRIES, self._merged) and len(self._parts) > 1:
            self._compact()

    def _compact(self) -> None:
        merged = pd.concat(self._parts).groupby(level=0, sort=False).sum()
        self._parts = [merged]
        self._merged = len(merged)
        self._pending = 0

    @property
    def distinct(self) -> int:
        """Distinct tokens counted so far (after :meth:`vocabulary`, exact)."""
        return self._merged

    def vocabulary(self, min_count: int) -> list[str]:
        """Tokens with count >= ``min_count``, by descending count, then token."""
        if not self._parts:
            return []
        self._compact()
        counts = self._parts[0]
        counts = counts[counts >= min_count]
        tokens = counts.index
        if tokens.dtype.kind == "f":  # numeric fields: the token is the integer's decimal string
            tokens = tokens.to_numpy().astype(np.int64).astype(str)
        table = pd.DataFrame(
            {"token": np.asarray(tokens, dtype=object), "count": counts.to_numpy()}
        )
        table = table.sort_values(["count", "token"], ascending=[False, True], kind="stable")
        return table["token"].tolist()


class _Malformed:
    """Malformed-row bookkeeping: counts per split, file and reason; rows seen per file."""

    def __init__(self, max_bad_fraction: float, log: bool = True):
        self.max_bad_fraction = max_bad_fraction
        self.log = log
        self.counts: dict[str, dict[str, dict[str, int]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(int))
        )
        self.rows: dict[str, int] = defaultdict(int)
        self.bad: dict[str, int] = defaultdict(int)
        self.examples: list[str] = []

    def add(self, file: RawFile, block: Block, bad_splits: np.ndarray | None) -> None:
        name = fileio.basename(file.path)
        self.rows[name] += len(block.line) + len(block.bad)
        self.bad[name] += len(block.bad)
        for i, (line, reason, detail) in enumerate(block.bad):
            split = file.split if bad_splits is None else SPLITS[int(bad_splits[i])]
            self.counts[split][name][reason] += 1
            if len(self.examples) < MAX_EXAMPLES:
                self.examples.append(f"{name} line {line}: {detail}")
                if self.log:
                    logger.warning("Skipping malformed row: %s line %d: %s", name, line, detail)

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
        return {"malformed": counts, "malformed_examples": list(self.examples)}


_PROGRESS_EVERY = 1_000_000
_last_progress: dict[str, int] = {}


def _progress(stage: str, name: str, rows: int, start: float) -> None:
    """Logs progress about every million rows of a file (long files otherwise log nothing)."""
    key = f"{stage}:{name}"
    if rows - _last_progress.get(key, 0) >= _PROGRESS_EVERY:
        _last_progress[key] = rows
        logger.info("%s: %s line %d (%.0f s)", stage, name, rows, time.perf_counter() - start)


def _iter_blocks(spec: DatasetSpec, file: RawFile, context: Any, block_bytes: int):
    state: dict = {}
    any_rows = False
    for first, lines in fileio.iter_line_blocks(file.path, block_bytes):
        block = spec.parse(lines, first, file, state, context)
        any_rows = any_rows or len(block.line) > 0 or len(block.bad) > 0
        yield block
    if not any_rows:
        raise DataError(
            f"{file.path}: no data rows; expected {spec.name} rows in its published format"
        )


def _splits_of(spec: DatasetSpec, file: RawFile, lines: np.ndarray, seed: int) -> np.ndarray | None:
    if file.split is not None:
        return None
    return hash_split(lines, seed, spec.split_ratios)


def _field_tokens(spec: DatasetSpec, kind: str, name: str, values: pd.Series) -> pd.Series:
    """Tokens to count: sequence cells split by the spec; other fields as they are (missing
    values, ``""`` or NaN, are dropped by the counter)."""
    if kind == "sequence":
        return spec.tokens(name, values)
    return values


def _encode_block(
    spec: DatasetSpec, frame: pd.DataFrame, indexes: dict[str, pd.Index]
) -> dict[str, np.ndarray]:
    """Ids of a block's rows in the Keras lookup convention."""
    out = {}
    n = len(frame)
    for f in spec.fields:
        values = frame[f.name].reset_index(drop=True)
        if f.kind == "sequence":
            tokens = spec.tokens(f.name, values)
            ids = np.zeros((n, f.max_len), dtype=np.int64)
            if len(tokens):
                rows = tokens.index.to_numpy()
                pos = tokens.groupby(level=0, sort=False).cumcount().to_numpy()
                found = indexes[f.name].get_indexer(tokens.to_numpy(dtype=object))
                keep = pos < f.max_len
                ids[rows[keep], pos[keep]] = np.where(found[keep] < 0, 1, found[keep] + 2)
            out[f.name] = ids
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
    spec: DatasetSpec, files: list[RawFile], options: dict[str, Any]
) -> tuple[str, list[dict]]:
    identities = [dict(fileio.file_fingerprint(f.path), split=f.split) for f in files]
    identities += [dict(fileio.file_fingerprint(p), split="side") for p in spec.side_files()]
    payload = {
        "pipeline_version": PIPELINE_VERSION,
        "dataset": spec.name,
        "options": options,
        "files": identities,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()
    return digest, identities


def _reusable(final: Path, fingerprint: str) -> bool:
    try:
        manifest = load_manifest(final)
    except (FileNotFoundError, ValueError, KeyError):
        return False
    if manifest.fingerprint != fingerprint:
        return False
    shards = [p for s in manifest.splits for p in manifest.shard_paths(s)]
    vocab = [manifest.vocab_path(f.name) for f in manifest.fields]
    return all(Path(p).is_file() for p in shards) and all(p.is_file() for p in vocab)


def prepare(
    dataset: str,
    raw: str,
    out_dir: str | os.PathLike,
    *,
    min_count: int | None = None,
    max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION,
    shards: int = DEFAULT_SHARDS,
    seed: int | None = None,
    block_bytes: int = fileio.BLOCK_BYTES,
    force: bool = False,
    **spec_options: Any,
) -> Path:
    """Prepares ``dataset`` from ``raw`` into ``out_dir/<dataset>/`` and returns that directory.

    Reuses an existing output whose manifest fingerprint matches (same raw files and options;
    ``max_bad_fraction`` and ``force`` decide whether a run succeeds, not what it writes, so they
    are not part of the fingerprint).

    Args:
        dataset: ``criteo``, ``frappe``, ``movielenslatest``, ``ml-1m`` or ``kkbox``.
        raw: raw file or directory (local path or any TensorFlow file system URI, e.g. ``gs://``);
            see each spec's docstring for the accepted layouts.
        out_dir: local directory that receives ``<dataset>/`` (URIs are refused: the atomic
            rename needs a local file system).
        min_count: vocabulary min count (default: the spec's, 10 for Criteo, 2 otherwise).
        max_bad_fraction: largest tolerated fraction of malformed rows per file (default 1 %).
        shards: TFRecord shards per split (default 8).
        seed: seed of the hashed 8:1:1 split (Criteo single file, ML-1M) and of the train
            within-block permutation (default: the spec's).
        block_bytes: raw bytes per processing block (bounds memory). It decides the train
            permutation blocks, so it is an option and part of the fingerprint.
        force: rebuild even if the fingerprint matches.
        **spec_options: dataset options (KKBox ``sequence_sep``).

    Returns:
        Path of the prepared dataset directory.

    Raises:
        DataError: missing/empty raw files, a directory without the expected splits, or too many
            malformed rows; nothing partial is left behind.
    """
    spec = get_spec(dataset, **spec_options)
    if shards < 1:
        raise ValueError(f"`shards` must be >= 1. Received: `shards={shards}`")
    if not 0 <= max_bad_fraction <= 1:
        raise ValueError(
            f"`max_bad_fraction` must be in [0, 1]. Received: `max_bad_fraction={max_bad_fraction}`"
        )
    min_count = spec.default_min_count if min_count is None else int(min_count)
    if min_count < 1:
        raise ValueError(f"`min_count` must be >= 1. Received: `min_count={min_count}`")
    seed = spec.default_seed if seed is None else int(seed)
    if "://" in str(out_dir):
        # Atomic directory renames need a local file system; copy the prepared dir afterwards.
        raise ValueError(f"`out_dir` must be a local directory. Received: `out_dir={out_dir}`")
    raw = str(raw)
    files = spec.resolve(raw)
    options = {
        "min_count": min_count,
        "shards": shards,
        "seed": seed,
        "block_bytes": block_bytes,
        "split": "hash 8:1:1" if any(f.split is None for f in files) else "official",
        **spec.options,
    }
    fingerprint, identities = _fingerprint(spec, files, options)
    final = Path(out_dir).resolve() / spec.name
    if not force and _reusable(final, fingerprint):
        logger.info("Reusing %s (fingerprint %s matches)", final, fingerprint[:12])
        return final
    with fileio.atomic_directory(final, replace=True) as tmp:
        (tmp / "vocab").mkdir()
        manifest = _build(spec, files, tmp, options, fingerprint, identities, max_bad_fraction)
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    logger.info("Prepared %s in %s", spec.name, final)
    return final


def _build(
    spec: DatasetSpec,
    files: list[RawFile],
    tmp: Path,
    options: dict[str, Any],
    fingerprint: str,
    identities: list[dict],
    max_bad_fraction: float,
) -> dict[str, Any]:
    seed, block_bytes = options["seed"], options["block_bytes"]
    _last_progress.clear()
    context = spec.load_context(files)
    start = time.perf_counter()

    # Pass 1: token counts over the train rows.
    counters = {f.name: _TokenCounter() for f in spec.fields}
    check1 = _Malformed(max_bad_fraction, log=False)  # pass 2 logs the same rows
    train_files = [f for f in files if f.split in ("train", None)]
    rows = 0
    for file in train_files:
        name = fileio.basename(file.path)
        for block in _iter_blocks(spec, file, context, block_bytes):
            check1.add(
                file,
                block,
                _splits_of(spec, file, np.array([b[0] for b in block.bad], dtype=np.int64), seed),
            )
            check1.check([name], early=True)
            frame = block.frame
            if file.split is None:
                frame = frame.loc[_splits_of(spec, file, block.line, seed) == 0]
            for f in spec.fields:
                counters[f.name].add(
                    _field_tokens(spec, f.kind, f.name, frame[f.name].reset_index(drop=True))
                )
            rows += len(frame)
            _progress("Pass 1 (count)", name, check1.rows[name], start)
        check1.check([name])
    logger.info("Pass 1 (count): %d train rows in %.1f s", rows, time.perf_counter() - start)

    field_entries, indexes, max_values = [], {}, {}
    for f in spec.fields:
        vocab = counters[f.name].vocabulary(options["min_count"])
        distinct = counters[f.name].distinct
        path = tmp / "vocab" / f"{f.name}.txt"
        path.write_text("".join(f"{t}\n" for t in vocab), encoding="utf-8")
        reserved = 2 if f.kind == "sequence" else 1
        entry = {
            "name": f.name,
            "kind": f.kind,
            "vocab_size": len(vocab) + reserved,
            "num_tokens": len(vocab),
            "reference_vocab_size": len(vocab) + 2,
            "vocab_file": f"vocab/{f.name}.txt",
            "train_distinct": distinct,
        }
        if f.kind == "sequence":
            entry["max_len"] = f.max_len
        if f.transform:
            entry["transform"] = f.transform
        field_entries.append(entry)
        if f.kind == "numeric-bucketed":  # values are float64 in blocks (NaN = missing)
            indexes[f.name] = pd.Index(np.array([float(t) for t in vocab], dtype=np.float64))
        else:
            indexes[f.name] = pd.Index(vocab, dtype=object)
        max_values[f.name] = len(vocab) + reserved
    del counters

    # Pass 2: encode and write.
    start2 = time.perf_counter()
    encoder = ExampleEncoder(
        [(f.name, f.max_len if f.kind == "sequence" else 1) for f in spec.fields] + [("label", 1)],
        {**max_values, "label": 1},
    )
    writers = {s: _ShardWriters(tmp, s, options["shards"]) for s in SPLITS}
    malformed = _Malformed(max_bad_fraction)
    written = 0
    try:
        for file_index, file in enumerate(files):
            name = fileio.basename(file.path)
            for block_index, block in enumerate(_iter_blocks(spec, file, context, block_bytes)):
                bad_lines = np.array([b[0] for b in block.bad], dtype=np.int64)
                malformed.add(file, block, _splits_of(spec, file, bad_lines, seed))
                malformed.check([name], early=True)
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
                        rng = np.random.default_rng([seed, file_index, block_index])
                        rows_idx = rng.permutation(rows_idx)
                    frame = block.frame.iloc[rows_idx].reset_index(drop=True)
                    labels = block.label[rows_idx].astype(np.int64)
                    columns = _encode_block(spec, frame, indexes)
                    columns["label"] = labels
                    writers[split].write(encoder.encode(columns), labels)
                    written += len(rows_idx)
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
            {"file": n, "rows": int(r), "sha256": fileio.sha256_file(str(tmp / n))}
            for n, r in zip(w.names, w.rows.tolist(), strict=True)
        ]
        splits[split] = {"rows": int(w.rows.sum()), "positives": int(w.positives), "shards": shards}
    report = malformed.report()
    for split in SPLITS:
        report["malformed"].setdefault(split, {})
    for file in files:
        split_names = [file.split] if file.split else list(SPLITS)
        for split in split_names:
            report["malformed"][split].setdefault(fileio.basename(file.path), {})
    return {
        "schema_version": SCHEMA_VERSION,
        "dataset": spec.name,
        "label_key": "label",
        "group_key": spec.group_key,
        "fields": field_entries,
        "splits": splits,
        "malformed": report["malformed"],
        "malformed_examples": report["malformed_examples"],
        "fingerprint": fingerprint,
        "options": options,
        "max_bad_fraction": max_bad_fraction,
        "raw_files": identities,
        "reference_vocab_total": sum(e["reference_vocab_size"] for e in field_entries),
        "id_convention": ID_CONVENTION,
        "vocab_order": "descending train count, then token (Unicode code point order)",
        "pipeline_version": PIPELINE_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# -- CLI: python -m pipelines.prepare -------------------------------------------------------

cli_log = logging.getLogger("pipelines.prepare")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Preprocess a raw CTR dataset into TFRecord shards + manifest.json."
    )
    parser.add_argument("--dataset", required=True, choices=list(SPECS), help="dataset spec")
    parser.add_argument(
        "--raw", required=True, help="raw file or directory (local path or URI such as gs://...)"
    )
    parser.add_argument(
        "--out", required=True, help="data directory; the dataset goes to OUT/NAME/"
    )
    parser.add_argument(
        "--min-count", type=int, default=None, help="vocabulary min count (default: the spec's)"
    )
    parser.add_argument(
        "--max-bad-fraction",
        type=float,
        default=DEFAULT_MAX_BAD_FRACTION,
        help="tolerated malformed fraction per file",
    )
    parser.add_argument("--shards", type=int, default=DEFAULT_SHARDS, help="shards per split")
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of hashed splits (default: the spec's)"
    )
    parser.add_argument(
        "--sequence-sep", default=None, help="KKBox sequence separator (default '|')"
    )
    parser.add_argument(
        "--force", action="store_true", help="rebuild even if the fingerprint matches"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    extra = {"sequence_sep": args.sequence_sep} if args.sequence_sep is not None else {}
    try:
        path = prepare(
            args.dataset,
            args.raw,
            args.out,
            min_count=args.min_count,
            max_bad_fraction=args.max_bad_fraction,
            shards=args.shards,
            seed=args.seed,
            force=args.force,
            **extra,
        )
    except (DataError, ValueError) as err:
        cli_log.error("%s", err)
        return 2
    cli_log.info("Dataset ready: %s (manifest %s/manifest.json)", path, path)
    print(path, file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
