"""KKBox_x1 on tiny BARS-layout CSV files: sequences split the same way when counting and encoding."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from pipelines.data import load_manifest
from pipelines.data.prepare import prepare
from pipelines.data.transforms import AGE_BUCKET
from tests.pipeline_fixtures import read_split, vocab_ids, write_text

HEADER = [
    "label", "msno", "song_id", "source_system_tab", "source_screen_name", "source_type", "city",
    "bd", "gender", "registered_via", "song_length", "genre_ids", "artist_name", "composer",
    "isrc", "language",
]  # fmt: skip


def _row(label, msno, song, genres, artist, isrc, bd, gender="male", tab="my library"):
    return {
        "label": label, "msno": msno, "song_id": song, "source_system_tab": tab,
        "source_screen_name": "Local playlist more", "source_type": "local-library", "city": "1",
        "bd": bd, "gender": gender, "registered_via": "7", "song_length": "206471",
        "genre_ids": genres, "artist_name": artist, "composer": "x", "isrc": isrc, "language": "52",
    }  # fmt: skip


TRAIN = [
    _row(1, "u1", "s1", "465", "Jay Chou", "TWK231600407", "25"),
    _row(0, "u1", "s2", "465|958", "Jay Chou|Various Artists", "TWA530887303", "0"),
    _row(1, "u2", "s1", "958", "Various Artists", "GBAYE0601498", "", gender=""),
    _row(0, "u2", "s3", "465|1609|958|2022", "Eason Chan, Jay Chou", "TWK231600407", "61"),
    _row(1, "u3", "s1", "958|465", "Various Artists|Jay Chou", "", "100"),
    _row(0, "u1", "s3", "", "Eason Chan, Jay Chou", "USUM71210010", "10"),
]
VALID = [
    _row(1, "u1", "s1", "465|999", "Jay Chou|Unknown Band", "TWK231600407", "11"),
    _row(0, "u9", "s9", "", "", "", "abc"),  # non-numeric age: skipped
]
TEST = [_row(0, "u2", "s2", "958|465|958|465", "Various Artists", "JPXX01", "95")]


def _csv(rows) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HEADER, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


@pytest.fixture()
def kkbox(tmp_path):
    raw = tmp_path / "raw"
    write_text(raw / "train.csv", _csv(TRAIN))
    write_text(raw / "valid.csv.gz", _csv(VALID))
    write_text(raw / "test.csv", _csv(TEST))
    return prepare("kkbox", str(raw), str(tmp_path / "out"), max_bad_fraction=0.5)


def test_bucketize_age_follows_the_reference():
    values = np.array([0, 1, 10, 11, 20, 25, 60, 61, 95, 96, np.nan])
    got = AGE_BUCKET.apply(values)
    np.testing.assert_array_equal(got, [np.nan, 1, 1, 2, 2, 3, 6, 7, 7, np.nan, np.nan])


def test_kkbox_fields_splits_and_vocabularies(kkbox):
    manifest = load_manifest(kkbox)
    assert manifest.group_key == "msno"
    assert manifest.field_names[-4:] == ["genre_ids", "artist_name", "isrc", "bd"]
    assert manifest.sequence_fields == {"genre_ids": 3, "artist_name": 3}
    assert [manifest.splits[s].rows for s in ("train", "valid", "test")] == [6, 1, 1]
    assert manifest.raw["malformed"]["valid"]["valid.csv.gz"] == {"non_numeric_integer": 1}
    # Tokens split on "|" when counting: 465 x5, 958 x5 -> both kept; 1609, 2022 x1 -> dropped.
    assert manifest.vocabulary("genre_ids") == ["465", "958"]
    # "Eason Chan, Jay Chou" (quoted, with a comma) is one token, counted twice.
    assert manifest.vocabulary("artist_name") == [
        "Jay Chou",
        "Various Artists",
        "Eason Chan, Jay Chou",
    ]
    assert manifest.field("genre_ids").vocab_size == 2 + 2  # padding + OOV
    assert manifest.field("genre_ids").kind == "sequence"
    assert manifest.vocabulary("isrc") == ["TW"]  # first two characters: TW x3
    assert manifest.vocabulary("bd") == []  # every bucket appears once
    assert manifest.vocabulary("msno") == ["u1", "u2"]
    assert manifest.vocabulary("gender") == ["male"]


def test_kkbox_sequence_ids_padding_and_oov(kkbox):
    genre = vocab_ids(kkbox, "genre_ids")
    artist = vocab_ids(kkbox, "artist_name")
    assert genre == {"465": 2, "958": 3} and artist["Jay Chou"] == 2
    valid = read_split(kkbox, "valid")
    assert valid["genre_ids"].tolist() == [[2, 1, 0]]  # 465, 999 unseen -> OOV 1, padding 0
    assert valid["artist_name"].tolist() == [[2, 1, 0]]  # Jay Chou, Unknown Band -> OOV
    assert valid["isrc"].tolist() == [1] and valid["msno"].tolist() == [1]
    test = read_split(kkbox, "test")
    assert test["genre_ids"].tolist() == [[3, 2, 3]]  # first max_len=3 tokens kept
    assert test["artist_name"].tolist() == [[3, 0, 0]]
    assert test["isrc"].tolist() == [0]  # "JP" unseen
    assert test["gender"].tolist() == [1]
    train = read_split(kkbox, "train")
    assert train["genre_ids"].shape == (6, 3)
    assert sorted(train["artist_name"].tolist()) == sorted(
        [[2, 0, 0], [2, 3, 0], [3, 0, 0], [4, 0, 0], [3, 2, 0], [4, 0, 0]]
    )
