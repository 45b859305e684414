"""Pipeline benchmark: preprocessing throughput and peak memory, reader vs model throughput.

For each row count (default 1 M and 4 M generated Criteo rows) it generates the raw file, then
runs ``prepare`` in a fresh subprocess and reports rows/s and the subprocess's peak RSS. Memory
must not grow with rows beyond the vocabularies (the generator's cardinalities are bounded, so
the vocabularies saturate): the script prints the peak-memory ratio between the largest and the
smallest run.

Then it measures the reader (``make_dataset`` on the train split, batch 4096, shuffling) in
samples/s, and the rate at which TF4CTR consumes batches: ``fit`` steps on one in-memory batch
repeated (no input cost), with the reference Criteo configuration (SER + WSF, d = 16, simple
[400, 400], complex [400, 400, 400], BN, Twin Focus loss). If ``tf4ctr_keras.build_tf4ctr`` cannot
be imported, a stand-in Keras model of the same shape is used and the output says so. The reader
must be at least 3x faster.

Usage::

    python benchmarks/pipeline_bench.py                    # 1 M and 4 M rows
    python benchmarks/pipeline_bench.py --rows 200000      # quick check
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_CHILD = """
import json, resource, sys, time
from pipelines.data.prepare import prepare
from pipelines.data.manifest import load_manifest
start = time.perf_counter()
schema = json.loads(sys.argv[3]) if len(sys.argv) > 3 else "criteo"
path = prepare(schema, sys.argv[1], sys.argv[2], force=True)
seconds = time.perf_counter() - start
m = load_manifest(path)
print(json.dumps({
    "seconds": seconds,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "rows": sum(s.rows for s in m.splits.values()),
    "vocab_tokens": sum(f.num_tokens for f in m.fields),
    "dir": str(path),
}))
"""


def bench_prepare(raw: Path, out: Path, schema: dict | None = None) -> dict:
    extra = [json.dumps(schema)] if schema is not None else []
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(raw), str(out), *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_reader(data_dir: str, batch_size: int, seconds: float = 20.0) -> float:
    from pipelines.data.reader import make_dataset

    ds = make_dataset(data_dir, "train", batch_size, repeat=True, drop_remainder=True)
    it = iter(ds)
    for _ in range(20):  # warm-up: fill the shuffle buffer and the prefetch
        next(it)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        next(it)
        n += 1
    return n * batch_size / (time.perf_counter() - start)


def _standin_model(vocab_sizes: dict, dim: int = 16):
    """Same shape as TF4CTR SER + WSF: two tables (d and d/2), MLPs [400, 400] and [400, 400, 400]."""
    import keras

    inputs = {n: keras.Input(shape=(), dtype="int64", name=n) for n in vocab_sizes}

    def tower(width, units, prefix):
        embs = [
            keras.layers.Embedding(v, width, name=f"{prefix}_{n}")(inputs[n])
            for n, v in vocab_sizes.items()
        ]
        x = keras.layers.Concatenate()(embs)
        for i, u in enumerate(units):
            x = keras.layers.Dense(u, name=f"{prefix}_dense{i}")(x)
            x = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(x)
            x = keras.layers.ReLU()(x)
        return keras.layers.Dense(1)(x)

    simple = tower(dim // 2, [400, 400], "simple")
    complex_ = tower(dim, [400, 400, 400], "complex")
    ctr = keras.layers.Activation("sigmoid", name="ctr")(keras.layers.Add()([simple, complex_]))
    model = keras.Model(inputs, {"ctr": keras.layers.Reshape(())(ctr)})
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3, global_clipnorm=10.0),
        loss={"ctr": "binary_crossentropy"},
    )
    return model


def bench_model(data_dir: str, batch_size: int, steps: int = 30) -> tuple[float, str]:
    import keras
    import tensorflow as tf

    from pipelines.data.manifest import load_manifest
    from pipelines.data.reader import make_dataset

    manifest = load_manifest(data_dir)
    features, label = next(iter(make_dataset(data_dir, "train", batch_size, drop_remainder=True)))
    try:
        from tf4ctr_keras import TwinFocusLoss, build_tf4ctr
        from tf4ctr_keras.models.tf4ctr import CTR_OUTPUT, TWIN_OUTPUT

        model = build_tf4ctr(manifest.vocab_sizes, embedding_l2=1e-5, dropout=0.2, seed=2023)
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-8, global_clipnorm=10.0),
            loss={
                CTR_OUTPUT: keras.losses.BinaryCrossentropy(),
                TWIN_OUTPUT: TwinFocusLoss(0.35, 0.9, 1.0),
            },
        )
        targets = {CTR_OUTPUT: label, TWIN_OUTPUT: label}
        what = "tf4ctr_keras.build_tf4ctr (SER + WSF, Twin Focus loss)"
    except ImportError as err:
        model = _standin_model(manifest.vocab_sizes)
        targets = {"ctr": label}
        what = f"stand-in Keras model of the same shape (tf4ctr_keras not importable: {err})"
    ds = tf.data.Dataset.from_tensors((features, targets)).repeat()
    model.fit(ds, steps_per_epoch=5, epochs=1, verbose=0)  # trace and warm up
    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch_size / (time.perf_counter() - start), what


def to_tfrecord(raw: Path, out: Path, rows: int) -> Path:
    """The first ``rows`` rows of a Criteo-format file as gzip ``tf.train.Example`` records (an
    empty cell is an absent feature), what a user's feature pipeline would have written."""
    import gzip

    import tensorflow as tf

    names = ["label", *(f"I{i}" for i in range(1, 14)), *(f"C{i}" for i in range(1, 27))]
    options = tf.io.TFRecordOptions(compression_type="GZIP", compression_level=1)
    with gzip.open(raw, "rt") as lines, tf.io.TFRecordWriter(str(out), options) as writer:
        for n, line in enumerate(lines):
            if n == rows:
                break
            feature = {}
            for name, cell in zip(names, line.rstrip("\n").split("\t"), strict=True):
                if cell == "":
                    continue
                if name[0] == "C":
                    feature[name] = tf.train.Feature(
                        bytes_list=tf.train.BytesList(value=[cell.encode()])
                    )
                else:
                    feature[name] = tf.train.Feature(
                        int64_list=tf.train.Int64List(value=[int(cell)])
                    )
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())
    return out


def tfrecord_schema() -> dict:
    """The bundled Criteo schema, reading tf.Example features instead of TSV columns."""
    from pipelines.data.schema import load_schema

    schema = load_schema("criteo").to_dict()
    for key in ("header", "columns"):
        schema.pop(key, None)
    schema["splits"].pop("files", None)
    return {**schema, "format": "tfrecord"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--workdir", default=None, help="scratch directory (default: a temp dir)")
    parser.add_argument("--reader-seconds", type=float, default=20.0)
    parser.add_argument(
        "--tfrecord-rows",
        type=int,
        default=1_000_000,
        help="rows of the tf.Example copy prepared beside the TSV (0: skip)",
    )
    args = parser.parse_args(argv)
    from pipelines.data.generate import generate_criteo

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="pipeline_bench_"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"cpu cores: {os.cpu_count()}, workdir: {workdir}")
    results = {}
    for rows in args.rows:
        raw = workdir / f"criteo_{rows}.txt.gz"
        start = time.perf_counter()
        generate_criteo(str(raw), rows, seed=1)
        gen_s = time.perf_counter() - start
        r = bench_prepare(raw, workdir / f"out_{rows}")
        results[rows] = r
        print(
            f"[{rows:>9,} rows] generate {rows / gen_s:,.0f} rows/s | prepare {r['seconds']:.1f} s = "
            f"{r['rows'] / r['seconds']:,.0f} rows/s (2 passes) | peak RSS {r['peak_rss_mb']:,.0f} MB | "
            f"vocabulary {r['vocab_tokens']:,} tokens"
        )
    small, large = min(results), max(results)
    if small != large:
        ratio = results[large]["peak_rss_mb"] / results[small]["peak_rss_mb"]
        print(
            f"peak memory ratio {large:,} / {small:,} rows = {ratio:.2f} for {large / small:.0f}x the rows "
            f"(vocabulary {results[large]['vocab_tokens'] / results[small]['vocab_tokens']:.2f}x)"
        )
    if args.tfrecord_rows:
        rows = min(args.tfrecord_rows, small)
        raw = workdir / f"criteo_{small}.txt.gz"
        tsv = workdir / f"criteo_first_{rows}.txt.gz"
        if rows < small:
            import gzip
            import itertools

            with gzip.open(raw, "rt") as src, gzip.open(tsv, "wt", compresslevel=1) as dst:
                dst.writelines(itertools.islice(src, rows))
        else:
            tsv = raw
        records = to_tfrecord(raw, workdir / f"criteo_{rows}.tfrecord.gz", rows)
        # the two inputs in turn, twice (A B B A), on the same rows
        times = {"tsv": [], "tfrecord": []}
        for kind in ("tsv", "tfrecord", "tfrecord", "tsv"):
            if kind == "tsv":
                r = bench_prepare(tsv, workdir / "out_tsv")
            else:
                r = bench_prepare(records, workdir / "out_tfrecord", tfrecord_schema())
            times[kind].append(r["rows"] / r["seconds"])
        tsv_rate, rec_rate = (sum(v) / len(v) for v in (times["tsv"], times["tfrecord"]))
        print(
            f"[{rows:>9,} rows] prepare from TSV {tsv_rate:,.0f} rows/s, from gzip tf.Example "
            f"TFRecords {rec_rate:,.0f} rows/s: tfrecord / tsv = {rec_rate / tsv_rate:.2f}x "
            "(A B B A, same rows)"
        )
    data_dir = results[large]["dir"]
    reader = bench_reader(data_dir, args.batch_size, args.reader_seconds)
    model, what = bench_model(data_dir, args.batch_size)
    print(f"reader: {reader:,.0f} samples/s (train, batch {args.batch_size}, shuffled)")
    print(f"model consumption: {model:,.0f} samples/s ({what})")
    verdict = "OK" if reader >= 3 * model else "TOO SLOW"
    print(f"reader / model = {reader / model:.1f}x (needs >= 3x): {verdict}")
    return 0 if reader >= 3 * model else 1


if __name__ == "__main__":
    raise SystemExit(main())
