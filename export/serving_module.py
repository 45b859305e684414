"""The serving graph: raw feature values -> in-graph vocabulary lookup -> model -> probability.

The lookups reproduce the pipeline's encoder exactly (Keras lookup convention, design.md
contract 2): categorical and numeric ids are ``line + 1`` with 0 for anything not in the
vocabulary (unseen, empty, missing); sequence ids are ``line + 2`` with 1 for OOV and 0 for
padding. Vocabulary files are ``tf.lookup.TextFileInitializer`` assets, so they travel inside
the SavedModel and clients send raw values.
"""

from __future__ import annotations

import keras
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


class RawFeatureServer(tf.Module):
    """A ``tf.Module`` holding the model, one lookup table per field, and two signatures.

    Args:
        model: the trained Keras model (``{field: ids} -> {"ctr", ...}``).
        manifest: the manifest of the dataset the model was trained on; its schema and the
            transform registry define every step from raw value to model input.
    """

    def __init__(self, model: keras.Model, manifest: Manifest):
        super().__init__(name="raw_feature_server")
        self.model = model
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
        self.tables = {
            field.name: tf.lookup.StaticHashTable(
                tf.lookup.TextFileInitializer(
                    str(manifest.vocab_path(field.name)),
                    key_dtype=tf.string,
                    key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
                    value_dtype=tf.int64,
                    value_index=tf.lookup.TextFileIndex.LINE_NUMBER,
                ),
                default_value=-1,
            )
            for field in self.fields
            if field.vocab_file is not None
        }
        self.hashers = {
            field.name: hashing_layer(field.hash_buckets)
            for field in self.fields
            if field.hash_buckets
        }
        raw_spec = {f.name: tf.TensorSpec([None], input_dtype(f), name=f.name) for f in self.fields}
        self.serve = tf.function(self._serve, input_signature=[raw_spec])
        self.serve_examples = tf.function(
            self._serve_examples,
            input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)],
        )

    # -- encoding -----------------------------------------------------------------------------
    def encode(self, raw: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Raw values -> the ids the pipeline wrote for them."""
        first = self.fields[0].name
        batch = tf.shape(raw[first])[0]
        checks = [
            tf.debugging.assert_equal(
                tf.shape(raw[field.name])[0],
                batch,
                message=f"input `{field.name}` has a different batch size than `{first}`",
            )
            for field in self.fields
        ]
        # Every input passes the batch check before any op uses it, so a mismatch is reported
        # by name and never as a shape error deep inside the model.
        with tf.control_dependencies(checks):
            raw = {field.name: tf.identity(raw[field.name]) for field in self.fields}
        return {field.name: self.encode_field(field, raw[field.name]) for field in self.fields}

    def _ids(self, field: FieldInfo, keys: tf.Tensor) -> tf.Tensor:
        """Vocabulary line (or hash bucket) of each key; -1 when not in the vocabulary."""
        if field.hash_buckets:
            return tf.cast(self.hashers[field.name](keys), tf.int64)
        return self.tables[field.name].lookup(keys)

    def encode_field(self, field: FieldInfo, values: tf.Tensor) -> tf.Tensor:
        """One field's raw values -> what the pipeline wrote (see pipelines.data.datasets.spec)."""
        transform = self.transforms.get(field.name)
        if field.is_sequence:
            tokens = tf.strings.strip(tf.strings.split(values, field.separator))
            tokens = tf.ragged.boolean_mask(tokens, tf.not_equal(tokens, ""))
            tokens = tokens[:, : field.max_len]
            seq = tf.ragged.map_flat_values(lambda t: self._ids(field, t) + 2, tokens)
            return seq.to_tensor(default_value=0, shape=[None, field.max_len])
        if field.is_numeric:
            x = tf.cast(values, tf.float64)
            if transform is not None:
                x = transform.apply_tf(x)
            x = tf.where(tf.math.is_finite(x), x, tf.constant(float("nan"), tf.float64))
            if field.is_dense:
                norm = field.normalization
                return tf.cast((x - norm["shift"]) / norm["scale"], tf.float32)
            missing = tf.math.is_nan(x)
            whole = tf.cast(tf.floor(tf.where(missing, tf.zeros_like(x), x)), tf.int64)
            keys = tf.where(missing, "", tf.strings.as_string(whole))
        else:
            keys = tf.strings.strip(values)
            if self.dtypes[field.name] == "int":  # the pipeline's canonical integers: "007" -> "7"
                numeric = tf.strings.regex_full_match(keys, NUMBER_PATTERN)
                number = tf.strings.to_number(tf.where(numeric, keys, "0"), tf.float64)
                ok = numeric & tf.equal(tf.floor(number), number) & tf.math.is_finite(number)
                as_int = tf.strings.as_string(tf.cast(tf.where(ok, number, 0.0), tf.int64))
                keys = tf.where(ok & tf.not_equal(keys, ""), as_int, "")
            if transform is not None:
                keys = transform.apply_tf(keys)
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
        return {
            SERVING_SIGNATURE: self.serve.get_concrete_function(),
            EXAMPLES_SIGNATURE: self.serve_examples.get_concrete_function(),
        }
