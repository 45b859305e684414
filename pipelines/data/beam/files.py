"""Raw input through Beam's file systems: find, identify and read raw files in work units.

Workers read raw bytes with :class:`apache_beam.io.filesystems.FileSystems`, so raw input may
live on any file system Beam has (local paths, ``gs://``, ``s3://``, ``hdfs://``, ...; the
remote ones come with Beam's extras: ``apache-beam[gcp]``, ``[aws]``, ``hdfs``). Parsing is the
in-process code: :meth:`SchemaSpec.blocks` reads a small local file that holds one block's
lines (a *staged* block), so both paths parse, reject and number rows the same way.

Work units. A plain (uncompressed) text file is cut into the same blocks as
:func:`pipelines.data.fileio.iter_line_blocks` cuts it in process (read ``block_bytes``, cut at
the last newline, the rest carried into the next block): one scan of the file finds each
block's byte range and first line number, and each block is one unit that any worker reads by
seeking to it. A gzip file cannot be split: it is one unit, read block by block by one worker
(more files, or uncompressed ones, give more parallelism). Parquet and TFRecord files are one
unit each, read by the spec's own readers (a remote file is first copied to the worker's disk).
Block indices and line numbers are the in-process ones, so the hashed split, the train
permutation and the malformed-row report are identical.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from pipelines.data import fileio
from pipelines.data.datasets import SchemaSpec
from pipelines.data.datasets.base import SPLITS, Block, RawFile
from pipelines.data.datasets.formats import EXTENSIONS
from pipelines.data.errors import DataError

# Formats whose rows are text lines (parsed from staged blocks); the others are record files.
RECORD_FORMATS = ("parquet", "tfrecord")


@dataclass(frozen=True)
class Unit:
    """One piece of work: a block of a plain text file, or a whole file.

    Args:
        file_index: the file's position in the job's file list.
        block_index: the index of the (first) block, as the in-process reader numbers blocks.
        start: byte offset of the block; ``None`` for a whole file, read block by block.
        stop: byte offset just past the block's last line (without its line terminator).
        first_line: 1-based line number of the block's first line.
        head: the file's header line, for a block after the first of a file with a header.
    """

    file_index: int
    block_index: int = 0
    start: int | None = None
    stop: int | None = None
    first_line: int = 1
    head: bytes = b""


def is_uri(path: str) -> bool:
    return "://" in str(path)


def tensorflow_reads(path: str) -> bool:
    """Whether TensorFlow's file layer (the in-process path's) knows ``path``'s file system:
    local paths, ``gs://``; not ``s3://`` or ``hdfs://`` without extra plugins."""
    if not is_uri(path):
        return True
    import tensorflow as tf

    try:
        tf.io.gfile.exists(path)
    except (tf.errors.UnimplementedError, tf.errors.InvalidArgumentError):
        return False
    return True


def resolve(spec: SchemaSpec, raw: str) -> list[RawFile]:
    """The raw files of ``raw`` and their splits: the spec's own resolution where TensorFlow
    reads the file system (so both paths see the same files), else through Beam's file
    systems: a file, a glob, or a directory (per-split files by the schema's ``splits.files``
    patterns, else the format's files, split by hash).

    Raises:
        DataError: no such file, no file matching, or a directory without the expected files.
    """
    if tensorflow_reads(raw):
        return spec.resolve(raw)
    from apache_beam.io.filesystems import FileSystems

    s = spec.schema
    if spec.named is not None and hasattr(spec.named, "resolve"):
        raise DataError(
            f"{raw}: the {s.format} reader needs a file system TensorFlow reads (local or "
            "gs://); copy the files there first"
        )
    if any(c in raw for c in "*?["):
        paths = sorted(m.path for m in FileSystems.match([raw])[0].metadata_list)
        if not paths:
            raise DataError(f"{raw}: no file matches; expected {spec.expected}")
        return [RawFile(p, None, stream=i) for i, p in enumerate(paths)]
    if FileSystems.exists(raw) and not raw.endswith("/"):
        return [RawFile(raw, None)]
    directory = raw.rstrip("/")
    listed = FileSystems.match([FileSystems.join(directory, "*")])[0].metadata_list
    names = sorted(fileio.basename(m.path) for m in listed)
    names = [n for n in names if not n.startswith(".")]
    if not names:
        raise DataError(f"{raw}: not found; expected {spec.expected}")
    if s.splits.files is not None:
        files = spec.split_files(directory, names, FileSystems.join)
        if files is not None:
            return files
    if s.splits.ratio is None:
        raise DataError(f"{raw}: expected {spec.expected}")
    ext = EXTENSIONS.get(s.format, ())
    paths = [FileSystems.join(directory, n) for n in names if n.endswith(ext)]
    if not paths:
        raise DataError(
            f"{raw}: no {s.format} file (ending in {', '.join(ext)}); "
            f"directory holds: {', '.join(names[:20])}"
        )
    return [RawFile(p, None, stream=i) for i, p in enumerate(paths)]


def identity(path: str) -> dict:
    """A raw file's identity for the fingerprint: :func:`fileio.file_fingerprint` where
    TensorFlow reads the file (so a Beam-prepared dataset and an in-process one of the same
    input share a fingerprint), else the same fields from Beam's file system metadata."""
    if tensorflow_reads(path):
        return fileio.file_fingerprint(path)
    from apache_beam.io.filesystems import FileSystems

    matched = FileSystems.match([path])[0].metadata_list
    if not matched:
        raise DataError(f"{path}: file not found")
    with _open(path, compressed=False) as f:
        head = hashlib.sha256(f.read(fileio.HEAD_BYTES)).hexdigest()
    return {
        "path": path,
        "bytes": int(matched[0].size_in_bytes),
        "mtime_ns": int(matched[0].last_updated_in_seconds * 1e9),
        "head_sha256": head,
    }


def _open(path: str, compressed: bool):
    """Opens ``path`` through Beam's file systems for reading; ``compressed``: a gzip stream,
    decompressed here (Python's gzip, as in process, also detects a truncated file)."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    raw = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    return gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw


def has_header(spec: SchemaSpec, path: str) -> bool:
    """Whether line 1 of a text file is a header (as the readers decide: CSV/TSV schemas with
    ``header``; libFM's BARS CSV conversion, a name holding ``.csv``)."""
    return spec.header_lines == 1 or (
        spec.schema.format == "libfm" and ".csv" in fileio.basename(path)
    )


def units(spec: SchemaSpec, file_index: int, file: RawFile, block_bytes: int) -> Iterator[Unit]:
    """The work units of one raw file (see the module docstring)."""
    if spec.schema.format in RECORD_FORMATS or file.path.endswith(".gz"):
        yield Unit(file_index)
        return
    header = has_header(spec, file.path)
    head = b""
    with _open(file.path, compressed=False) as f:
        for block_index, (first, offset, data) in enumerate(
            fileio.line_spans(f, file.path, block_bytes)
        ):
            if block_index == 0 and header:
                head = data.split(b"\n", 1)[0]
            yield Unit(
                file_index,
                block_index,
                offset,
                offset + len(data),
                first,
                head if block_index else b"",
            )


class BlockReader:
    """Reads the blocks of work units with a schema's spec, staging text blocks in a private
    local directory (removed by :meth:`close`).

    Args:
        spec: the dataset's spec.
        block_bytes: the job's block size.
    """

    def __init__(self, spec: SchemaSpec, block_bytes: int) -> None:
        self.spec = spec
        self.block_bytes = block_bytes
        self.directory = tempfile.mkdtemp(prefix="tf4ctr-beam-")

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def blocks(self, file: RawFile, unit: Unit) -> Iterator[tuple[int, Block]]:
        """``(block index, parsed block)`` of ``unit``, a unit of ``file``.

        Raises:
            DataError: as the in-process reader raises it, naming ``file``'s path.
        """
        if self.spec.schema.format in RECORD_FORMATS:
            yield from self._record_file(file)
        elif unit.start is None:
            with _open(file.path, compressed=file.path.endswith(".gz")) as f:
                head = b""
                spans = fileio.line_spans(f, file.path, self.block_bytes)
                for i, (first, _, data) in enumerate(spans):
                    if i == 0 and has_header(self.spec, file.path):
                        head = data.split(b"\n", 1)[0]
                    yield unit.block_index + i, self._lines(file, data, first, head if i else b"")
        else:
            with _open(file.path, compressed=False) as f:
                f.seek(unit.start)
                data = fileio.read_full(f, file.path, unit.stop - unit.start)
            yield unit.block_index, self._lines(file, data, unit.first_line, unit.head)

    def _lines(self, file: RawFile, data: bytes, first_line: int, head: bytes) -> Block:
        """Parses one block's lines (``first_line`` the first's number), after ``head``."""
        prefix = head + b"\n" if head else b""
        content = prefix + data + b"\n"  # a final terminator: the block stays one block
        staged = self._stage(file.path, content)
        shift = first_line - 1 - (1 if head else 0)
        blocks = list(self._parse(file, RawFile(staged, file.split, file.stream), len(content) + 1))
        if len(blocks) != 1:  # the staged file is read in one piece, so one block
            raise RuntimeError(f"{file.path} line {first_line}: staged block read as {len(blocks)}")
        block = blocks[0]
        if shift:
            block.line = block.line + shift
            block.bad = [(line + shift, reason, detail) for line, reason, detail in block.bad]
        return block

    def _record_file(self, file: RawFile) -> Iterator[tuple[int, Block]]:
        path = file.path
        if is_uri(path):  # the spec's readers read local files (and gs://): copy it here
            path = os.path.join(self.directory, fileio.basename(file.path))
            with _open(file.path, compressed=False) as src, open(path, "wb") as dst:
                shutil.copyfileobj(src, dst, length=fileio.BLOCK_BYTES)
        try:
            staged = RawFile(path, file.split, file.stream)
            yield from enumerate(self._parse(file, staged, self.block_bytes))
        finally:
            if path != file.path:
                os.remove(path)

    def _stage(self, path: str, content: bytes) -> str:
        # the original name without .gz (the staged bytes are plain); libFM reads ".csv" in it
        name = fileio.basename(path).removesuffix(".gz")
        staged = os.path.join(self.directory, name)
        with open(staged, "wb") as f:
            f.write(content)
        return staged

    def _parse(self, file: RawFile, staged: RawFile, block_bytes: int) -> Iterator[Block]:
        """The spec's blocks of ``staged``; errors name ``file``. The spec's check that a
        whole file holds rows is the job's (one block of a file may hold none)."""
        try:
            yield from self.spec.blocks(staged, block_bytes)
        except DataError as error:
            if not str(error).startswith(f"{staged.path}: no data rows"):
                message = str(error).replace(staged.path, file.path)
                raise DataError(message, report=error.report) from None
