"""The ``movielens`` reader: the original MovieLens-1M ``::``-separated files.

``ratings.dat`` (UserID::MovieID::Rating::Timestamp) joined with ``users.dat``
(UserID::Gender::Age::Occupation::Zip-code) on UserID, so a schema can use any of the columns
UserID, MovieID, Rating, Timestamp, Gender, Age, Occupation and Zip. A rating whose user is not
in ``users.dat`` is a malformed row (``unknown_user``). ``movies.dat`` carries no field the
reference uses and is not read. The files are decoded as Latin-1, which ASCII files also are.

Accepted raw input: a directory with ``ratings.dat`` and ``users.dat`` (optionally ``.gz``).
``users.dat`` is a small dimension table read whole; a malformed line there fails at once.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from pipelines.data import fileio
from pipelines.data.datasets.base import (
    UNKNOWN_USER,
    Block,
    RawFile,
    bad_details,
    frame_from_lines,
    split_by_count,
)
from pipelines.data.errors import DataError

RATINGS = ("UserID", "MovieID", "Rating", "Timestamp")
USERS = ("UserID", "Gender", "Age", "Occupation", "Zip")
EXPECTED = "ratings.dat and users.dat (MovieLens-1M, '::'-separated, optionally .gz)"


def _double_colon_lines(lines: list[bytes]) -> list[bytes]:
    # '::' -> tab so the pandas C parser (single-character separators only) can read the rows.
    return [ln.replace(b"::", b"\t") for ln in lines]


class MovielensReader:
    """MovieLens-1M ratings joined with users."""

    def __init__(self, schema) -> None:
        self.schema = schema
        self._users_path: str | None = None
        self._users: pd.DataFrame | None = None

    def resolve(self, raw: str) -> list[RawFile]:
        if not fileio.exists(raw) or not fileio.isdir(raw):
            raise DataError(f"{raw}: expected a directory with {EXPECTED}")
        ratings = fileio.glob_one(raw, ["ratings.dat", "ratings.dat.gz"], "ratings file")
        self._users_path = fileio.glob_one(raw, ["users.dat", "users.dat.gz"], "users file")
        return [RawFile(ratings, None)]

    def side_files(self) -> list[str]:
        return [self._users_path] if self._users_path else []

    def users(self) -> pd.DataFrame:
        if self._users is None:
            frames = []
            for first, lines in fileio.iter_line_blocks(self._users_path):
                good, _, bad = split_by_count(
                    _double_colon_lines(lines), first, b"\t", len(USERS), "'::'-separated"
                )
                if bad:
                    line, _, detail = bad[0]
                    raise DataError(f"{fileio.basename(self._users_path)} line {line}: {detail}")
                frames.append(frame_from_lines(good, "\t", list(USERS), "latin-1"))
            users = pd.concat(frames, ignore_index=True)
            self._users = users.drop_duplicates("UserID").set_index("UserID")
        return self._users

    def blocks(
        self, file: RawFile, block_bytes: int, *, required: list[str], **_
    ) -> Iterator[Block]:
        users = self.users()
        for first, lines in fileio.iter_line_blocks(file.path, block_bytes):
            good, numbers, bad = split_by_count(
                _double_colon_lines(lines), first, b"\t", len(RATINGS), "'::'-separated"
            )
            frame = frame_from_lines(good, "\t", list(RATINGS), "latin-1")
            joined = users.reindex(frame["UserID"].str.strip()).reset_index(drop=True)
            absent = joined["Gender"].isna().to_numpy()
            frame = pd.concat([frame.reset_index(drop=True), joined], axis=1)
            block = Block(frame, numbers, None, bad)
            block.reject(
                absent,
                UNKNOWN_USER,
                bad_details(block.frame, absent, "UserID", "not in users.dat:"),
            )
            missing = [c for c in required if c not in block.frame.columns]
            if missing:
                raise DataError(
                    f"{file.path}: no column {missing}; the movielens reader has "
                    f"{[*RATINGS, *USERS[1:]]}"
                )
            block.frame = block.frame[required]
            yield block
