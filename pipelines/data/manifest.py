"""``manifest.json``: the single source of truth for a prepared dataset.

Training, tuning and export read vocabulary sizes, field order, splits and shards from here and
re-derive nothing. :func:`load_manifest` validates the file and returns a frozen view.

Schema (``schema_version`` 1)::

    {
      "schema_version": 1,
      "dataset": "frappe",
      "label_key": "label",
      "group_key": "user",                      # or null
      "fields": [                                # model input order
        {"name": "user", "kind": "categorical",  # categorical | numeric-bucketed | sequence
         "vocab_size": 943,                      # embedding input dim (Keras lookup convention)
         "num_tokens": 942,                      # lines in the vocab file
         "reference_vocab_size": 944,            # FuxiCTR convention (PAD + OOV)
         "vocab_file": "vocab/user.txt",
         "train_distinct": 957,                  # distinct train values before the min count
         "max_len": 3, "separator": "|",         # sequence only
         "transform": "log_squared",             # a registered transform (pipelines.data.transforms)
         "column": "user",                       # the raw column / tf.Example feature
         "min_count": 2},                        # vocabulary fields
        {"name": "ad_id", "kind": "categorical", "hash_buckets": 1000,   # hashed: no vocabulary
         "vocab_size": 1001, "num_tokens": 0, "vocab_file": null},
        {"name": "year", "kind": "numeric",      # dense: a float input, NaN = missing
         "vocab_size": 2, "num_tokens": 0, "vocab_file": null,          # rows: missing, value
         "normalization": {"method": "standard", "shift": 2007.1, "scale": 9.8, "count": 480,
                           "mean": ..., "min": ..., "max": ...}}
      ],
      "schema": {...},                           # the dataset schema (pipelines.data.schema)
      "splits": {"train": {"rows": 202027, "positives": 67604,
                           "shards": [{"file": "train-00000-of-00008.tfrecord.gz",
                                       "rows": 25254, "sha256": "..."}]}, ...},
      "malformed": {"train": {"frappe.train.libfm": {"wrong_column_count": 0}}, ...},
      "malformed_examples": ["file line 17: expected ...", ...],
      "fingerprint": "sha256 of raw-file identities + options + pipeline version",
      "options": {"min_count": 2, "shards": 8, "seed": 2018, "block_bytes": 16777216,
                  "split": "official" | "hash 8:1:1", ...spec options},
      "max_bad_fraction": 0.01,
      "raw_files": [{"path", "bytes", "mtime_ns", "head_sha256", "split"}],
      "reference_vocab_total": 5370,
      "id_convention": "...", "vocab_order": "...", "pipeline_version": 1,
      "created": "2026-01-01T00:00:00+00:00"
    }
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
SPLITS = ("train", "valid", "test")
KINDS = ("categorical", "numeric-bucketed", "sequence", "numeric")
ID_CONVENTION = (
    "Keras lookup: categorical/numeric id 0 = OOV (unseen, below min count, missing), vocab line "
    "i (0-based) = id i + 1, vocab_size = len(vocab) + 1; sequence id 0 = padding, 1 = OOV, "
    "vocab line i = id i + 2, vocab_size = len(vocab) + 2."
)


@dataclass(frozen=True)
class FieldInfo:
    """One model input field of a prepared dataset."""

    name: str
    kind: str
    vocab_size: int
    num_tokens: int
    vocab_file: str | None
    max_len: int | None = None
    transform: str | None = None
    reference_vocab_size: int | None = None
    column: str | None = None
    separator: str = "|"
    hash_buckets: int | None = None
    normalization: dict[str, Any] | None = None

    @property
    def is_sequence(self) -> bool:
        return self.kind == "sequence"

    @property
    def is_dense(self) -> bool:
        """A dense numeric input (a float; the model learns a vector scaled by it)."""
        return self.kind == "numeric"

    @property
    def is_numeric(self) -> bool:
        """Clients send a number (dense or bucketized numeric fields)."""
        return self.kind in ("numeric", "numeric-bucketed")


@dataclass(frozen=True)
class ShardInfo:
    file: str
    rows: int
    sha256: str
    bytes: int | None = None  # None in manifests written before sizes were recorded


@dataclass(frozen=True)
class SplitInfo:
    rows: int
    positives: int
    shards: tuple[ShardInfo, ...]


# The int64 feature that holds each record's gAUC group: a hash of the group field's raw value
# (pipelines.data.prepare.group_ids), so that users below the min count or unseen in train keep
# their own groups, as the reference's `group_id: copy_from(user), remap: False` does.
GROUP_FEATURE = "__group__"


@dataclass(frozen=True)
class Manifest:
    """Frozen view of ``manifest.json``; ``raw`` keeps the full parsed JSON."""

    directory: Path
    dataset: str
    label_key: str
    group_key: str | None
    fields: tuple[FieldInfo, ...]
    splits: dict[str, SplitInfo]
    fingerprint: str
    options: dict[str, Any]
    created: str
    raw: dict[str, Any]

    @property
    def group_feature(self) -> str | None:
        """The records' raw-value group feature (:data:`GROUP_FEATURE`), or None for data
        prepared before it existed (gAUC then groups by the encoded ids of ``group_key``)."""
        return self.raw.get("group_feature")

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def vocab_sizes(self) -> dict[str, int]:
        """Ordered ``field -> vocab_size`` (the embedding input dims) for the model builders."""
        return {f.name: f.vocab_size for f in self.fields}

    @property
    def numeric_fields(self) -> list[str]:
        """The dense numeric fields (model inputs of float values, NaN = missing)."""
        return [f.name for f in self.fields if f.is_dense]

    @property
    def schema(self) -> dict[str, Any] | None:
        """The dataset schema the data was prepared with (``None`` in older manifests)."""
        return self.raw.get("schema")

    @property
    def sequence_fields(self) -> dict[str, int]:
        """``field -> max_len`` of the sequence fields."""
        return {f.name: int(f.max_len) for f in self.fields if f.is_sequence}

    def field(self, name: str) -> FieldInfo:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"Unknown field `{name}`; fields are {self.field_names}")

    def vocab_path(self, name: str) -> Path:
        field = self.field(name)
        if field.vocab_file is None:
            raise ValueError(f"Field `{name}` ({field.kind}) has no vocabulary file.")
        return self.directory / field.vocab_file

    def vocabulary(self, name: str) -> list[str]:
        """The vocabulary tokens of a field, in id order (line i -> id i + 1, or i + 2)."""
        if self.field(name).vocab_file is None:
            return []
        text = self.vocab_path(name).read_text(encoding="utf-8")
        return text.split("\n")[:-1] if text else []

    def shard_problems(self, verify: bool = False) -> list[str]:
        """What is wrong with the shards on disk: missing, another size than the manifest
        records (a truncated copy) or, with ``verify``, another sha256. Empty when sound."""
        from pipelines.data.fileio import sha256_file  # TensorFlow's file layer: only here

        problems = []
        for split in self.splits.values():
            for shard in split.shards:
                path = self.directory / shard.file
                if not path.is_file():
                    problems.append(f"{path}: missing")
                    continue
                size = path.stat().st_size
                if shard.bytes is not None and size != shard.bytes:
                    problems.append(f"{path}: {size} bytes, the manifest records {shard.bytes}")
                    continue
                if verify and sha256_file(str(path)) != shard.sha256:
                    problems.append(f"{path}: sha256 differs from the manifest's")
        return problems

    def shard_paths(self, split: str) -> list[str]:
        if split not in self.splits:
            raise ValueError(f"Unknown split `{split}`; splits are {sorted(self.splits)}")
        return [str(self.directory / s.file) for s in self.splits[split].shards]


def _require(obj: dict, key: str, where: str):
    if key not in obj:
        raise ValueError(f"{where}: missing key `{key}`")
    return obj[key]


def manifest_from_dict(data: dict[str, Any], directory: Path) -> Manifest:
    """Validates a parsed manifest and returns its frozen view.

    Raises:
        ValueError: on a wrong schema version, a missing key, an unknown field kind or a
            vocabulary size that breaks the id convention.
    """
    where = str(directory / MANIFEST_NAME)
    version = _require(data, "schema_version", where)
    if version != SCHEMA_VERSION:
        raise ValueError(
            f"{where}: schema_version {version} is not supported (expected {SCHEMA_VERSION})"
        )
    fields = []
    for entry in _require(data, "fields", where):
        name = _require(entry, "name", where)
        kind = _require(entry, "kind", where)
        if kind not in KINDS:
            raise ValueError(f"{where}: field `{name}` has kind `{kind}`; expected one of {KINDS}")
        num_tokens = int(_require(entry, "num_tokens", where))
        vocab_size = int(_require(entry, "vocab_size", where))
        reserved = 2 if kind in ("sequence", "numeric") else 1
        hashed = entry.get("hash_buckets")
        expected = (hashed if hashed else num_tokens) + reserved
        if vocab_size != expected:
            raise ValueError(
                f"{where}: field `{name}` vocab_size {vocab_size} != "
                f"{'hash_buckets' if hashed else 'num_tokens'} {expected - reserved} + {reserved}"
            )
        if kind == "numeric" and not isinstance(entry.get("normalization"), dict):
            raise ValueError(f"{where}: numeric field `{name}` needs `normalization`")
        if kind == "sequence" and not entry.get("max_len"):
            raise ValueError(f"{where}: sequence field `{name}` needs `max_len`")
        fields.append(
            FieldInfo(
                name=name,
                kind=kind,
                vocab_size=vocab_size,
                num_tokens=num_tokens,
                vocab_file=_require(entry, "vocab_file", where),
                max_len=entry.get("max_len"),
                transform=entry.get("transform"),
                reference_vocab_size=entry.get("reference_vocab_size"),
                column=entry.get("column"),
                separator=entry.get("separator", "|"),
                hash_buckets=hashed,
                normalization=entry.get("normalization"),
            )
        )
    splits = {}
    for split, info in _require(data, "splits", where).items():
        shards = tuple(
            ShardInfo(file=s["file"], rows=int(s["rows"]), sha256=s["sha256"], bytes=s.get("bytes"))
            for s in info["shards"]
        )
        if sum(s.rows for s in shards) != int(info["rows"]):
            raise ValueError(f"{where}: split `{split}` shard rows do not add up to {info['rows']}")
        splits[split] = SplitInfo(
            rows=int(info["rows"]), positives=int(info["positives"]), shards=shards
        )
    missing = [s for s in SPLITS if s not in splits]
    if missing:
        raise ValueError(f"{where}: missing splits {missing}")
    return Manifest(
        directory=directory,
        dataset=_require(data, "dataset", where),
        label_key=_require(data, "label_key", where),
        group_key=data.get("group_key"),
        fields=tuple(fields),
        splits=splits,
        fingerprint=_require(data, "fingerprint", where),
        options=dict(data.get("options", {})),
        created=data.get("created", ""),
        raw=data,
    )


def load_manifest(path: str | Path | Manifest) -> Manifest:
    """Loads and validates ``manifest.json``.

    Args:
        path: a prepared dataset directory, its ``manifest.json``, or a :class:`Manifest`
            (returned unchanged).

    Raises:
        FileNotFoundError: if there is no manifest (the dataset is not prepared, or a run was
            killed before finishing).
        ValueError: if the manifest is invalid.
    """
    if isinstance(path, Manifest):
        return path
    path = Path(path)
    file = path if path.name == MANIFEST_NAME else path / MANIFEST_NAME
    if not file.is_file():
        raise FileNotFoundError(
            f"{file}: no manifest. Prepare the dataset first: python -m pipelines.prepare "
            "--dataset NAME (or --schema PATH) --data PATH --out DATA_DIR"
        )
    data = json.loads(file.read_text(encoding="utf-8"))
    return manifest_from_dict(data, file.parent)
