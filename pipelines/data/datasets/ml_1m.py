"""ML-1M: the original MovieLens-1M files, ``::``-separated.

``ratings.dat`` (UserID::MovieID::Rating::Timestamp) joined with ``users.dat``
(UserID::Gender::Age::Occupation::Zip-code). Fields UserID, Gender, Age, Occupation, MovieID (the
reference's five, all categorical); label = rating > 3; seeded 8:1:1 split by a hash of the row
index; min count 2; gAUC group ``UserID``. ``movies.dat`` (Latin-1) carries no field the
reference uses, so it is not read; the files are decoded as Latin-1, which ASCII files also are.

Accepted raw input: a directory with ``ratings.dat`` and ``users.dat`` (optionally ``.gz``).
``users.dat`` is a small dimension table read whole; a malformed line there fails at once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.data import fileio
from pipelines.data.datasets.base import (
    NON_NUMERIC,
    UNKNOWN_LABEL,
    UNKNOWN_USER,
    Block,
    DatasetSpec,
    FieldSpec,
    RawFile,
    bad_details,
    check_split_dir,
    frame_from_lines,
    integers_from,
    split_by_count,
)
from pipelines.data.errors import DataError

FIELDS = ("UserID", "Gender", "Age", "Occupation", "MovieID")
EXPECTED = "ratings.dat and users.dat (MovieLens-1M, '::'-separated, optionally .gz)"
RATING_LABELS = {"1": 0, "2": 0, "3": 0, "4": 1, "5": 1}


def _double_colon_lines(lines: list[bytes]) -> list[bytes]:
    # '::' -> tab so the pandas C parser (single-character separators only) can read the rows.
    return [ln.replace(b"::", b"\t") for ln in lines]


class ML1MSpec(DatasetSpec):
    """ML-1M ratings joined with users; label rating > 3; group ``UserID``."""

    name = "ml-1m"
    fields = tuple(FieldSpec(n) for n in FIELDS)
    group_key = "UserID"
    default_min_count = 2
    seeded_split = True
    default_seed = 2023

    def resolve(self, raw: str) -> list[RawFile]:
        check_split_dir(raw, EXPECTED)
        ratings = fileio.glob_one(raw, ["ratings.dat", "ratings.dat.gz"], "ratings file")
        self._users_path = fileio.glob_one(raw, ["users.dat", "users.dat.gz"], "users file")
        return [RawFile(ratings, None)]

    def side_files(self) -> list[str]:
        return [self._users_path]

    def load_context(self, files: list[RawFile]) -> pd.DataFrame:
        path = self._users_path
        frames = []
        for first, lines in fileio.iter_line_blocks(path):
            lines = _double_colon_lines(lines)
            good, _, bad = split_by_count(lines, first, b"\t", 5, "'::'-separated")
            if bad:
                line, _, detail = bad[0]
                raise DataError(f"{fileio.basename(path)} line {line}: {detail}")
            frames.append(
                frame_from_lines(
                    good, "\t", ["UserID", "Gender", "Age", "Occupation", "Zip"], "latin-1"
                )
            )
        users = pd.concat(frames, ignore_index=True)
        return users.drop(columns="Zip").drop_duplicates("UserID").set_index("UserID")

    def parse(self, lines, first_line, file, state, context: pd.DataFrame) -> Block:
        good, numbers, bad = split_by_count(
            _double_colon_lines(lines), first_line, b"\t", 4, "'::'-separated"
        )
        frame = frame_from_lines(
            good, "\t", ["UserID", "MovieID", "Rating", "Timestamp"], "latin-1"
        )
        mapped = frame["Rating"].map(RATING_LABELS)
        unknown = mapped.isna().to_numpy()
        details = bad_details(frame, unknown, "Rating", "expected 1-5, got")
        block = Block(
            frame[["UserID", "MovieID"]], numbers, mapped.fillna(0).to_numpy(dtype=np.int8), bad
        )
        block.reject(unknown, UNKNOWN_LABEL, details)
        for name in ("UserID", "MovieID"):
            _, missing, bad_mask = integers_from(block.frame[name])
            bad_mask |= missing
            block.reject(
                bad_mask,
                NON_NUMERIC,
                bad_details(block.frame, bad_mask, name, "expected an integer id, got"),
            )
        users = context.reindex(block.frame["UserID"])
        absent = users["Gender"].isna().to_numpy()
        users = users.reset_index(drop=True)
        block.frame = pd.concat([block.frame.reset_index(drop=True), users], axis=1)
        block.reject(
            absent, UNKNOWN_USER, bad_details(block.frame, absent, "UserID", "not in users.dat:")
        )
        block.frame = block.frame[list(FIELDS)]
        return block
