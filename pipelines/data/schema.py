"""Dataset schema files: the one way a dataset is described (YAML, no Python).

A schema names the raw format, the label, the optional gAUC group key, how rows are split and
every model input field with its kind. The paper's five datasets are schemas bundled with the
package (``pipelines/data/schemas/<name>.yaml``, loaded by ``--dataset NAME``); a user's own
data is described by a file of the same form (``--schema PATH``). README "Dataset schema
reference" lists every key; :data:`TOP_KEYS`, :data:`FIELD_KEYS`, :data:`LABEL_KEYS` and
:data:`SPLIT_KEYS` are the valid ones, and anything else is refused naming the key, the file and
the valid keys.

Example::

    name: clicks
    format: csv
    header: true
    label: {column: clicked}
    group_key: uid
    splits: {ratio: [8, 1, 1], seed: 2023}
    fields:
      - {name: uid, kind: categorical, min_count: 2}
      - {name: genres, kind: sequence, separator: "|", max_len: 8}
      - {name: year, kind: numeric}
      - {name: price, kind: numeric, transform: log_squared, bucketize: true}
      - {name: ad_id, kind: categorical, hash_buckets: 1000000}

This module imports only the standard library and PyYAML, so command lines can list and check
schemas before TensorFlow is loaded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipelines.data.errors import DataError

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
SPLITS = ("train", "valid", "test")
FORMATS = ("csv", "tsv", "parquet", "tfrecord", "libfm", "movielens")
# Formats read by a small named reader (pipelines.data.datasets) rather than column by column.
NAMED_READERS = ("libfm", "movielens")
KINDS = ("categorical", "sequence", "numeric")
DTYPES = ("int", "float", "str")
NORMALIZATIONS = ("standard", "minmax", "none")
# Cells are stripped of ASCII whitespace, as tf.strings.strip does in the serving graph.
ASCII_SPACE = " \t\n\r\x0b\x0c"

TOP_KEYS = {
    "name": "dataset name (run directories, prepared data directory)",
    "format": f"raw format: {' | '.join(FORMATS)}",
    "header": "csv/tsv: the first line names the columns (default true)",
    "columns": "csv/tsv without a header: the column names in file order",
    "delimiter": "csv/tsv: the column separator (default ',' for csv, tab for tsv)",
    "encoding": "text encoding of csv/tsv files (default utf-8)",
    "label": "the label column and which values mean a click",
    "group_key": "optional: the column whose value groups rows for gAUC",
    "splits": "how rows become train/valid/test: ratio + seed, or files",
    "min_count": "default vocabulary min count of the fields (default 1)",
    "fields": "the model input fields, in model order",
    "description": "free text",
}
FIELD_KEYS = {
    "name": "field name (model input and serving input name)",
    "kind": f"{' | '.join(KINDS)}",
    "column": "source column or tf.Example feature (default: name)",
    "dtype": f"{' | '.join(DTYPES)}: check and canonicalize raw values (int: '007' -> '7')",
    "min_count": "values seen fewer times in train are out of vocabulary (categorical, sequence)",
    "separator": "sequence: separator of the tokens in a text cell (default '|')",
    "max_len": "sequence: tokens kept (the first max_len)",
    "transform": "a registered transform applied to the raw value (pipelines.data.transforms)",
    "bucketize": "numeric: the (transformed) value's integer part is a category (default false)",
    "normalize": f"numeric, not bucketized: {' | '.join(NORMALIZATIONS)} (default standard)",
    "hash_buckets": "categorical/sequence: hash values into this many ids, no vocabulary",
    "range": "[low, high]: integer values outside are malformed rows",
}
LABEL_KEYS = {
    "column": "the label column (default 'label')",
    "positive": "values that mean 1 (default: 1 / 0 labels)",
    "negative": "values that mean 0 (with positive: any other value is a malformed row)",
}
SPLIT_KEYS = {
    "ratio": "train:valid:test weights of a seeded hash split of the rows, e.g. [8, 1, 1]",
    "seed": "seed of the hash split and of the train shuffle within a block",
    "files": "split -> glob pattern (or list of alternatives, the first that matches wins) "
    "inside the --data directory",
}


@dataclass(frozen=True)
class FieldSchema:
    """One model input field of a schema (see :data:`FIELD_KEYS`)."""

    name: str
    kind: str = "categorical"
    column: str = ""
    dtype: str | None = None
    min_count: int | None = None
    separator: str = "|"
    max_len: int | None = None
    transform: str | None = None
    bucketize: bool = False
    normalize: str = "standard"
    hash_buckets: int | None = None
    range: tuple[int, int] | None = None

    @property
    def source(self) -> str:
        return self.column or self.name

    @property
    def encoded_kind(self) -> str:
        """The manifest kind: ``categorical``, ``sequence``, ``numeric-bucketed`` (a numeric
        value used as a category) or ``numeric`` (a dense value)."""
        if self.kind == "numeric":
            return "numeric-bucketed" if self.bucketize else "numeric"
        return self.kind

    @property
    def dense(self) -> bool:
        return self.encoded_kind == "numeric"


@dataclass(frozen=True)
class LabelSchema:
    column: str = "label"
    positive: tuple[str, ...] | None = None
    negative: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SplitSchema:
    ratio: tuple[int, int, int] | None = None
    seed: int = 2023
    files: Mapping[str, tuple[str, ...]] | None = None


@dataclass(frozen=True)
class DatasetSchema:
    """A validated dataset schema. ``source`` is where it came from (for messages)."""

    name: str
    format: str
    fields: tuple[FieldSchema, ...]
    label: LabelSchema = LabelSchema()
    group_key: str | None = None
    splits: SplitSchema = SplitSchema(ratio=(8, 1, 1))
    header: bool = True
    columns: tuple[str, ...] | None = None
    delimiter: str | None = None
    encoding: str = "utf-8"
    min_count: int = 1
    description: str = ""
    source: str = ""

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> FieldSchema:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"`{name}` is not a field of {self.name}; fields are {self.field_names}")

    def min_count_of(self, field: FieldSchema, override: int | None = None) -> int:
        """A field's min count: its own, else ``override`` (``--min-count``), else the
        schema's default."""
        if field.min_count is not None:
            return field.min_count
        return self.min_count if override is None else int(override)

    @property
    def column_delimiter(self) -> str:
        if self.delimiter is not None:
            return self.delimiter
        return "\t" if self.format == "tsv" else ","

    def to_dict(self) -> dict[str, Any]:
        """The schema as plain data (what the manifest stores and the fingerprint hashes)."""
        out = _compact(self, DatasetSchema)
        out.pop("source", None)
        out["format"] = self.format
        out["fields"] = [_compact(f, FieldSchema) for f in self.fields]
        out["label"] = _compact(self.label, LabelSchema)
        splits = _compact(self.splits, SplitSchema)
        if self.splits.files is not None:
            splits["files"] = {k: list(v) for k, v in self.splits.files.items()}
        out["splits"] = splits
        return _plain(out)

    def digest(self) -> str:
        """sha256 of :meth:`to_dict` (part of the prepared data's fingerprint)."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _compact(obj, cls) -> dict[str, Any]:
    """Dataclass fields of ``obj`` except those at their default (schemas stay short)."""
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    return {
        k: v
        for k, v in dataclasses.asdict(obj).items()
        if k == "name" or v != defaults.get(k, dataclasses.MISSING)
    }


def _plain(value):
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# ----------------------------------------------------------------------------------- loading


def bundled_names() -> list[str]:
    """Names of the schemas bundled with the package (``--dataset NAME``)."""
    return sorted(p.stem for p in SCHEMA_DIR.glob("*.yaml"))


def bundled_path(name: str) -> Path:
    path = SCHEMA_DIR / f"{name}.yaml"
    if not path.is_file():
        raise DataError(
            f"Unknown dataset `{name}`. Bundled datasets: {', '.join(bundled_names())}; "
            "describe another one with a schema file (--schema PATH)."
        )
    return path


def load_schema(source: str | Path | Mapping[str, Any] | DatasetSchema) -> DatasetSchema:
    """Loads and validates a schema.

    Args:
        source: a schema YAML file, the name of a bundled schema (``frappe``), a mapping with the
            schema's keys, or a :class:`DatasetSchema` (returned as is).

    Raises:
        DataError: naming the file and the key for an unknown key, kind, format, transform name
            syntax or a value of the wrong type.
    """
    if isinstance(source, DatasetSchema):
        return source
    if isinstance(source, Mapping):
        return schema_from_dict(source, "<schema>")
    text = str(source)
    path = Path(text)
    if not path.suffix and "/" not in text and not path.exists():
        path = bundled_path(text)
    if not path.is_file():
        raise DataError(f"Schema file {path} does not exist.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise DataError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, Mapping):
        raise DataError(f"{path}: a schema is a mapping of keys ({', '.join(TOP_KEYS)}).")
    return schema_from_dict(data, str(path))


def _unknown(where: str, what: str, got: Mapping, valid: Mapping | tuple) -> None:
    bad = [k for k in got if k not in valid]
    if bad:
        raise DataError(
            f"{where}: unknown {what} key(s) {', '.join(map(repr, bad))}. "
            f"Valid keys: {', '.join(valid)}."
        )


def _choice(where: str, key: str, value, valid: tuple) -> str:
    if value not in valid:
        raise DataError(
            f"{where}: `{key}: {value}` is not valid. Valid values: {', '.join(valid)}."
        )
    return value


def _type(where: str, key: str, value, kinds, what: str):
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _tuple(kinds)):
        raise DataError(f"{where}: `{key}` must be {what}. Received: {value!r}")
    return value


def _tuple(kinds) -> tuple:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _positive_int(where: str, key: str, value) -> int:
    _type(where, key, value, int, "a positive integer")
    if value < 1:
        raise DataError(f"{where}: `{key}` must be a positive integer. Received: {value!r}")
    return value


def _values(where: str, key: str, value) -> tuple[str, ...]:
    """Label values as canonical tokens (``4`` and ``"4"`` are the same value)."""
    if not isinstance(value, list | tuple) or not value:
        raise DataError(f"{where}: `label.{key}` must be a non-empty list. Received: {value!r}")
    return tuple(canonical_token(v) for v in value)


def canonical_token(value) -> str:
    """The token of a raw scalar: integers and integral floats as decimal integers, other floats
    by ``repr``, bytes decoded as UTF-8, strings stripped. ``None`` and NaN are missing ("")."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, str):
        return value.strip(ASCII_SPACE)
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    number = float(value)
    if number != number:
        return ""
    if number.is_integer() and abs(number) < 2**63:
        return str(int(number))
    return repr(number)


def _field(entry, index: int, where: str, default_min_count_key: str) -> FieldSchema:
    at = f"{where}: fields[{index}]"
    if not isinstance(entry, Mapping):
        raise DataError(f"{at}: a field is a mapping with `name` and `kind`. Received: {entry!r}")
    _unknown(at, "field", entry, FIELD_KEYS)
    if "name" not in entry:
        raise DataError(f"{at}: a field needs a `name`.")
    name = _type(at, "name", entry["name"], str, "a string")
    at = f"{where}: field `{name}`"
    kind = _choice(at, "kind", entry.get("kind", "categorical"), KINDS)
    values: dict[str, Any] = {"name": name, "kind": kind}
    if "column" in entry:
        values["column"] = _type(at, "column", entry["column"], str, "a string")
    if "dtype" in entry:
        values["dtype"] = _choice(at, "dtype", entry["dtype"], DTYPES)
        if values["dtype"] == "float" and kind != "numeric":
            # a float category would need the pipeline's float formatting in the serving graph
            raise DataError(
                f"{at}: `dtype: float` is for numeric fields; a {kind} field takes int or str "
                "(a number used as a category: kind: numeric with bucketize: true)."
            )
    if "min_count" in entry:
        values["min_count"] = _positive_int(at, "min_count", entry["min_count"])
    if "transform" in entry:
        values["transform"] = _type(at, "transform", entry["transform"], str, "a transform name")
    if "range" in entry:
        bounds = entry["range"]
        if (
            not isinstance(bounds, list | tuple)
            or len(bounds) != 2
            or not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)
            or bounds[0] > bounds[1]
        ):
            raise DataError(f"{at}: `range` must be [low, high] integers. Received: {bounds!r}")
        values["range"] = (int(bounds[0]), int(bounds[1]))
    if kind == "sequence":
        if "max_len" not in entry:
            raise DataError(f"{at}: a sequence field needs `max_len`.")
        values["max_len"] = _positive_int(at, "max_len", entry["max_len"])
        if values["max_len"] > 8:
            raise DataError(f"{at}: `max_len` is at most 8. Received: {values['max_len']}")
        if "separator" in entry:
            sep = _type(at, "separator", entry["separator"], str, "a non-empty string")
            if not sep:
                raise DataError(f"{at}: `separator` must be a non-empty string.")
            values["separator"] = sep
    else:
        for key in ("max_len", "separator"):
            if key in entry:
                raise DataError(f"{at}: `{key}` is for sequence fields; this one is `{kind}`.")
    if kind == "numeric":
        values["bucketize"] = _type(
            at, "bucketize", entry.get("bucketize", False), bool, "true or false"
        )
        if "normalize" in entry:
            if values["bucketize"]:
                raise DataError(
                    f"{at}: `normalize` is for dense numeric fields, not bucketized ones."
                )
            values["normalize"] = _choice(at, "normalize", entry["normalize"], NORMALIZATIONS)
        if "hash_buckets" in entry:
            raise DataError(f"{at}: `hash_buckets` is for categorical and sequence fields.")
        if "min_count" in entry and not values["bucketize"]:
            raise DataError(
                f"{at}: `min_count` needs a vocabulary; a dense numeric field has none."
            )
        if values.get("dtype") == "str":
            raise DataError(f"{at}: a numeric field cannot have `dtype: str`.")
    else:
        for key in ("bucketize", "normalize"):
            if key in entry:
                raise DataError(f"{at}: `{key}` is for numeric fields; this one is `{kind}`.")
        if "hash_buckets" in entry:
            values["hash_buckets"] = _positive_int(at, "hash_buckets", entry["hash_buckets"])
            if "min_count" in entry:
                raise DataError(f"{at}: `min_count` and `hash_buckets` exclude each other.")
    return FieldSchema(**values)


def schema_from_dict(data: Mapping[str, Any], where: str) -> DatasetSchema:
    """Validates parsed schema data (``where`` names it in messages)."""
    _unknown(where, "schema", data, TOP_KEYS)
    for key in ("name", "format", "fields"):
        if key not in data:
            raise DataError(f"{where}: missing key `{key}` ({TOP_KEYS[key]}).")
    name = _type(where, "name", data["name"], str, "a string")
    if not name or "/" in name or name.startswith("."):
        raise DataError(f"{where}: `name` must be one path component. Received: {name!r}")
    fmt = _choice(where, "format", data["format"], FORMATS)
    values: dict[str, Any] = {"name": name, "format": fmt, "source": where}
    if "description" in data:
        values["description"] = str(data["description"])
    if "min_count" in data:
        values["min_count"] = _positive_int(where, "min_count", data["min_count"])
    if "encoding" in data:
        values["encoding"] = _type(where, "encoding", data["encoding"], str, "a codec name")
    text = fmt in ("csv", "tsv")
    for key in ("header", "columns", "delimiter"):
        if key in data and not text:
            raise DataError(f"{where}: `{key}` is for csv and tsv files; format is `{fmt}`.")
    if text:
        header = _type(
            where, "header", data.get("header", "columns" not in data), bool, "true or false"
        )
        values["header"] = header
        if "columns" in data:
            cols = data["columns"]
            if not isinstance(cols, list) or not cols or not all(isinstance(c, str) for c in cols):
                raise DataError(f"{where}: `columns` must be a list of column names.")
            if len(set(cols)) != len(cols):
                raise DataError(f"{where}: `columns` names a column twice: {cols}")
            values["columns"] = tuple(cols)
        elif not header:
            raise DataError(f"{where}: `header: false` needs `columns: [names in file order]`.")
        if "delimiter" in data:
            delim = _type(where, "delimiter", data["delimiter"], str, "one character")
            if len(delim) != 1:
                raise DataError(f"{where}: `delimiter` must be one character. Received: {delim!r}")
            values["delimiter"] = delim

    label = data.get("label", {})
    if not isinstance(label, Mapping):
        raise DataError(f"{where}: `label` must be a mapping such as {{column: clicked}}.")
    _unknown(f"{where}: label", "label", label, LABEL_KEYS)
    label_values: dict[str, Any] = {}
    if "column" in label:
        label_values["column"] = _type(where, "label.column", label["column"], str, "a string")
    for key in ("positive", "negative"):
        if key in label:
            label_values[key] = _values(where, key, label[key])
    if "negative" in label_values and "positive" not in label_values:
        raise DataError(f"{where}: `label.negative` needs `label.positive`.")
    values["label"] = LabelSchema(**label_values)

    splits = data.get("splits", {"ratio": [8, 1, 1]})
    if not isinstance(splits, Mapping):
        raise DataError(f"{where}: `splits` must be a mapping (ratio + seed, or files).")
    _unknown(f"{where}: splits", "splits", splits, SPLIT_KEYS)
    split_values: dict[str, Any] = {}
    if "ratio" in splits:
        ratio = splits["ratio"]
        if (
            not isinstance(ratio, list | tuple)
            or len(ratio) != 3
            or not all(isinstance(r, int) and not isinstance(r, bool) and r >= 0 for r in ratio)
            or ratio[0] < 1
            or sum(ratio) < 1
        ):
            raise DataError(
                f"{where}: `splits.ratio` must be three non-negative integers, train > 0. "
                f"Received: {ratio!r}"
            )
        split_values["ratio"] = tuple(int(r) for r in ratio)
    if "seed" in splits:
        split_values["seed"] = _type(where, "splits.seed", splits["seed"], int, "an integer")
    if "files" in splits:
        files = splits["files"]
        if not isinstance(files, Mapping) or set(files) != set(SPLITS):
            raise DataError(
                f"{where}: `splits.files` must map each of train, valid, test to a glob pattern "
                f"(or a list of alternatives). Received: {files!r}"
            )
        patterns = {}
        for split in SPLITS:
            value = files[split]
            value = [value] if isinstance(value, str) else value
            if (
                not isinstance(value, list)
                or not value
                or not all(isinstance(v, str) for v in value)
            ):
                raise DataError(f"{where}: `splits.files.{split}` must be a pattern or a list.")
            patterns[split] = tuple(value)
        split_values["files"] = patterns
    if "ratio" not in split_values and "files" not in split_values:
        raise DataError(f"{where}: `splits` needs `ratio` or `files`.")
    values["splits"] = SplitSchema(**split_values)

    entries = data["fields"]
    if not isinstance(entries, list) or not entries:
        raise DataError(f"{where}: `fields` must be a non-empty list of fields.")
    fields = tuple(_field(e, i, where, "min_count") for i, e in enumerate(entries))
    names = [f.name for f in fields]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataError(f"{where}: field name(s) {dupes} declared twice.")
    if values["label"].column in [f.source for f in fields]:
        raise DataError(f"{where}: the label column `{values['label'].column}` is also a field.")
    values["fields"] = fields
    if "group_key" in data and data["group_key"] is not None:
        values["group_key"] = _type(where, "group_key", data["group_key"], str, "a column name")
    columns = values.get("columns")
    if columns is not None:
        needed = [values["label"].column, *(f.source for f in fields)]
        if values.get("group_key") and values["group_key"] not in names:
            needed.append(values["group_key"])
        absent = [c for c in needed if c not in columns]
        if absent:
            raise DataError(f"{where}: column(s) {absent} are not in `columns` {list(columns)}.")
    return DatasetSchema(**values)
