"""Raw feature values from encoded rows (the inverse of the pipeline's encoder).

Used to build representative warmup requests (and, for vocabulary fields, the raw-vs-encoded
parity check) from a prepared split, where the raw files may be gone. A vocabulary field's id
maps back to a raw value that the serving graph maps to the same id: the token itself, or for
a number transform the value its registered ``raw_for`` gives. Hashed fields (no vocabulary)
and dense numeric fields (a normalized float32) get representative values, not exact ones.
"""

from __future__ import annotations

import math

import numpy as np

from pipelines.data.manifest import Manifest
from pipelines.data.transforms import get_transform

OOV_TOKEN = "\x00oov"  # never a vocabulary line: the pipeline's tokens hold no NUL


class RawDecoder:
    """Maps encoded id arrays back to raw values, field by field."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self.vocab = {f.name: manifest.vocabulary(f.name) for f in manifest.fields}
        for name, tokens in self.vocab.items():
            if OOV_TOKEN in tokens:
                raise ValueError(f"Vocabulary of `{name}` holds the reserved OOV token.")

    def _token(self, field, tokens: list[str], i: int, reserved: int) -> str:
        if field.hash_buckets:
            return f"hashed-{i}"
        return OOV_TOKEN if i < reserved else tokens[i - reserved]

    def decode(self, ids: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raw = {}
        for field in self.manifest.fields:
            values = np.asarray(ids[field.name])
            tokens = self.vocab[field.name]
            transform = get_transform(field.transform) if field.transform else None
            if field.is_sequence:
                cells = []
                for row in values.reshape(len(values), -1):
                    parts = [self._token(field, tokens, int(i), 2) for i in row if i != 0]
                    cells.append(field.separator.join(parts))
                raw[field.name] = np.asarray(cells, dtype=object)
            elif field.is_dense:
                norm = field.normalization
                x = values.reshape(-1).astype(np.float64) * norm["scale"] + norm["shift"]
                if transform is not None and transform.raw_for is not None:
                    x = np.asarray([v if math.isnan(v) else transform.raw_for(v) for v in x])
                raw[field.name] = x
            elif field.is_numeric:
                to_raw = transform.raw_for if transform is not None and transform.raw_for else float
                raw[field.name] = np.asarray(
                    [math.nan if i == 0 else to_raw(tokens[i - 1]) for i in values.reshape(-1)],
                    dtype=np.float64,
                )
            else:
                raw[field.name] = np.asarray(
                    [
                        "" if i == 0 else self._token(field, tokens, int(i), 1)
                        for i in values.reshape(-1)
                    ],
                    dtype=object,
                )
        return raw
