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

from pipelines.data.datasets.criteo import LOG_SQUARED, log_squared_tf
from pipelines.data.datasets.kkbox import (
    AGE_BUCKET,
    ISRC_COUNTRY,
    bucketize_age_tf,
    isrc_country_tf,
)
from pipelines.data.manifest import FieldInfo, Manifest

OUTPUT_NAME = "ctr_probability"
EXAMPLES_INPUT = "examples"
SERVING_SIGNATURE = "serving_default"
EXAMPLES_SIGNATURE = "predict_examples"
# In-graph versions of the raw-value transforms dataset specs record in the manifest:
# name -> (dtype clients send, function raw tensor -> vocabulary key).
TRANSFORMS = {
    LOG_SQUARED: (tf.float64, lambda v: tf.strings.as_string(log_squared_tf(v))),
    AGE_BUCKET: (tf.float64, bucketize_age_tf),
    ISRC_COUNTRY: (tf.string, isrc_country_tf),
}


def input_dtype(field: FieldInfo) -> tf.DType:
    """Raw dtype a client sends: float64 for numeric fields (NaN = missing), else string.

    float64 holds every integer up to 2**53 exactly, so in-graph bucketing agrees with the
    pipeline's (float32 would round Criteo counts above 2**24 at bucket edges).
    """
    if field.transform is not None:
        return TRANSFORMS[field.transform][0]
    return tf.float64 if field.kind == "numeric-bucketed" else tf.string


class RawFeatureServer(tf.Module):
    """A ``tf.Module`` holding the model, one lookup table per field, and two signatures.

    Args:
        model: the trained Keras model (``{field: ids} -> {"ctr", ...}``).
        manifest: the manifest of the dataset the model was trained on.
        sequence_separator: separator of raw sequence cells (KKBox: ``"|"``).
    """

    def __init__(self, model: keras.Model, manifest: Manifest, sequence_separator: str = "|"):
        super().__init__(name="raw_feature_server")
        for field in manifest.fields:
            if field.transform is not None and field.transform not in TRANSFORMS:
                raise ValueError(
                    f"Field `{field.name}` uses transform `{field.transform}`, which the serving "
                    f"graph does not implement (known: {sorted(TRANSFORMS)})."
                )
        self.model = model
        self.fields = list(manifest.fields)
        self.sequence_separator = sequence_separator
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
        ids = {}
        for field in self.fields:
            values = raw[field.name]
            table = self.tables[field.name]
            if field.kind == "sequence":
                tokens = tf.strings.strip(tf.strings.split(values, self.sequence_separator))
                tokens = tf.ragged.boolean_mask(tokens, tf.not_equal(tokens, ""))
                tokens = tokens[:, : field.max_len]
                seq = tf.ragged.map_flat_values(lambda t, tb=table: tb.lookup(t) + 2, tokens)
                ids[field.name] = seq.to_tensor(default_value=0, shape=[None, field.max_len])
            elif field.transform is not None:
                keys = TRANSFORMS[field.transform][1](values)
                if input_dtype(field) == tf.float64:  # a missing number is OOV
                    keys = tf.where(tf.math.is_nan(values), "", keys)
                ids[field.name] = table.lookup(keys) + 1
            else:
                ids[field.name] = table.lookup(values) + 1
        return ids

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
