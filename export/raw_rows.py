"""Raw feature values from encoded rows (the inverse of the pipeline's encoder).

Used to build representative warmup requests and the raw-vs-encoded parity check from a
prepared split, where the raw files may be gone: every id maps back to a raw value that the
serving graph maps to the same id.
"""

from __future__ import annotations

import math

import numpy as np

from pipelines.data.datasets.criteo import LOG_SQUARED
from pipelines.data.datasets.kkbox import AGE_BUCKET, ISRC_COUNTRY
from pipelines.data.manifest import Manifest

OOV_TOKEN = "\x00oov"  # never a vocabulary line: the pipeline's tokens hold no NUL


def representative_raw_number(token: str) -> float:
    """A raw integer whose Criteo_x4 transform is ``int(token)`` (``v > 2 -> floor(ln(v)^2)``)."""
    target = int(token)
    if target <= 2:
        return float(target)
    v = max(3, math.ceil(math.exp(math.sqrt(target))) - 2)
    while math.floor(math.log(v) ** 2) < target:
        v += 1
    if math.floor(math.log(v) ** 2) != target:
        raise ValueError(f"No integer maps to transformed value {target}.")
    return float(v)


def representative_age(token: str) -> float:
    """An age in KKBox bucket ``token`` ("1": [1, 10], ..., "6": (50, 60], "7": (60, 95])."""
    bucket = int(token)
    return 70.0 if bucket == 7 else 10.0 * bucket - 5.0


# transform name -> raw value for a vocabulary token (None: the token itself is a raw value).
RAW_FOR_TOKEN = {
    LOG_SQUARED: representative_raw_number,
    AGE_BUCKET: representative_age,
    ISRC_COUNTRY: None,
}


class RawDecoder:
    """Maps encoded id arrays back to raw values, field by field."""

    def __init__(self, manifest: Manifest, sequence_separator: str = "|") -> None:
        self.manifest = manifest
        self.separator = sequence_separator
        self.vocab = {f.name: manifest.vocabulary(f.name) for f in manifest.fields}
        for name, tokens in self.vocab.items():
            if OOV_TOKEN in tokens:
                raise ValueError(f"Vocabulary of `{name}` holds the reserved OOV token.")

    def decode(self, ids: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raw = {}
        for field in self.manifest.fields:
            values = np.asarray(ids[field.name])
            tokens = self.vocab[field.name]
            if field.kind == "sequence":
                cells = []
                for row in values.reshape(len(values), -1):
                    parts = [OOV_TOKEN if i == 1 else tokens[i - 2] for i in row if i != 0]
                    cells.append(self.separator.join(parts))
                raw[field.name] = np.asarray(cells, dtype=object)
            elif RAW_FOR_TOKEN.get(field.transform) is not None:
                to_raw = RAW_FOR_TOKEN[field.transform]
                raw[field.name] = np.asarray(
                    [math.nan if i == 0 else to_raw(tokens[i - 1]) for i in values.reshape(-1)],
                    dtype=np.float64,
                )
            else:
                raw[field.name] = np.asarray(
                    ["" if i == 0 else tokens[i - 1] for i in values.reshape(-1)], dtype=object
                )
        return raw
