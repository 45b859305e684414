"""Preprocessing on Apache Beam: the in-process two passes as one Beam pipeline.

``pipelines.data.beam.prepare(..., runner="beam")`` (``python -m pipelines.prepare ...
--runner beam``) runs :func:`prepare_beam`. The job is the in-process one (:func:`pipelines.data.prepare.plan_job`:
the same files, options and fingerprint) and so is every step on a block, shared with
:mod:`pipelines.data.prepare`; Beam distributes the blocks::

    raw files -> work units (files.units: blocks of plain text files, whole gzip/record files)
      pass 1 (train units):  count_block per block
          token counts  -> CombinePerKey((field, hash bucket), TokenCountsFn) -> min count
                        -> GroupByKey(field) -> vocabulary (descending count, then token)
          dense values  -> CombinePerKey(field, MomentsFn)     (Chan's merge, in input order)
          malformed     -> CombineGlobally(MalformedFn)        (counts + first examples)
      plan (one element): field entries, vocabularies, pass 1's verdict -> AsSingleton
      pass 2 (all units, plan as a side input): encode_splits per block
          chunks of records per split -> Write(TFRecordShardSink, num_shards = shards)
          (split, rows, positives) -> CombinePerKey;  malformed -> CombineGlobally
      finish (one element): vocabulary files, the shards' rows/bytes/sha256, the reports

The driver then checks what the in-process path checks (errors naming file and line, the
malformed fraction per file, files without rows), builds the manifest with
:func:`pipelines.data.prepare.build_manifest` and publishes the dataset: everything is written
under ``<out>/<name>.tmp-<id>`` and appears as ``<out>/<name>`` only when complete (a local
directory is renamed; on an object store the files are moved and ``manifest.json`` comes last,
after the previous dataset's manifest is removed, so a dataset without a manifest is never
taken as prepared). A failed or killed job leaves nothing that looks prepared.

Beam is an optional dependency (``pip install .[beam]``); this module imports it.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
import pandas as pd
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from apache_beam.transforms.combiners import TupleCombineFn

from pipelines.data import fileio
from pipelines.data.beam import files as raw_files
from pipelines.data.beam.combiners import MalformedFn, MomentsFn, TokenCountsFn
from pipelines.data.beam.sink import TFRecordShardSink, shard_facts
from pipelines.data.datasets.base import SPLITS
from pipelines.data.errors import DataError
from pipelines.data.manifest import MANIFEST_NAME
from pipelines.data.prepare import (
    DEFAULT_MAX_BAD_FRACTION,
    DEFAULT_SHARDS,
    PrepareJob,
    _Malformed,
    _Moments,
    _reusable,
    _TokenCounter,
    bad_splits,
    build_manifest,
    count_block,
    counted_fields,
    encode_splits,
    field_entry,
    lookup_index,
    make_encoder,
    plan_job,
    vocab_text,
    vocabulary_of,
)

logger = logging.getLogger(__name__)

BEAM = "beam"  # --runner beam: Beam's local runner, worker processes on this machine
FN_API_RUNNER = "apache_beam.runners.portability.fn_api_runner.FnApiRunner"
# Runners whose workers share this machine's disk (a local output directory is fine).
LOCAL_RUNNERS = (BEAM, *StandardOptions.LOCAL_RUNNERS)
# A field's token counts are combined in this many hash buckets (no worker holds them all).
COUNT_BUCKETS = 16
# Records per element written to the sink: Beam's per-element cost spread over many rows.
CHUNK_RECORDS = 64
RESULTS_NAME = "_beam_results.pickle"

# tagged outputs
ERRORS, MALFORMED, MOMENTS, TOTALS = "errors", "malformed", "moments", "totals"


# -- pipeline steps ------------------------------------------------------------------------------
class _UnitsFn(beam.DoFn):
    """Base of the steps that read work units: a staging reader per worker, and the loop over
    a unit's blocks that both passes share (malformed rows per block, the in-process early
    stop of a mostly malformed file, errors as records naming the file)."""

    def __init__(self, job: PrepareJob) -> None:
        self.job = job

    def setup(self) -> None:
        self.reader = raw_files.BlockReader(self.job.spec, self.job.options["block_bytes"])

    def teardown(self) -> None:
        self.reader.close()

    def each_block(self, unit: raw_files.Unit, step) -> Iterator:
        """Runs ``step(file, position, block)`` (a generator of outputs) on every block of
        ``unit``; then outputs the unit's malformed-row report."""
        spec, seed = self.job.spec, self.job.options["seed"]
        file = self.job.files[unit.file_index]
        name = fileio.basename(file.path)
        report = _Malformed(self.job.max_bad_fraction, log=False, unit=spec.unit)
        try:
            for block_index, block in self.reader.blocks(file, unit):
                position = (unit.file_index, block_index)
                report.add(file, block, bad_splits(spec, file, block, seed), position)
                yield from step(file, position, block)
                if _mostly_malformed(report, name):
                    break
        except DataError as error:
            position = (unit.file_index, unit.block_index)
            yield beam.pvalue.TaggedOutput(ERRORS, (position, str(error)))
        yield beam.pvalue.TaggedOutput(MALFORMED, report)


class IndexFilesFn(beam.DoFn):
    """File index -> the file's work units (:func:`files.units`); a file that cannot be read
    becomes an error record naming it."""

    def __init__(self, job: PrepareJob) -> None:
        self.job = job

    def process(self, file_index: int) -> Iterator:
        file = self.job.files[file_index]
        try:
            yield from raw_files.units(
                self.job.spec, file_index, file, self.job.options["block_bytes"]
            )
        except DataError as error:
            yield beam.pvalue.TaggedOutput(ERRORS, ((file_index, -1), str(error)))


class CountUnitsFn(_UnitsFn):
    """Pass 1 on a unit: per block, bucketed token counts and the dense fields' moments (and
    the malformed rows: :meth:`_UnitsFn.each_block`)."""

    def setup(self) -> None:
        super().setup()
        self.vocab_fields, self.dense_fields = counted_fields(self.job.spec)

    def process(self, unit: raw_files.Unit) -> Iterator:
        yield from self.each_block(unit, self._count)

    def _count(self, file, position, block) -> Iterator:
        counters = {n: _TokenCounter() for n in self.vocab_fields}
        moments = {n: _Moments() for n in self.dense_fields}
        count_block(self.job.spec, file, block, self.job.options["seed"], counters, moments)
        for field, counter in counters.items():
            yield from _buckets(field, counter.counts())
        for field, m in moments.items():
            yield beam.pvalue.TaggedOutput(MOMENTS, (field, (position, m)))


class EncodeUnitsFn(_UnitsFn):
    """Pass 2 on a unit, with the plan as a side input: per block, the records of each split
    in chunks (tagged by split) and the split's rows and positives. Does nothing when pass 1
    failed the job."""

    def setup(self) -> None:
        super().setup()
        self._plan_id = None

    def _load(self, plan: dict) -> None:
        if self._plan_id == plan["id"]:
            return
        spec = self.job.spec
        self.entries = plan["entries"]
        self.indexes = {
            f.name: lookup_index(f, plan["vocab"][f.name]) if f.name in plan["vocab"] else None
            for f in spec.fields
        }
        self.encoder = make_encoder(spec, self.entries)
        self._plan_id = plan["id"]

    def process(self, unit: raw_files.Unit, plan: dict) -> Iterator:
        if plan["verdict"] is not None:
            return
        self._load(plan)
        yield from self.each_block(unit, self._encode)

    def _encode(self, file, position, block) -> Iterator:
        for split, records, labels in encode_splits(
            self.job.spec,
            file,
            position,
            block,
            self.indexes,
            self.entries,
            self.encoder,
            self.job.options["seed"],
        ):
            yield beam.pvalue.TaggedOutput(TOTALS, (split, (len(records), int(labels.sum()))))
            for i in range(0, len(records), CHUNK_RECORDS):
                yield beam.pvalue.TaggedOutput(split, records[i : i + CHUNK_RECORDS])


def _mostly_malformed(report: _Malformed, name: str) -> bool:
    """The in-process early stop: enough rows seen and most of them malformed."""
    try:
        report.check([name], early=True)
    except DataError:
        return True
    return False


def _buckets(field: str, counts: pd.Series) -> Iterator[tuple[tuple[str, int], pd.Series]]:
    """A block's counts of one field, split into :data:`COUNT_BUCKETS` by a hash of the token
    (pandas' fixed-key hash: the same bucket on every worker)."""
    if not len(counts):
        return
    keys = pd.util.hash_array(counts.index.to_numpy()) % np.uint64(COUNT_BUCKETS)
    for bucket in np.unique(keys).tolist():
        yield (field, int(bucket)), counts[keys == bucket]


def _vocabulary(item, min_counts: dict[str, int]) -> tuple[str, tuple[list, int]]:
    """A field's vocabulary from its buckets' ``(distinct, counts >= min count)``."""
    field, parts = item[0], list(item[1])
    distinct = sum(n for n, _ in parts)
    kept = [c for _, c in parts if len(c)]
    counts = pd.concat(kept) if kept else pd.Series([], dtype=np.int64)
    return field, (vocabulary_of(counts, min_counts[field]), distinct)


def _plan(_, job: PrepareJob, vocabularies: dict, moments: dict, malformed, errors) -> dict:
    """Pass 2's side input: the field entries and vocabularies, and pass 1's verdict (an
    error, or too many malformed train rows: then pass 2 writes nothing)."""
    spec = job.spec
    verdict = min(errors)[1] if errors else None
    if verdict is None:
        try:
            malformed.check([fileio.basename(f.path) for _, f in job.train_files])
        except DataError as error:
            verdict = str(error)
    entries, vocab = {}, {}
    for f in spec.fields:
        tokens, distinct = vocabularies.get(f.name, ([], 0))
        entries[f.name] = field_entry(spec, f, job.options, tokens, distinct, moments.get(f.name))
        if entries[f.name]["vocab_file"]:
            vocab[f.name] = tokens
    return {"id": uuid.uuid4().hex, "verdict": verdict, "entries": entries, "vocab": vocab}


def _finish(_, tmp: str, plan, malformed1, malformed2, errors, totals, shards) -> None:
    """The last step: the vocabulary files and the results the driver builds the manifest
    from, written into the job's temporary directory."""
    for name, tokens in plan["vocab"].items():
        with FileSystems.create(FileSystems.join(tmp, "vocab", f"{name}.txt")) as f:
            f.write(vocab_text(tokens).encode("utf-8"))
    results = {
        "plan": {k: v for k, v in plan.items() if k != "vocab"},
        "malformed1": malformed1,
        "malformed2": malformed2,
        "errors": sorted(errors),
        "totals": dict(totals),
        "shards": list(shards),
    }
    with FileSystems.create(FileSystems.join(tmp, RESULTS_NAME)) as f:
        f.write(pickle.dumps(results))


def build_pipeline(p: beam.Pipeline, job: PrepareJob, tmp: str) -> None:
    """Adds the two passes of ``job`` to ``p``, writing into the directory ``tmp``."""
    spec = job.spec
    vocab_fields, _ = counted_fields(spec)
    min_counts = {
        f.name: spec.schema.min_count_of(f, job.options["min_count"])
        for f in spec.fields
        if f.name in vocab_fields
    }
    train = {i for i, _ in job.train_files}

    indexed = (
        p
        | "Files" >> beam.Create(list(range(len(job.files))))
        | "Units" >> beam.ParDo(IndexFilesFn(job)).with_outputs(ERRORS, main="units")
    )
    units = indexed.units | "Spread units" >> beam.Reshuffle()

    # pass 1
    counted = (
        units
        | "Train units" >> beam.Filter(lambda u: u.file_index in train)
        | "Count"
        >> beam.ParDo(CountUnitsFn(job)).with_outputs(ERRORS, MALFORMED, MOMENTS, main="counts")
    )
    vocabularies = (
        counted.counts
        | "Merge counts" >> beam.CombinePerKey(TokenCountsFn())
        | "Min count"
        >> beam.MapTuple(lambda key, c: (key[0], (len(c), c[c >= min_counts[key[0]]])))
        | "Per field" >> beam.GroupByKey()
        | "Vocabulary" >> beam.Map(_vocabulary, min_counts)
    )
    moments = counted[MOMENTS] | "Moments" >> beam.CombinePerKey(MomentsFn())
    malformed_fn = MalformedFn(job.max_bad_fraction, spec.unit)
    malformed1 = counted[MALFORMED] | "Malformed 1" >> beam.CombineGlobally(malformed_fn)
    errors1 = (
        (indexed[ERRORS], counted[ERRORS])
        | "Errors 1" >> beam.Flatten()
        | "List errors 1" >> beam.combiners.ToList()
    )
    once = p | "Once" >> beam.Create([None])
    plan = once | "Plan" >> beam.Map(
        _plan,
        job,
        beam.pvalue.AsDict(vocabularies),
        beam.pvalue.AsDict(moments),
        beam.pvalue.AsSingleton(malformed1),
        beam.pvalue.AsSingleton(errors1),
    )

    # pass 2
    encoded = units | "Encode" >> beam.ParDo(
        EncodeUnitsFn(job), beam.pvalue.AsSingleton(plan)
    ).with_outputs(ERRORS, MALFORMED, TOTALS, *SPLITS)
    shards = []
    for split in SPLITS:
        written = encoded[split] | f"Write {split}" >> beam.io.Write(
            TFRecordShardSink(FileSystems.join(tmp, split), job.options["shards"])
        )
        shards.append(
            written | f"Facts {split}" >> beam.Map(lambda path, s: (s, shard_facts(path)), split)
        )
    totals = encoded[TOTALS] | "Totals" >> beam.CombinePerKey(TupleCombineFn(sum, sum))
    malformed2 = encoded[MALFORMED] | "Malformed 2" >> beam.CombineGlobally(malformed_fn)
    errors = (
        (indexed[ERRORS], counted[ERRORS], encoded[ERRORS])
        | "Errors" >> beam.Flatten()
        | "List errors" >> beam.combiners.ToList()
    )
    _ = once | "Finish" >> beam.Map(
        _finish,
        tmp,
        beam.pvalue.AsSingleton(plan),
        beam.pvalue.AsSingleton(malformed1),
        beam.pvalue.AsSingleton(malformed2),
        beam.pvalue.AsSingleton(errors),
        beam.pvalue.AsList(totals),
        beam.pvalue.AsList(tuple(shards) | "All shards" >> beam.Flatten()),
    )


# -- the driver ----------------------------------------------------------------------------------
def pipeline_options(runner: str, pipeline_args: Sequence[str]) -> PipelineOptions:
    """Beam options from ``--runner`` and the pipeline arguments. ``beam`` is Beam's local
    runner; with ``--direct_num_workers`` above 1 its workers are processes unless
    ``--direct_running_mode`` says otherwise (threads share one interpreter's lock)."""
    options = PipelineOptions(list(pipeline_args))
    # `beam` is Beam's FnApiRunner (what the DirectRunner runs batch jobs on) named directly:
    # the DirectRunner of Beam 2.77 first tries its Prism runner, which downloads a binary from
    # GitHub, so a machine with internet and one without would run different runners.
    options.view_as(StandardOptions).runner = FN_API_RUNNER if runner == BEAM else runner
    direct = options.view_as(DirectOptions)
    given = any(a.startswith("--direct_running_mode") for a in pipeline_args)
    if runner in LOCAL_RUNNERS and (direct.direct_num_workers or 1) > 1 and not given:
        direct.direct_running_mode = "multi_processing"
    return options


def prepare_beam(
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
    runner: str = BEAM,
    pipeline_args: Sequence[str] = (),
) -> Path | str:
    """Prepares ``dataset`` from ``raw`` into ``out_dir/<name>/`` with an Apache Beam pipeline
    and returns that directory: the output of :func:`pipelines.data.prepare.prepare` (same
    manifest, vocabularies, split rows and records per split; shard files differ).

    Args:
        dataset, raw, min_count, max_bad_fraction, shards, seed, block_bytes, force, verify:
            as for :func:`pipelines.data.prepare.prepare`; ``raw`` may be on any Beam file
            system.
        out_dir: a local directory (local runners only) or a URI every worker can write
            (``gs://bucket/data`` for Dataflow).
        runner: ``beam`` (Beam's local DirectRunner) or a Beam runner's name.
        pipeline_args: Beam pipeline options, e.g. ``["--direct_num_workers=2"]`` or
            ``["--project=...", "--region=...", "--temp_location=gs://..."]``.

    Returns:
        The prepared dataset directory (a ``Path``; a URI string for a URI ``out_dir``).

    Raises:
        DataError: what the in-process path raises, for the same input.
        ValueError: an option out of range, or a local ``out_dir`` with a remote runner.
    """
    options = pipeline_options(runner, pipeline_args)
    remote = raw_files.is_uri(str(out_dir))
    if not remote and runner not in LOCAL_RUNNERS:
        raise ValueError(
            f"`out_dir` must be a URI that the workers of {runner} can write (e.g. "
            f"gs://bucket/data). Received: `out_dir={out_dir}`"
        )
    job = plan_job(
        dataset,
        raw,
        min_count=min_count,
        max_bad_fraction=max_bad_fraction,
        shards=shards,
        seed=seed,
        block_bytes=block_bytes,
        resolve=raw_files.resolve,
        identity=raw_files.identity,
    )
    for identity in job.identities:
        if identity["bytes"] == 0:
            raise DataError(f"{identity['path']}: file is empty")
    name = job.spec.name
    if remote:
        final = FileSystems.join(str(out_dir).rstrip("/"), name)
        if not force and _reusable_remote(final, job.fingerprint, verify):
            logger.info("Reusing %s (fingerprint %s matches)", final, job.fingerprint[:12])
            return final
        tmp = f"{final}.tmp-{uuid.uuid4().hex[:12]}"
        try:
            manifest = _run(job, tmp, options)
            with FileSystems.create(FileSystems.join(tmp, MANIFEST_NAME)) as f:
                f.write((json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
            _publish_remote(tmp, final, manifest)
        finally:
            _remove_tree(tmp)
        logger.info("Prepared %s in %s", name, final)
        return final
    final = Path(out_dir).resolve() / name
    if not force and _reusable(final, job.fingerprint, verify):
        logger.info("Reusing %s (fingerprint %s matches)", final, job.fingerprint[:12])
        return final
    with fileio.atomic_directory(final, replace=True) as tmp:
        (tmp / "vocab").mkdir()
        manifest = _run(job, str(tmp), options)
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    logger.info("Prepared %s in %s", name, final)
    return final


def _run(job: PrepareJob, tmp: str, options: PipelineOptions) -> dict[str, Any]:
    """Runs the pipeline into ``tmp`` and returns the manifest; raises what the in-process
    path raises for the same input (nothing is published then)."""
    start = time.perf_counter()
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, job, tmp)
    with _importable_by_local_workers():
        result = pipeline.run()
        state = result.wait_until_finish()
    if state != beam.runners.runner.PipelineState.DONE:
        raise RuntimeError(f"Beam job ended {state}; nothing was published")
    path = FileSystems.join(tmp, RESULTS_NAME)
    with FileSystems.open(path) as f:
        results = pickle.loads(f.read())
    FileSystems.delete([path])
    manifest = _manifest(job, results)
    rows = sum(s["rows"] for s in manifest["splits"].values())
    seconds = time.perf_counter() - start
    logger.info("Beam job: %d rows in %.1f s (%.0f rows/s)", rows, seconds, rows / seconds)
    return manifest


def _manifest(job: PrepareJob, results: dict[str, Any]) -> dict[str, Any]:
    """The in-process checks, in its order, then the manifest."""
    if results["errors"]:
        raise DataError(results["errors"][0][1])
    train_names = [fileio.basename(f.path) for _, f in job.train_files]
    results["malformed1"].check(train_names)
    malformed: _Malformed = results["malformed2"]
    for file in job.files:
        if not malformed.rows[fileio.basename(file.path)]:
            raise DataError(
                f"{file.path}: no data rows; expected {job.spec.schema.format} rows of "
                f"{job.spec.name}"
            )
    for example in malformed.examples:
        logger.warning("Skipping malformed row: %s", example)
    malformed.check([fileio.basename(f.path) for f in job.files])
    splits = {}
    for split in SPLITS:
        shards = sorted((s for sp, s in results["shards"] if sp == split), key=lambda s: s["file"])
        rows, positives = results["totals"].get(split, (0, 0))
        if len(shards) != job.options["shards"] or sum(s["rows"] for s in shards) != rows:
            raise RuntimeError(
                f"{split}: {len(shards)} shards with {sum(s['rows'] for s in shards)} rows "
                f"written, {job.options['shards']} with {rows} rows expected"
            )
        splits[split] = {"rows": int(rows), "positives": int(positives), "shards": shards}
    entries = results["plan"]["entries"]
    return build_manifest(job, [entries[f.name] for f in job.spec.fields], splits, malformed)


@contextmanager
def _importable_by_local_workers():
    """Local worker processes (``--direct_running_mode=multi_processing``) start a fresh
    interpreter: put this project on their ``PYTHONPATH`` while the job runs."""
    root = str(Path(__file__).resolve().parents[3])
    before = os.environ.get("PYTHONPATH")
    parts = before.split(os.pathsep) if before else []
    if root not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([root, *parts])
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


# -- remote outputs ------------------------------------------------------------------------------
def _read_json(path: str) -> dict | None:
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode("utf-8"))


def _dataset_files(manifest: dict) -> list[str]:
    """The files of a prepared dataset, relative to its directory (the manifest last)."""
    names = [s["file"] for split in manifest["splits"].values() for s in split["shards"]]
    names += [f["vocab_file"] for f in manifest["fields"] if f.get("vocab_file")]
    return [*names, MANIFEST_NAME]


def _reusable_remote(final: str, fingerprint: str, verify: bool) -> bool:
    """:func:`pipelines.data.prepare._reusable` for a dataset on a Beam file system."""
    try:
        manifest = _read_json(FileSystems.join(final, MANIFEST_NAME))
    except (OSError, ValueError):
        return False
    if manifest is None or manifest.get("fingerprint") != fingerprint:
        return False
    problems = []
    for split in manifest["splits"].values():
        for shard in split["shards"]:
            path = FileSystems.join(final, shard["file"])
            found = FileSystems.match([path])[0].metadata_list
            if not found:
                problems.append(f"{path}: missing")
            elif found[0].size_in_bytes != shard["bytes"]:
                problems.append(
                    f"{path}: {found[0].size_in_bytes} bytes, the manifest records {shard['bytes']}"
                )
            elif verify and shard_facts(path)["sha256"] != shard["sha256"]:
                problems.append(f"{path}: sha256 differs from the manifest's")
    for field in manifest["fields"]:
        if field.get("vocab_file") and not FileSystems.exists(
            FileSystems.join(final, field["vocab_file"])
        ):
            problems.append(f"{FileSystems.join(final, field['vocab_file'])}: missing")
    for problem in problems:
        logger.warning("Prepared data damaged, preparing it again: %s", problem)
    return not problems


def _remove_tree(path: str) -> None:
    """Removes a job's temporary directory on a Beam file system (a prefix on object stores);
    a failure is logged, not raised (the job's own outcome is what the caller reports)."""
    from apache_beam.io.filesystem import BeamIOError

    try:
        matched = FileSystems.match([FileSystems.join(path, "*")])[0].metadata_list
        if matched:
            FileSystems.delete([m.path for m in matched])
        if FileSystems.exists(path):
            FileSystems.delete([path])
    except (BeamIOError, OSError) as error:
        logger.warning("Could not remove %s (remove it by hand): %s", path, error)


def _publish_remote(tmp: str, final: str, manifest: dict) -> None:
    """Moves the dataset from ``tmp`` to ``final`` on a file system without directory
    renames: the previous dataset's manifest goes first (it no longer looks prepared), then its
    files, then the new files move in, ``manifest.json`` last."""
    old_manifest_path = FileSystems.join(final, MANIFEST_NAME)
    old = _read_json(old_manifest_path)
    if old is not None:
        FileSystems.delete([old_manifest_path])
        stale = [FileSystems.join(final, n) for n in _dataset_files(old)[:-1]]
        stale = [p for p in stale if FileSystems.exists(p)]
        if stale:
            FileSystems.delete(stale)
    names = _dataset_files(manifest)
    FileSystems.rename(
        [FileSystems.join(tmp, n) for n in names[:-1]],
        [FileSystems.join(final, n) for n in names[:-1]],
    )
    FileSystems.rename([FileSystems.join(tmp, MANIFEST_NAME)], [old_manifest_path])
