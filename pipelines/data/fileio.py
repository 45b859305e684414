"""File access through TensorFlow's file system layer (local paths, ``gs://`` and any registered
scheme), plus line-block reading of plain or gzip text files.

Reading goes through ``tf.io.gfile.GFile`` in large binary blocks (``GFile.readline`` is a
Python loop, far too slow for 45 M rows), and lines are split here.
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import io
import logging
import os
import posixpath
import shutil
import signal
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import tensorflow as tf

from pipelines.data.errors import DataError

log = logging.getLogger(__name__)

BLOCK_BYTES = 16 << 20
HEAD_BYTES = 1 << 20


def join(base: str, *parts: str) -> str:
    """Joins path components for local paths and URIs alike."""
    if "://" in base:
        return posixpath.join(base, *parts)
    return os.path.join(base, *parts)


def basename(path: str) -> str:
    return posixpath.basename(path.rstrip("/").replace("\\", "/"))


def exists(path: str) -> bool:
    return tf.io.gfile.exists(path)


def isdir(path: str) -> bool:
    return tf.io.gfile.isdir(path)


def listdir(path: str) -> list[str]:
    return sorted(name.rstrip("/") for name in tf.io.gfile.listdir(path))


def glob_one(directory: str, patterns: list[str], what: str) -> str:
    """Returns the one file in ``directory`` matching any of ``patterns``.

    Raises:
        DataError: when none or several match; the message lists what was expected and found.
    """
    names = listdir(directory)
    hits = sorted({n for n in names for p in patterns if fnmatch.fnmatchcase(n, p)})
    if len(hits) != 1:
        found = ", ".join(names[:20]) or "nothing"
        problem = "no file" if not hits else f"{len(hits)} files ({', '.join(hits)})"
        raise DataError(
            f"{directory}: expected exactly one {what} matching {' or '.join(patterns)}, "
            f"found {problem}. Directory holds: {found}"
        )
    return join(directory, hits[0])


def _open_binary(path: str):
    raw = tf.io.gfile.GFile(path, "rb")
    if path.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    return raw


def read_full(f, path: str, size: int) -> bytes:
    """Up to ``size`` bytes of ``f``, fewer only at the end (a remote stream may return short
    reads; block boundaries must not depend on them). A broken gzip stream is named by its
    file."""
    parts, left = [], size
    try:
        while left > 0:
            data = f.read(left)
            if not data:
                break
            parts.append(data)
            left -= len(data)
    except (EOFError, OSError, zlib.error) as error:
        if not path.endswith(".gz"):
            raise
        what = "truncated gzip file" if isinstance(error, EOFError) else "not a valid gzip file"
        raise DataError(f"{path}: {what} ({error})") from None
    return b"".join(parts)


def line_spans(f, path: str, block_bytes: int) -> Iterator[tuple[int, int, bytes]]:
    """``(first line number, byte offset, block bytes)`` of an open binary text stream, cut
    after the last line end within each ``block_bytes`` read (the block bytes exclude that
    line end; a last line without one is a block of its own). The one cutting rule of both
    :func:`iter_line_blocks` and the Beam runner's work units.

    Raises:
        DataError: the file holds no bytes, or its gzip stream is broken.
    """
    line_no, offset, carry, seen = 1, 0, b"", False
    while True:
        data = read_full(f, path, block_bytes)
        if not data:
            break
        seen = True
        data = carry + data
        cut = data.rfind(b"\n")
        if cut < 0:
            carry = data
            continue
        carry = data[cut + 1 :]
        yield line_no, offset, data[:cut]
        line_no += data.count(b"\n", 0, cut) + 1
        offset += cut + 1
    if carry.endswith(b"\r"):
        carry = carry[:-1]
    if carry:
        yield line_no, offset, carry
    if not seen:
        raise DataError(f"{path}: file is empty")


def iter_line_blocks(
    path: str, block_bytes: int = BLOCK_BYTES
) -> Iterator[tuple[int, list[bytes]]]:
    """Yields ``(first_line_number, lines)`` blocks of a text file, ``.gz`` decompressed.

    Line numbers are 1-based. Line terminators (LF or CRLF) are removed; a final line without a
    terminator is kept.

    Raises:
        DataError: if the file does not exist or holds no bytes.
    """
    if not exists(path):
        raise DataError(f"{path}: file not found")
    with _open_binary(path) as f:
        for line_no, _, data in line_spans(f, path, block_bytes):
            lines = data.split(b"\n")
            if b"\r" in data:
                lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]
            yield line_no, lines


def file_fingerprint(path: str) -> dict:
    """Cheap identity of a raw file: size, modification time and sha256 of its first MiB.

    Hashing whole files would cost a third pass over 11 GB of Criteo; size + mtime + head catch
    replaced, appended and edited files in practice.
    """
    stat = tf.io.gfile.stat(path)
    with tf.io.gfile.GFile(path, "rb") as f:
        head = hashlib.sha256(f.read(HEAD_BYTES)).hexdigest()
    return {
        "path": path,
        "bytes": int(stat.length),
        "mtime_ns": int(stat.mtime_nsec),
        "head_sha256": head,
    }


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as f:
        while chunk := f.read(BLOCK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def open_write_binary(path: str, compress: bool):
    """Opens ``path`` for binary writing; gzip with a fixed header (mtime 0, no name) so that
    identical content gives identical bytes."""
    raw = tf.io.gfile.GFile(path, "wb")
    if compress:
        return _GzipOwner(raw)
    return raw


class _GzipOwner(io.RawIOBase):
    """A gzip stream that also closes the underlying file."""

    def __init__(self, raw):
        self._raw = raw
        self._gz = gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0, compresslevel=6)

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        return self._gz.write(data)

    def close(self) -> None:
        if not self.closed:
            self._gz.close()
            self._raw.close()
        super().close()


# -- The one atomic writer ---------------------------------------------------------------------
# Every file that a rerun or a reader takes as complete (run files, checkpoints, search state,
# generated data, experiment caches) is written through these helpers: to a temporary name in
# the same directory, then renamed into place, so a killed process leaves either the old file
# or the new one, never a truncated one. Local paths use os.replace (atomic on POSIX); URIs use
# TensorFlow's file systems, whose rename is atomic where the store offers it.


def temp_path(path: str | os.PathLike) -> str:
    """The temporary name :func:`atomic_output` writes before renaming to ``path``: hidden, in
    the same directory, tagged with this process id, and ending in ``path``'s own name so that
    writers that pick a format by suffix (``.weights.h5``, ``.gz``) still do."""
    path = os.fspath(path)
    head, name = path.rsplit("/", 1) if "/" in path else ("", path)
    tmp = f".tmp-{os.getpid()}-{name}"
    return f"{head}/{tmp}" if head else tmp


# Fault injection, for tests/test_fault_injection.py: with TF4CTR_FAULT_KILL=before:N (after:N)
# the process kills itself with SIGKILL just before (after) its N-th commit, the rename that
# makes an output visible; with TF4CTR_FAULT_LOG=path it appends one line per commit there.
# Every commit of every command goes through _commit, so a test can stop a command at each one.
FAULT_KILL_ENV = "TF4CTR_FAULT_KILL"
FAULT_LOG_ENV = "TF4CTR_FAULT_LOG"
_commits = 0


def _fault_point(when: str, dst: str) -> None:
    spec = os.environ.get(FAULT_KILL_ENV)
    if spec and spec == f"{when}:{_commits}":
        os.kill(os.getpid(), signal.SIGKILL)


def _commit(src: str, dst: str) -> None:
    """Renames ``src`` (complete) to ``dst``: the one place outputs become visible."""
    global _commits
    _commits += 1
    log_path = os.environ.get(FAULT_LOG_ENV)
    if log_path:
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(f"{_commits}\t{dst}\n")
    _fault_point("before", dst)
    if "://" in dst:
        tf.io.gfile.rename(src, dst, overwrite=True)
    else:
        os.replace(src, dst)
    _fault_point("after", dst)


def _remove(path: str) -> None:
    try:
        if "://" in path:
            tf.io.gfile.remove(path)
        else:
            os.remove(path)
    except (OSError, tf.errors.NotFoundError):
        pass


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[str]:
    """Yields a temporary path to write; renames it to ``path`` when the block completes, and
    removes it if the block raises.

    Example::

        with atomic_output(path) as tmp:
            model.save(tmp)
    """
    final = os.fspath(path)
    tmp = temp_path(final)
    try:
        yield tmp
        _commit(tmp, final)
    except BaseException:
        _remove(tmp)
        raise


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Writes ``data`` (text or bytes) to ``path`` through :func:`atomic_output`; a local
    path with Python's own file I/O (a full disk raises ``OSError`` naming the path), a URI
    through TensorFlow's file systems."""
    mode = "wb" if isinstance(data, bytes) else "w"
    with atomic_output(path) as tmp:
        if "://" in tmp:
            with tf.io.gfile.GFile(tmp, mode) as f:
                f.write(data)
        else:
            with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
                f.write(data)


def remove_stale_directories(final: Path) -> None:
    """Cleans up after a killed :func:`atomic_directory` (those of live processes are left
    alone): removes its ``<final>.tmp-<pid>`` directories, and puts back the previous
    ``<final>.old-<pid>`` when the kill came between retiring it and renaming the new one."""
    for path in final.parent.glob(f"{final.name}.tmp-*"):
        if _dead(path.name.rsplit("-", 1)[1]):
            log.info("Removing %s left by a killed run", path)
            shutil.rmtree(path, ignore_errors=True)
    for path in final.parent.glob(f"{final.name}.old-*"):
        if _dead(path.name.rsplit("-", 1)[1]):
            if final.exists():
                shutil.rmtree(path, ignore_errors=True)
            else:
                log.info("Restoring %s, which a killed run was replacing", final)
                path.rename(final)


def _dead(pid_text: str) -> bool:
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except (ValueError, PermissionError, OverflowError):
        return False
    return False


def remove_stale_temporaries(directory: str | os.PathLike) -> list[str]:
    """Removes what killed processes left in ``directory``: :func:`atomic_output`'s
    ``.tmp-<pid>-<name>`` files and :func:`atomic_directory`'s ``<name>.tmp-<pid>``
    directories whose process is gone (a live process's are left alone), and puts back a
    directory it was replacing (``<name>.old-<pid>``, see :func:`remove_stale_directories`).
    Returns the names removed."""
    directory = Path(directory)
    removed = []
    if not directory.is_dir():
        return removed
    for path in sorted(directory.iterdir()):
        name = path.name
        if ".old-" in name and path.is_dir():
            remove_stale_directories(directory / name.rsplit(".old-", 1)[0])
            continue
        if name.startswith(".tmp-"):
            pid = name[len(".tmp-") :].split("-", 1)[0]
        elif ".tmp-" in name:
            pid = name.rsplit(".tmp-", 1)[1]
        else:
            continue
        if _dead(pid):
            log.info("Removing %s left by a killed run", path)
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(name)
    return removed


@contextmanager
def atomic_directory(final: str | os.PathLike, *, replace: bool = False) -> Iterator[Path]:
    """Yields an empty local directory ``<final>.tmp-<pid>`` to fill; when the block completes
    it is renamed to ``final``, so ``final`` appears whole or not at all. With ``replace`` an
    existing ``final`` is swapped out and then removed; without, an existing ``final`` raises
    FileExistsError. On failure the temporary directory is removed; directories that killed
    processes left are removed first."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_directories(final)
    tmp = final.parent / f"{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        old = final.parent / f"{final.name}.old-{os.getpid()}"
        if final.exists():
            if not replace:
                raise FileExistsError(f"{final} exists.")
            _commit(str(final), str(old))  # retired; put back if killed before the next
        _commit(str(tmp), str(final))
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
