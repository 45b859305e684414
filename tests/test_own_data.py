"""Training on your own data: a schema file, four raw formats, every field kind and transform,
prepare -> train -> tune -> export -> serve from the command lines, and serving parity."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import yaml

from pipelines.data import DataError, load_manifest
from pipelines.data.prepare import encode_file, prepare
from pipelines.data.schema import FIELD_KEYS, KINDS, TOP_KEYS, load_schema
from pipelines.data.transforms import LOG_SQUARED, TRANSFORMS, Transform

# A user's own transform, named in the schema as module:attribute: log_squared of the value
# rounded (half to even, in NumPy and TensorFlow alike) -- the step that once made serving
# differ from training when export knew only three transforms.
ROUNDED_LOG_SQUARED = Transform(
    "rounded_log_squared",
    "number",
    lambda x: LOG_SQUARED.numpy(np.round(x)),
    lambda x: LOG_SQUARED.tensorflow(tf.round(x)),
    "log_squared(round(v))",
)
NUMPY_ONLY = Transform("numpy_only", "number", np.sqrt, None, "no TensorFlow form")

SCHEMA = {
    "name": "clicks",
    "format": "csv",
    "header": True,
    "label": {"column": "clicked"},
    "group_key": "uid",
    "splits": {"ratio": [8, 1, 1], "seed": 7},
    "fields": [
        {"name": "uid", "kind": "categorical", "min_count": 2},
        {"name": "device", "transform": "lower"},
        {"name": "genres", "kind": "sequence", "separator": "|", "max_len": 3},
        {"name": "year", "kind": "numeric"},
        {"name": "hour", "kind": "numeric", "transform": "log1p", "normalize": "minmax"},
        {"name": "price", "kind": "numeric", "transform": "log_squared", "bucketize": True},
        {"name": "age", "kind": "numeric", "transform": "age_bucket", "bucketize": True},
        {"name": "ad_id", "kind": "categorical", "hash_buckets": 1000},
        {"name": "isrc", "transform": "isrc_country"},
        {"name": "code", "dtype": "int"},
        {
            "name": "price_rounded",
            "column": "price",
            "kind": "numeric",
            "transform": "tests.test_own_data:ROUNDED_LOG_SQUARED",
            "bucketize": True,
        },
    ],
}
STRINGS = ("uid", "device", "genres", "ad_id", "isrc")
NUMBERS = ("year", "hour", "price", "age")


def _rows(n: int = 600, seed: int = 0) -> list[dict]:
    """Rows with missing values in every column; numbers exact in float32 (tf.Example)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        missing = rng.random(10) < 0.08
        row = {
            "clicked": int(rng.random() < 0.3),
            "uid": "" if missing[0] else f"u{rng.integers(40)}",
            "device": "" if missing[1] else str(rng.choice(["iOS", "ios", "Android", "WEB"])),
            "genres": ""
            if missing[2]
            else "|".join(rng.choice(["pop", "rock", "jazz", "folk"], rng.integers(1, 5))),
            "year": math.nan if missing[3] else float(rng.integers(1990, 2024)),
            "hour": math.nan if missing[4] else float(rng.integers(0, 24)),
            "price": math.nan if missing[5] else float(rng.integers(0, 4000)) / 4,
            "age": math.nan if missing[6] else float(rng.integers(-3, 99)),
            "ad_id": "" if missing[7] else f"ad{rng.integers(5000)}",
            "isrc": "" if missing[8] else str(rng.choice(["USAB1", "GBXY2", "TWQQ3"])),
            "code": None if missing[9] else int(rng.integers(0, 30)),
        }
        # the label carries signal, so training moves
        row["clicked"] = int(row["device"].lower() == "ios" or row["clicked"])
        rows.append(row)
    return rows


def _text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


COLUMNS = ["clicked", *STRINGS, *NUMBERS, "code"]


def write_csv(path: Path, rows: list[dict], sep: str = ",") -> Path:
    lines = [sep.join(COLUMNS)] + [sep.join(_text(r[c]) for c in COLUMNS) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    frame = pd.DataFrame(rows)[COLUMNS]
    frame["code"] = frame["code"].astype("Int64")  # nulls: pyarrow int64 with a validity mask
    for c in STRINGS:
        frame[c] = frame[c].where(frame[c] != "", None)
    frame.to_parquet(path, index=False)
    return path


def write_tfrecord(path: Path, rows: list[dict]) -> Path:
    """``tf.train.Example`` records: a missing value is an absent feature; genres a bytes list."""
    options = tf.io.TFRecordOptions(compression_type="GZIP" if path.suffix == ".gz" else "")
    with tf.io.TFRecordWriter(str(path), options) as writer:
        for r in rows:
            feature = {
                "clicked": tf.train.Feature(int64_list=tf.train.Int64List(value=[r["clicked"]]))
            }
            for c in STRINGS:
                if r[c] == "":
                    continue
                values = r[c].split("|") if c == "genres" else [r[c]]
                feature[c] = tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[v.encode() for v in values])
                )
            for c in NUMBERS:
                if not math.isnan(r[c]):
                    feature[c] = tf.train.Feature(float_list=tf.train.FloatList(value=[r[c]]))
            if r["code"] is not None:
                feature["code"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[r["code"]]))
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())
    return path


def schema_file(tmp_path: Path, **changes) -> Path:
    data = json.loads(json.dumps(SCHEMA))
    data.update(changes)
    path = tmp_path / f"clicks-{data['format']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def split_rows(data_dir: Path) -> dict[str, list[tuple]]:
    """Every split's rows as reprs of ((label,), field values...), sorted."""
    from pipelines.data.reader import feature_spec

    manifest = load_manifest(data_dir)
    spec = feature_spec(manifest)
    out = {}
    for split in ("train", "valid", "test"):
        rows = []
        for record in tf.data.TFRecordDataset(manifest.shard_paths(split), "GZIP"):
            parsed = tf.io.parse_single_example(record, spec)
            fields = tuple(
                tuple(np.asarray(parsed[k], dtype=np.float64).reshape(-1).round(6).tolist())
                for k in manifest.field_names
            )
            rows.append(repr(((int(parsed["label"]),), *fields)))  # repr: NaN == NaN
        out[split] = sorted(rows)
    return out


@pytest.fixture(scope="module")
def raw_copies(tmp_path_factory):
    root = tmp_path_factory.mktemp("own-data")
    rows = _rows()
    return (
        root,
        rows,
        {
            "csv": write_csv(root / "clicks.csv", rows),
            "tsv": write_csv(root / "clicks.tsv", rows, "\t"),
            "parquet": write_parquet(root / "clicks.parquet", rows),
            "tfrecord": write_tfrecord(root / "clicks.tfrecord", rows),
            "tfrecord-gz": write_tfrecord(root / "clicks.tfrecord.gz", rows),
        },
    )


@pytest.fixture(scope="module")
def prepared(raw_copies):
    root, _, files = raw_copies
    out = {}
    for key, path in files.items():
        fmt = key.split("-")[0]
        schema = schema_file(root, format=fmt) if fmt != "csv" else schema_file(root)
        if fmt in ("parquet", "tfrecord"):
            data = yaml.safe_load(schema.read_text())
            data.pop("header")
            schema.write_text(yaml.safe_dump(data, sort_keys=False))
        out[key] = prepare(str(schema), str(path), root / f"prepared-{key}")
    return out


def test_every_format_gives_the_same_vocabularies_statistics_and_ids(prepared):
    reference = load_manifest(prepared["csv"])
    want = split_rows(prepared["csv"])
    assert sum(len(v) for v in want.values()) == 600
    for key, data_dir in prepared.items():
        manifest = load_manifest(data_dir)
        for field in reference.fields:
            got = manifest.field(field.name)
            assert got.vocab_size == field.vocab_size, (key, field.name)
            assert manifest.vocabulary(field.name) == reference.vocabulary(field.name), key
            assert got.normalization == field.normalization, (key, field.name)
        assert {s: manifest.splits[s].rows for s in want} == {
            s: reference.splits[s].rows for s in want
        }
        assert split_rows(data_dir) == want, key


def test_field_values_follow_the_schema_by_hand(prepared, raw_copies):
    """Known answers for each kind on the CSV copy, from the raw rows themselves."""
    _, rows, _ = raw_copies
    manifest = load_manifest(prepared["csv"])
    assert [f.kind for f in manifest.fields] == [
        "categorical",
        "categorical",
        "sequence",
        "numeric",
        "numeric",
        "numeric-bucketed",
        "numeric-bucketed",
        "categorical",
        "categorical",
        "categorical",
        "numeric-bucketed",
    ]
    # lower: "iOS" and "ios" are one token; isrc_country: first two characters
    assert sorted(manifest.vocabulary("device")) == ["android", "ios", "web"]
    assert sorted(manifest.vocabulary("isrc")) == ["GB", "TW", "US"]
    # age_bucket: ages outside [1, 95] are missing, never a token
    assert sorted(manifest.vocabulary("age"), key=int) == ["1", "2", "3", "4", "5", "6", "7"]
    # hashed: no vocabulary file, 1000 buckets + the missing id
    ad = manifest.field("ad_id")
    assert ad.vocab_file is None and ad.vocab_size == 1001
    # dense: standard normalization from the train rows (seeded hash split, data row order)
    from pipelines.data.prepare import hash_split

    train = hash_split(np.arange(1, 601), 7, (8, 1, 1)) == 0
    years = np.array([r["year"] for r in rows])[train]
    years = years[~np.isnan(years)]
    norm = manifest.field("year").normalization
    assert norm["method"] == "standard" and norm["count"] == len(years)
    np.testing.assert_allclose([norm["shift"], norm["scale"]], [years.mean(), years.std()])
    hours = np.log1p(np.array([r["hour"] for r in rows])[train])
    hours = hours[~np.isnan(hours)]
    hnorm = manifest.field("hour").normalization
    np.testing.assert_allclose([hnorm["shift"], hnorm["scale"]], [hours.min(), np.ptp(hours)])
    # min_count 2 on uid: a value seen once in train is OOV
    assert manifest.raw["fields"][0]["min_count"] == 2


def test_encode_file_matches_what_prepare_wrote(prepared, raw_copies, tmp_path):
    """The offline encoder (preprocessing's pass 2) gives the prepared test split's rows."""
    root, rows, files = raw_copies
    columns, labels, bad = encode_file(prepared["csv"], str(files["csv"]))
    assert bad == [] and len(labels) == 600
    names = load_manifest(prepared["csv"]).field_names
    got = [
        (
            (int(labels[i]),),
            *(
                tuple(np.asarray(columns[f][i], dtype=np.float64).reshape(-1).round(6).tolist())
                for f in names
            ),
        )
        for i in range(600)
    ]
    want = [r for rows_ in split_rows(prepared["csv"]).values() for r in rows_]
    assert sorted(map(repr, got)) == sorted(want)


# ----------------------------------------------------------------------------- bad input


def test_unknown_keys_and_kinds_name_the_key_and_list_the_valid_ones(tmp_path):
    bad = dict(SCHEMA, feilds=[])
    with pytest.raises(
        DataError, match=r"unknown schema key\(s\) 'feilds'.*Valid keys: name, format"
    ):
        load_schema(bad)
    bad = json.loads(json.dumps(SCHEMA))
    bad["fields"][3]["kind"] = "numerc"
    with pytest.raises(
        DataError,
        match=r"field `year`: `kind: numerc` is not valid.*categorical, sequence, numeric",
    ):
        load_schema(bad)
    bad = json.loads(json.dumps(SCHEMA))
    bad["fields"][0]["bucket"] = 3
    with pytest.raises(DataError, match=r"unknown field key\(s\) 'bucket'"):
        load_schema(bad)
    bad = json.loads(json.dumps(SCHEMA))
    bad["fields"][1]["transform"] = "nope"
    from pipelines.data.datasets import get_spec

    with pytest.raises(DataError, match=r"Unknown transform `nope`. Registered: log_squared"):
        get_spec(bad)
    bad = json.loads(json.dumps(SCHEMA))
    bad["fields"][0]["dtype"] = "float"
    with pytest.raises(DataError, match=r"field `uid`: `dtype: float` is for numeric fields"):
        load_schema(bad)
    assert set(KINDS) == {"categorical", "sequence", "numeric"}
    assert "hash_buckets" in FIELD_KEYS and "splits" in TOP_KEYS


def test_a_declared_field_missing_from_the_data_names_field_and_file(tmp_path, raw_copies):
    _, rows, _ = raw_copies
    frame = pd.read_csv(write_csv(tmp_path / "x.csv", rows[:50]), dtype=str, keep_default_na=False)
    frame.drop(columns="year").to_csv(tmp_path / "noyear.csv", index=False)
    with pytest.raises(DataError, match=r"noyear.csv line 1: the header names no column 'year'"):
        prepare(str(schema_file(tmp_path)), str(tmp_path / "noyear.csv"), tmp_path / "out")
    pq_schema = json.loads(json.dumps(SCHEMA))
    pq_schema.update(format="parquet")
    pq_schema.pop("header")
    write_parquet(tmp_path / "noyear.parquet", [{k: v for k, v in r.items()} for r in rows[:50]])
    pd.read_parquet(tmp_path / "noyear.parquet").drop(columns="year").to_parquet(
        tmp_path / "noyear.parquet"
    )
    with pytest.raises(DataError, match=r"noyear.parquet: no column 'year'"):
        prepare(pq_schema, str(tmp_path / "noyear.parquet"), tmp_path / "out")
    assert not (tmp_path / "out" / "clicks").exists()


def test_a_tf_example_feature_of_the_wrong_type_names_feature_file_and_record(tmp_path, raw_copies):
    _, rows, _ = raw_copies
    path = write_tfrecord(tmp_path / "typed.tfrecord", rows[:40])
    records = [r.numpy() for r in tf.data.TFRecordDataset(str(path))]
    example = tf.train.Example.FromString(records[2])
    example.features.feature["year"].Clear()
    example.features.feature["year"].bytes_list.value.append(b"2020")
    records[2] = example.SerializeToString()
    with tf.io.TFRecordWriter(str(path)) as writer:
        for r in records:
            writer.write(r)
    schema = json.loads(json.dumps(SCHEMA))
    schema.update(format="tfrecord")
    schema.pop("header")
    with pytest.raises(DataError) as info:
        prepare(schema, str(path), tmp_path / "out", max_bad_fraction=0.0)
    assert (
        "typed.tfrecord record 3: feature `year` is a bytes_list; a numeric value is read from "
        "a float_list or int64_list" in str(info.value)
    )
    counts = info.value.report["malformed"]
    assert sum(r.get("wrong_feature_type", 0) for f in counts.values() for r in f.values()) == 1
    assert not (tmp_path / "out" / "clicks").exists()
    # below max_bad_fraction the record is skipped and counted
    data_dir = prepare(schema, str(path), tmp_path / "out", max_bad_fraction=0.1)
    manifest = load_manifest(data_dir)
    assert sum(s.rows for s in manifest.splits.values()) == 39


def test_malformed_rows_of_every_kind_are_skipped_and_counted(tmp_path, raw_copies):
    _, rows, _ = raw_copies
    path = write_csv(tmp_path / "bad.csv", rows[:100])
    lines = path.read_text().splitlines()
    lines[5] = lines[5].replace(",", ",x", 1).replace(lines[5].split(",")[0] + ",x", "2,", 1)
    cells = lines[9].split(",")
    cells[COLUMNS.index("year")] = "soon"
    lines[9] = ",".join(cells)
    cells = lines[12].split(",")
    cells[COLUMNS.index("code")] = "7.5"
    lines[12] = ",".join(cells)
    lines[20] = lines[20] + ",extra"
    path.write_text("\n".join(lines) + "\n")
    data_dir = prepare(
        str(schema_file(tmp_path)), str(path), tmp_path / "out", max_bad_fraction=0.05
    )
    manifest = load_manifest(data_dir)
    reasons = {}
    for files in manifest.raw["malformed"].values():
        for counts in files.values():
            for reason, n in counts.items():
                reasons[reason] = reasons.get(reason, 0) + n
    assert reasons == {
        "unknown_label": 1,
        "non_numeric": 1,
        "non_numeric_integer": 1,
        "wrong_column_count": 1,
    }
    assert sum(s.rows for s in manifest.splits.values()) == 96
    examples = " ".join(manifest.raw["malformed_examples"])
    assert "bad.csv line 10: year: not a number: 'soon'" in examples
    assert "bad.csv line 13: code: not an integer: '7.5'" in examples


# ------------------------------------------------------------------- end to end, CLIs


SERVE_ROWS = [
    # unseen values, empty cells, NaN and out-of-domain numbers, "007" for an int code
    {
        "clicked": 1,
        "uid": "never-seen",
        "device": "IOS",
        "genres": "pop|unseen|",
        "year": 2000.0,
        "hour": 5.0,
        "price": 12.25,
        "age": 30.0,
        "ad_id": "ad-new",
        "isrc": "  USZZ9",
        "code": "007",
    },
    {
        "clicked": 0,
        "uid": "",
        "device": "",
        "genres": "",
        "year": math.nan,
        "hour": math.nan,
        "price": math.nan,
        "age": math.nan,
        "ad_id": "",
        "isrc": "",
        "code": "",
    },
    {
        "clicked": 0,
        "uid": "u3",
        "device": "web",
        "genres": "jazz|folk|rock|pop",
        "year": 3000.0,
        "hour": -5.0,
        "price": 1e9,
        "age": 120.0,
        "ad_id": "ad1",
        "isrc": "TW",
        "code": "3",
    },
    {
        "clicked": 1,
        "uid": "u7",
        "device": "Android",
        "genres": " rock ",
        "year": 1970.0,
        "hour": 23.0,
        "price": 2.5,
        "age": 1.0,
        "ad_id": "ad42",
        "isrc": "GBAA",
        "code": "29",
    },
]


@pytest.mark.slow
def test_own_schema_prepares_trains_tunes_exports_and_serves_the_same_predictions(
    tmp_path, raw_copies
):
    """CLI only: prepare, train, tune (2 trials) and export with --schema; then the served
    model's output equals preprocessing + model on the same raw rows, to 1e-6."""
    import keras

    from export.__main__ import main as export_main
    from pipelines.data.prepare_cli import main as prepare_main
    from pipelines.training.cli import main as train_main
    from pipelines.tune import main as tune_main

    _, _, files = raw_copies
    schema = schema_file(tmp_path)
    assert (
        prepare_main(
            ["--schema", str(schema), "--data", str(files["csv"]), "--out", str(tmp_path / "data")]
        )
        == 0
    )
    data_dir = tmp_path / "data" / "clicks"
    small = [
        "--simple-units",
        "16",
        "--complex-units",
        "16",
        "--embedding-dim",
        "4",
        "--set",
        "train.batch_size=128",
        "--set",
        "train.eval_batch_size=512",
    ]
    run_dir = tmp_path / "run"
    assert (
        train_main(
            [
                "--schema",
                str(schema),
                "--data",
                str(data_dir),
                "--epochs",
                "2",
                "--run-dir",
                str(run_dir),
                "--quiet",
                *small,
            ]
        )
        == 0
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"]["auc"] > 0.6  # device lower-cased carries the signal
    assert (
        tune_main(
            [
                "--schema",
                str(schema),
                "--data",
                str(data_dir),
                "--max-trials",
                "2",
                "--tuner",
                "random",
                "--tune-dir",
                str(tmp_path / "tune"),
                "--set",
                "train.max_epochs=1",
                "--set",
                "train.batch_size=128",
                "--set",
                "model.simple_units=[8]",
                "--set",
                "model.complex_units=[8]",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "tune").glob("trial_*")) == ["trial_0", "trial_1"]
    best = yaml.safe_load((tmp_path / "tune" / "best.yaml").read_text())
    assert best["dataset"] == "clicks" and best["data"]["schema"] == str(schema.resolve())
    assert (
        export_main(
            [
                "--run-dir",
                str(run_dir),
                "--model-base-path",
                str(tmp_path / "serve"),
                "--model-name",
                "clicks",
            ]
        )
        == 0
    )
    version = tmp_path / "serve" / "clicks" / "1"

    serve_csv = tmp_path / "serve.csv"
    serve_csv.write_text(
        ",".join(COLUMNS)
        + "\n"
        + "\n".join(",".join(_text(r[c]) for c in COLUMNS) for r in SERVE_ROWS)
        + "\n"
    )
    ids, _, bad = encode_file(data_dir, str(serve_csv))
    assert bad == []
    model = keras.saving.load_model(run_dir / "model.keras")
    want = np.asarray(model.predict({k: v for k, v in ids.items()}, verbose=0)["ctr"]).reshape(-1)
    served = tf.saved_model.load(str(version)).signatures["serving_default"]
    raw = {c: tf.constant([r[c] for r in SERVE_ROWS], tf.float64) for c in NUMBERS}
    raw.update({c: tf.constant([_text(r[c]) for r in SERVE_ROWS]) for c in (*STRINGS, "code")})
    raw["price_rounded"] = raw["price"]
    got = served(**raw)["ctr_probability"].numpy()
    np.testing.assert_allclose(got, want, atol=1e-6)
    # the serving graph's own encoding equals preprocessing's for every field, row by row
    from export.serving_module import RawFeatureServer

    server = RawFeatureServer(model, load_manifest(data_dir))
    encoded = server.encode(raw)
    for name, values in ids.items():
        np.testing.assert_allclose(
            np.asarray(encoded[name], dtype=np.float64),
            np.asarray(values, dtype=np.float64),
            rtol=0,
            atol=1e-6,
            err_msg=name,
        )
    # the manifest (schema included) travels with the model
    extra = json.loads((version / "assets.extra" / "manifest.json").read_text())
    assert extra["schema"]["name"] == "clicks"
    # the schema used every registered transform, and one of the user's own
    assert {f.get("transform") for f in SCHEMA["fields"]} - {None} == {
        *TRANSFORMS,
        "tests.test_own_data:ROUNDED_LOG_SQUARED",
    }


def test_export_refuses_a_transform_without_a_tensorflow_form(tmp_path, raw_copies):
    from export.serving_module import RawFeatureServer

    _, rows, _ = raw_copies
    schema = json.loads(json.dumps(SCHEMA))
    schema["fields"].append(
        {
            "name": "root",
            "column": "year",
            "kind": "numeric",
            "transform": "tests.test_own_data:NUMPY_ONLY",
        }
    )
    data_dir = prepare(schema, str(write_csv(tmp_path / "c.csv", rows[:100])), tmp_path / "out")
    manifest = load_manifest(data_dir)
    from pipelines.data.prepare import hash_split

    train = hash_split(np.arange(1, 101), 7, (8, 1, 1)) == 0
    roots = np.sqrt(np.array([r["year"] for r in rows[:100]])[train])
    # preprocessing applied the NumPy form: the normalization is that of sqrt(year)
    np.testing.assert_allclose(
        manifest.field("root").normalization["mean"], np.nanmean(roots), rtol=1e-12
    )
    with pytest.raises(
        ValueError,
        match="Field `root` uses transform `tests.test_own_data:NUMPY_ONLY`, which has no TensorFlow form",
    ):
        RawFeatureServer(None, manifest)


def test_tf_example_strings_are_stripped_like_text_cells(tmp_path, raw_copies, prepared):
    """A batch whose strings hold whitespace is stripped (one without skips the work)."""
    _, rows, _ = raw_copies
    padded = [dict(r, device=f"  {r['device']}\t") if r["device"] else r for r in rows]
    schema = json.loads(json.dumps(SCHEMA))
    schema.update(format="tfrecord")
    schema.pop("header")
    data_dir = prepare(schema, str(write_tfrecord(tmp_path / "p.tfrecord", padded)), tmp_path / "o")
    assert split_rows(data_dir) == split_rows(prepared["csv"])
