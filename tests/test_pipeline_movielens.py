"""MovielensLatest_x1 (ML-tag) and ML-1M on tiny files in their published formats."""

from __future__ import annotations

import numpy as np

from pipelines.data import load_manifest
from pipelines.data.prepare import hash_split, prepare
from tests.pipeline_fixtures import read_split, vocab_ids, write_text

# (label, user, item, tag) as BARS writes them: libFM feature indices.
ML_TAG = {
    "train": [
        (1, 0, 100, 900),
        (0, 0, 101, 901),
        (0, 1, 100, 900),
        (1, 1, 102, 902),
        (1, 2, 100, 900),
        (0, 0, 100, 903),
        (1, 1, 101, 900),
    ],
    "valid": [(1, 0, 100, 900), (0, 5, 101, 999), (1, 2, 102, 901)],
    "test": [(0, 1, 103, 900), (1, 0, 100, 902)],
}


def _write_ml_tag_csv(root):
    for split, rows in ML_TAG.items():
        lines = ["label,user_id,item_id,tag_id"] + [",".join(map(str, r)) for r in rows]
        write_text(root / f"{split}.csv", "\r\n".join(lines) + "\r\n")


def test_movielenslatest_bars_csv(tmp_path):
    _write_ml_tag_csv(tmp_path / "raw")
    data_dir = prepare("movielenslatest", str(tmp_path / "raw"), str(tmp_path / "out"))
    manifest = load_manifest(data_dir)
    assert manifest.group_key == "user_id"
    assert manifest.field_names == ["user_id", "item_id", "tag_id"]
    assert [
        (manifest.splits[s].rows, manifest.splits[s].positives) for s in ("train", "valid", "test")
    ] == [
        (7, 4),
        (3, 2),
        (2, 1),
    ]
    # Train counts: user 0 x3, 1 x3, 2 x1; item 100 x4, 101 x2, 102 x1; tag 900 x4, others x1.
    assert manifest.vocabulary("user_id") == ["0", "1"]
    assert manifest.vocabulary("item_id") == ["100", "101"]
    assert manifest.vocabulary("tag_id") == ["900"]
    assert manifest.vocab_sizes == {"user_id": 3, "item_id": 3, "tag_id": 2}
    valid = read_split(data_dir, "valid")
    assert valid["user_id"].tolist() == [1, 0, 0]  # "0" -> 1, "5" unseen -> 0, "2" rare -> 0
    assert valid["item_id"].tolist() == [1, 2, 0]
    assert valid["tag_id"].tolist() == [1, 0, 0]
    assert valid["label"].tolist() == [1, 0, 1]


def test_movielenslatest_nfm_libfm_equals_bars_csv(tmp_path):
    _write_ml_tag_csv(tmp_path / "csv")
    names = {"train": "train", "valid": "validation", "test": "test"}
    for split, rows in ML_TAG.items():
        lines = [f"{'1' if y else '-1'} {u}:1 {i}:1 {t}:1" for y, u, i, t in rows]
        write_text(tmp_path / "libfm" / f"ml-tag.{names[split]}.libfm", "\n".join(lines) + "\n")
    a = prepare("movielenslatest", str(tmp_path / "csv"), str(tmp_path / "a"))
    b = prepare("movielenslatest", str(tmp_path / "libfm"), str(tmp_path / "b"))
    for split in ("train", "valid", "test"):
        ra, rb = read_split(a, split), read_split(b, split)
        for key in ("user_id", "item_id", "tag_id", "label"):
            np.testing.assert_array_equal(ra[key], rb[key])


USERS = ["1::F::1::10::48067", "2::M::56::16::70072", "3::M::25::15::55117", "4::M::45::7::02460"]
MOVIES = [
    "1::Toy Story (1995)::Animation|Children's|Comedy",
    "2::Jumanji (1995)::Adventure",
    "3::Café Society (1995)::Drama",
]


def _ratings(n: int) -> list[tuple[int, int, int]]:
    rng = np.random.default_rng(0)
    return [
        (int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.integers(1, 6)))
        for _ in range(n)
    ]


def test_ml_1m_original_files(tmp_path):
    ratings = _ratings(200)
    raw = tmp_path / "ml-1m"
    write_text(
        raw / "ratings.dat",
        "".join(f"{u}::{m}::{r}::97830{i:04d}\n" for i, (u, m, r) in enumerate(ratings)),
    )
    write_text(raw / "users.dat", "\n".join(USERS) + "\n")
    write_text(raw / "movies.dat", "\n".join(MOVIES) + "\n", encoding="latin-1")
    data_dir = prepare("ml-1m", str(raw), str(tmp_path / "out"))
    manifest = load_manifest(data_dir)
    assert manifest.field_names == ["UserID", "Gender", "Age", "Occupation", "MovieID"]
    assert manifest.group_key == "UserID"
    splits = hash_split(np.arange(1, 201), 2023)
    labels = np.array([r > 3 for _, _, r in ratings], dtype=np.int64)
    for i, split in enumerate(("train", "valid", "test")):
        assert manifest.splits[split].rows == int((splits == i).sum())
        assert manifest.splits[split].positives == int(labels[splits == i].sum())
    assert 140 <= manifest.splits["train"].rows <= 180  # about 8:1:1
    assert manifest.vocabulary("Gender") == ["M", "F"]  # users 2-4 are M: more ratings
    assert sorted(manifest.vocabulary("UserID")) == ["1", "2", "3", "4"]
    assert manifest.vocab_sizes["Occupation"] == 5
    # Hand-encode the test rows (raw order) through the vocab files.
    users = {u.split("::")[0]: u.split("::")[1:4] for u in USERS}
    vocab = {f: vocab_ids(data_dir, f) for f in manifest.field_names}
    test = read_split(data_dir, "test")
    rows = [ratings[i] for i in np.flatnonzero(splits == 2)]
    for k, (u, m, r) in enumerate(rows):
        gender, age, occupation = users[str(u)]
        assert test["UserID"][k] == vocab["UserID"][str(u)]
        assert test["Gender"][k] == vocab["Gender"][gender]
        assert test["Age"][k] == vocab["Age"][age]
        assert test["Occupation"][k] == vocab["Occupation"][occupation]
        assert test["MovieID"][k] == vocab["MovieID"][str(m)]
        assert test["label"][k] == int(r > 3)
