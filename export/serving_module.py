"""The serving graph: raw feature values -> in-graph vocabulary lookup -> model -> probability.

The lookups reproduce the pipeline's encoder exactly (Keras lookup convention, design.md
contract 2): categorical and numeric ids are ``line + 1`` with 0 for anything not in the
vocabulary (unseen, empty, missing); sequence ids are ``line + 2`` with 1 for OOV and 0 for
padding. The vocabularies travel inside the SavedModel as one asset, ``vocabularies.txt``, so
clients send raw values.

The graph is built for a batch-1 request as much as for a large batch: fields that take the
same steps are stacked into one ``(batch, fields)`` tensor and each step runs once over it,
and every vocabulary field is looked up in one hash table whose keys are ``"<field index>\\x1f
<token>"`` (the asset's lines, all fields' vocabularies in field order). A batch-1 request's
cost is mostly per op, not per value, so Criteo's 39 fields now take a few dozen ops to encode
instead of up to about 20 per field (``benchmarks/serving_bench.py`` measures both graphs).
``lookup="per_field"`` builds the earlier graph (one table and one chain of ops per field; the
benchmark's baseline and the tests' reference): the same steps, so the same ids.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pipelines.data.hashing import hashing_layer
from pipelines.data.manifest import FieldInfo, Manifest
from pipelines.data.transforms import get_transform

OUTPUT_NAME = "ctr_probability"
EXAMPLES_INPUT = "examples"
SERVING_SIGNATURE = "serving_default"
# A decimal number as pandas.to_numeric reads one (what `dtype: int` accepts in preprocessing).
NUMBER_PATTERN = r"[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?"
EXAMPLES_SIGNATURE = "predict_examples"
VOCABULARY_ASSET = "vocabularies.txt"  # the one table's keys: "<field index>\x1f<token>" a line
KEY_SEPARATOR = "\x1f"  # after the field's decimal index: a key's field is unambiguous
LOOKUPS = ("fused", "per_field")


def input_dtype(field: FieldInfo) -> tf.DType:
    """Raw dtype a client sends: float64 for numeric fields (NaN = missing), else string.

    float64 holds every integer up to 2**53 exactly, so in-graph bucketing agrees with the
    pipeline's (float32 would round Criteo counts above 2**24 at bucket edges).
    """
    return tf.float64 if field.is_numeric else tf.string


def schema_fields(manifest: Manifest) -> dict[str, dict]:
    """The schema's field entries by name (``{}`` for manifests written before schemas)."""
    schema = manifest.schema or {}
    return {f["name"]: f for f in schema.get("fields", [])}


def write_vocabularies(manifest: Manifest, fields: list[FieldInfo], path: Path) -> np.ndarray:
    """Writes every field's vocabulary into one file, each line ``"<i>\\x1f<token>"`` (``i``
    the field's index in ``fields``), fields in order; returns each field's first line number."""
    starts, line = [], 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for index, field in enumerate(fields):
            starts.append(line)
            tokens = manifest.vocabulary(field.name)
            out.writelines(f"{index}{KEY_SEPARATOR}{token}\n" for token in tokens)
            line += len(tokens)
    return np.asarray(starts, np.int64)


def number_keys(x: tf.Tensor, transform) -> tf.Tensor:
    """Raw numbers (any shape, float64, NaN = missing) -> vocabulary tokens of a bucketized
    numeric field: the transformed value's integer part as a decimal string, ``""`` if missing."""
    if transform is not None:
        x = transform.apply_tf(x)
    x = tf.where(tf.math.is_finite(x), x, tf.constant(float("nan"), tf.float64))
    missing = tf.math.is_nan(x)
    whole = tf.cast(tf.floor(tf.where(missing, tf.zeros_like(x), x)), tf.int64)
    return tf.where(missing, "", tf.strings.as_string(whole))


def string_keys(values: tf.Tensor, integer: bool, transform) -> tf.Tensor:
    """Raw strings (any shape) -> canonical tokens: stripped; with ``integer`` (``dtype: int``)
    decimal integers (``"007"`` -> ``"7"``, anything else ``""``); then the string transform."""
    keys = tf.strings.strip(values)
    if integer:  # the pipeline's canonical integers
        numeric = tf.strings.regex_full_match(keys, NUMBER_PATTERN)
        number = tf.strings.to_number(tf.where(numeric, keys, "0"), tf.float64)
        ok = numeric & tf.equal(tf.floor(number), number) & tf.math.is_finite(number)
        as_int = tf.strings.as_string(tf.cast(tf.where(ok, number, 0.0), tf.int64))
        keys = tf.where(ok & tf.not_equal(keys, ""), as_int, "")
    if transform is not None:
        keys = transform.apply_tf(keys)
    return keys


def dense_values(x: tf.Tensor, transform, shift, scale) -> tf.Tensor:
    """Raw numbers -> a dense field's normalized float32 input (NaN = missing)."""
    if transform is not None:
        x = transform.apply_tf(x)
    x = tf.where(tf.math.is_finite(x), x, tf.constant(float("nan"), tf.float64))
    return tf.cast((x - shift) / scale, tf.float32)


class RawFeatureServer(tf.Module):
    """A ``tf.Module`` holding the model, the vocabulary lookups, and two signatures.

    Args:
        model: the trained Keras model (``{field: ids} -> {"ctr", ...}``).
        manifest: the manifest of the dataset the model was trained on; its schema and the
            transform registry define every step from raw value to model input.
        lookup: ``"fused"`` (default: one hash table for every vocabulary field, each step run
            once over the stacked fields that take it) or ``"per_field"`` (one table and one
            chain of ops per field, the graph exported before; the same ids).
    """

    def __init__(self, model: keras.Model, manifest: Manifest, lookup: str = "fused"):
        super().__init__(name="raw_feature_server")
        if lookup not in LOOKUPS:
            raise ValueError(f"`lookup` must be one of {LOOKUPS}. Received: `lookup={lookup!r}`")
        self.model = model
        self.lookup = lookup
        self.fields = list(manifest.fields)
        declared = schema_fields(manifest)
        self.dtypes = {f.name: declared.get(f.name, {}).get("dtype") for f in self.fields}
        # Every transform is resolved (and refused, naming it, without a TensorFlow form)
        # before anything is traced.
        self.transforms = {}
        for field in self.fields:
            if field.transform is None:
                continue
            transform = get_transform(field.transform)
            if transform.tensorflow is None:
                raise ValueError(
                    f"Field `{field.name}` uses transform `{field.transform}`, which has no "
                    "TensorFlow form, so the serving graph cannot apply it (add one in "
                    "pipelines/data/transforms.py)."
                )
            self.transforms[field.name] = transform
        self.hashers = {
            field.name: hashing_layer(field.hash_buckets)
            for field in self.fields
            if field.hash_buckets
        }
        vocab_fields = [f for f in self.fields if f.vocab_file is not None and not f.hash_buckets]
        if lookup == "per_field":
            self.tables = {f.name: self._table(manifest.vocab_path(f.name)) for f in vocab_fields}
        else:
            self._build_fused(manifest, vocab_fields)
        raw_spec = {f.name: tf.TensorSpec([None], input_dtype(f), name=f.name) for f in self.fields}
        self.serve = tf.function(self._serve, input_signature=[raw_spec])
        self.serve_examples = tf.function(
            self._serve_examples,
            input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)],
        )

    @staticmethod
    def _table(path) -> tf.lookup.StaticHashTable:
        """Line number of each line of ``path`` (-1 for a key not in it)."""
        return tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                str(path),
                key_dtype=tf.string,
                key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
                value_dtype=tf.int64,
                value_index=tf.lookup.TextFileIndex.LINE_NUMBER,
            ),
            default_value=-1,
        )

    def _build_fused(self, manifest: Manifest, vocab_fields: list[FieldInfo]) -> None:
        """The one table, and the groups of fields whose raw values take the same steps."""
        self._scratch = tempfile.TemporaryDirectory(prefix="tf4ctr-vocabularies-")
        path = Path(self._scratch.name) / VOCABULARY_ASSET
        starts = write_vocabularies(manifest, vocab_fields, path)
        self.table = self._table(path) if vocab_fields else None
        self._key_index = {f.name: i for i, f in enumerate(vocab_fields)}
        self._key_start = {f.name: int(s) for f, s in zip(vocab_fields, starts, strict=True)}
        # (steps, fields): steps = ("dense" | "number" | "string", transform, dtype int, buckets)
        groups: dict[tuple, list[FieldInfo]] = {}
        for field in self.fields:
            if field.is_sequence:
                continue
            kind = "dense" if field.is_dense else "number" if field.is_numeric else "string"
            steps = (kind, field.transform, self.dtypes[field.name] == "int", field.hash_buckets)
            groups.setdefault(steps, []).append(field)
        self._groups = list(groups.items())

    # -- encoding -----------------------------------------------------------------------------
    def encode(self, raw: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Raw values -> the ids the pipeline wrote for them."""
        # Every input passes the batch check before any op uses it, so a mismatch is reported
        # by name and never as a shape error deep inside the model.
        checks = self._batch_checks(raw)
        if self.lookup == "fused":
            with tf.control_dependencies(checks):
                return self._encode_fused(raw)
        with tf.control_dependencies(checks):
            raw = {field.name: tf.identity(raw[field.name]) for field in self.fields}
        return {field.name: self.encode_field(field, raw[field.name]) for field in self.fields}

    def _batch_checks(self, raw: dict[str, tf.Tensor]) -> list:
        first = self.fields[0].name
        if self.lookup == "per_field":
            batch = tf.shape(raw[first])[0]
            return [
                tf.debugging.assert_equal(
                    tf.shape(raw[field.name])[0],
                    batch,
                    message=f"input `{field.name}` has a different batch size than `{first}`",
                )
                for field in self.fields
            ]
        if len(self.fields) == 1:
            return []
        # one check for all fields: their (fields,) batch sizes, one ShapeN per dtype (the
        # first field's dtype first), and the first one that differs named
        by_dtype: dict[tf.DType, list[str]] = {}
        for field in self.fields:
            by_dtype.setdefault(raw[field.name].dtype, []).append(field.name)
        order = [name for names in by_dtype.values() for name in names]
        shapes = [tf.shape_n([raw[n] for n in names]) for names in by_dtype.values()]
        sizes = tf.concat([s for group in shapes for s in group], 0)  # (fields,)
        differ = tf.not_equal(sizes, sizes[0])
        names = tf.constant(order)
        culprit = tf.gather(names, tf.argmax(tf.cast(differ, tf.int32)))
        message = tf.strings.join(
            ["input `", culprit, f"` has a different batch size than `{first}`"]
        )
        return [tf.debugging.Assert(tf.logical_not(tf.reduce_any(differ)), [message])]

    def _encode_fused(self, raw: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        out: dict[str, tf.Tensor] = {}
        for (kind, _, integer, buckets), fields in self._groups:
            transform = self.transforms.get(fields[0].name)
            values = tf.stack([raw[f.name] for f in fields], axis=1)  # (batch, k)
            if kind == "dense":
                shift = np.asarray([f.normalization["shift"] for f in fields], np.float64)
                scale = np.asarray([f.normalization["scale"] for f in fields], np.float64)
                ids = dense_values(tf.cast(values, tf.float64), transform, shift, scale)
            else:
                if kind == "number":
                    keys = number_keys(tf.cast(values, tf.float64), transform)
                else:
                    keys = string_keys(values, integer, transform)
                if buckets:  # hashed: bucket + 1, 0 for a missing value
                    found = tf.cast(self.hashers[fields[0].name](keys), tf.int64)
                    ids = tf.where(tf.equal(keys, ""), tf.constant(0, tf.int64), found + 1)
                else:
                    ids = self._lookup_columns(fields, keys)
            out.update(zip((f.name for f in fields), tf.unstack(ids, axis=1), strict=True))
        for field in self.fields:
            if field.is_sequence:
                out[field.name] = self._encode_sequence(field, raw[field.name])
        return {f.name: out[f.name] for f in self.fields}

    def _lookup_columns(self, fields: list[FieldInfo], keys: tf.Tensor) -> tf.Tensor:
        """(batch, k) tokens of ``fields`` -> ids, in the one table: line - field's start + 1,
        0 when not in the field's vocabulary."""
        prefixes = tf.constant([f"{self._key_index[f.name]}{KEY_SEPARATOR}" for f in fields])
        starts = np.asarray([self._key_start[f.name] for f in fields], np.int64)
        found = self.table.lookup(
            tf.strings.join([tf.broadcast_to(prefixes, tf.shape(keys)), keys])
        )
        return tf.where(found >= 0, found - (starts - 1), tf.constant(0, tf.int64))

    def _ids(self, field: FieldInfo, keys: tf.Tensor) -> tf.Tensor:
        """Vocabulary line (or hash bucket) of each key; -1 when not in the vocabulary."""
        if field.hash_buckets:
            return tf.cast(self.hashers[field.name](keys), tf.int64)
        if self.lookup == "per_field":
            return self.tables[field.name].lookup(keys)
        prefix = f"{self._key_index[field.name]}{KEY_SEPARATOR}"
        found = self.table.lookup(tf.strings.join([prefix, keys]))
        return tf.where(found >= 0, found - self._key_start[field.name], found)

    def _encode_sequence(self, field: FieldInfo, values: tf.Tensor) -> tf.Tensor:
        tokens = tf.strings.strip(tf.strings.split(values, field.separator))
        tokens = tf.ragged.boolean_mask(tokens, tf.not_equal(tokens, ""))
        tokens = tokens[:, : field.max_len]
        seq = tf.ragged.map_flat_values(lambda t: self._ids(field, t) + 2, tokens)
        return seq.to_tensor(default_value=0, shape=[None, field.max_len])

    def encode_field(self, field: FieldInfo, values: tf.Tensor) -> tf.Tensor:
        """One field's raw values -> what the pipeline wrote (see pipelines.data.datasets.spec)."""
        transform = self.transforms.get(field.name)
        if field.is_sequence:
            return self._encode_sequence(field, values)
        if field.is_dense:
            norm = field.normalization
            return dense_values(
                tf.cast(values, tf.float64), transform, norm["shift"], norm["scale"]
            )
        if field.is_numeric:
            keys = number_keys(tf.cast(values, tf.float64), transform)
        else:
            keys = string_keys(values, self.dtypes[field.name] == "int", transform)
        found = self._ids(field, keys)
        if field.hash_buckets:
            return tf.where(tf.equal(keys, ""), tf.constant(0, tf.int64), found + 1)
        return found + 1

    def predict_ids(self, ids: dict[str, tf.Tensor]) -> tf.Tensor:
        outputs = self.model(ids, training=False)
        return tf.reshape(tf.cast(outputs["ctr"], tf.float32), [-1])

    def _serve(self, raw):
        return {OUTPUT_NAME: self.predict_ids(self.encode(raw))}

    def feature_spec(self) -> dict[str, tf.io.FixedLenFeature]:
        """Raw ``tf.Example`` spec: missing string -> "" (OOV), missing number -> NaN (OOV).

        ``tf.Example`` stores floats as float32, so numbers travel at float32 precision here
        (exact up to 2**24); the named-tensor signature takes float64.
        """
        return {
            f.name: tf.io.FixedLenFeature([], tf.float32, default_value=float("nan"))
            if input_dtype(f) == tf.float64
            else tf.io.FixedLenFeature([], tf.string, default_value="")
            for f in self.fields
        }

    def _serve_examples(self, examples):
        raw = tf.io.parse_example(examples, self.feature_spec())
        raw = {k: tf.cast(v, tf.float64) if v.dtype == tf.float32 else v for k, v in raw.items()}
        return {OUTPUT_NAME: self.predict_ids(self.encode(raw))}

    def input_types(self) -> dict[str, str]:
        """``{field: "string" | "double"}``: what clients send (written to assets.extra)."""
        return {f.name: "double" if input_dtype(f) == tf.float64 else "string" for f in self.fields}

    def signatures(self) -> dict:
        """The two signatures, with every variable they read tracked on this module.

        Tracking the variables the functions capture (as Keras' ``ExportArchive`` does) is what
        makes the SavedModel's restore op fill them: without it ``tf.saved_model.load`` works,
        but a session-based loader (TF Serving, ``saved_model_cli run``) fails with "Could not
        find variable" (tensorflow/serving#2250, keras-team/keras#20096).
        """
        signatures = {
            SERVING_SIGNATURE: self.serve.get_concrete_function(),
            EXAMPLES_SIGNATURE: self.serve_examples.get_concrete_function(),
        }
        seen = set()
        self.model_variables = [
            v
            for fn in signatures.values()
            for v in fn.variables
            if id(v) not in seen and not seen.add(id(v))
        ]
        return signatures
