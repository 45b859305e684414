"""Generator of Criteo-format data of any size, with labels from a known model.

Layout: the Kaggle ``train.txt`` one (tab-separated, no header): label, 13 integer columns (some
empty, I2 sometimes negative, heavy-tailed) and 26 categorical columns of 8 hex digits with
Zipf-like frequencies (some empty). The label is ``Bernoulli(sigmoid(logit))`` with a fixed,
documented model (:class:`CriteoLabelModel`): per-category effects on six categorical fields,
log-count effects of four integer fields, and two pairwise terms (C1 x C2, I1 x C6). The base
rate is about 25 %, and a model trained on about 100 k rows reaches an AUC well above 0.7.

Streaming: rows are produced in blocks of ``BLOCK_ROWS`` with numpy, block ``b`` from
``default_rng([seed, b])``, and the text of a block is assembled as a byte matrix, so memory is
constant in the number of rows and the same seed gives a byte-identical file (gzip written with
mtime 0 and no name).

CLI::

    python -m pipelines.generate --rows 1000000 --seed 7 --out /tmp/criteo.txt.gz
"""

from __future__ import annotations

import logging
import time

import numpy as np

from pipelines.data import fileio

logger = logging.getLogger(__name__)

BLOCK_ROWS = 65_536
N_INT = 13
N_CAT = 26
# Distinct values per categorical field (bounded, so vocabularies stop growing with rows).
CARDINALITIES = (
    1_400,
    550,
    100_000,
    60_000,
    300,
    25,
    12_000,
    600,
    4,
    60_000,
    5_500,
    80_000,
    3_200,
    27,
    14_000,
    90_000,
    10,
    5_600,
    2_100,
    5,
    90_000,
    17,
    15,
    40_000,
    100,
    30_000,
)
CAT_MISSING = (
    0.0,
    0.0,
    0.03,
    0.03,
    0.0,
    0.12,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.03,
    0.0,
    0.0,
    0.0,
    0.03,
    0.0,
    0.0,
    0.44,
    0.44,
    0.03,
    0.76,
    0.0,
    0.03,
    0.44,
    0.44,
)
INT_MISSING = (0.45, 0.0, 0.2, 0.2, 0.03, 0.22, 0.04, 0.0, 0.04, 0.45, 0.04, 0.77, 0.2)
INT_LOG_MEAN = (0.5, 1.5, 2.0, 1.5, 8.0, 4.0, 1.5, 2.5, 3.5, 0.2, 1.0, 0.3, 2.0)
INT_LOG_STD = (1.0, 2.0, 1.5, 1.0, 2.0, 2.0, 1.5, 1.2, 1.5, 0.6, 1.0, 0.8, 1.2)
ZIPF_EXPONENT = 1.1
MODEL_SEED = 20240601
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)


class CriteoLabelModel:
    """The known label model: ``logit = b + sum of effects``, ``label ~ Bernoulli(sigmoid)``.

    * categorical main effects: C1, C2, C5, C6, C9, C14 each have a table ``N(0, 0.8)`` indexed
      by the value's frequency rank;
    * integer effects: ``w_j * (log1p(max(I_j, 0)) - mean_j)`` for I1, I3, I5, I7 (missing: 0);
    * pairwise: ``T[rank(C1) % 16, rank(C2) % 16]`` with ``T ~ N(0, 1)`` and
      ``log1p(max(I1, 0)) * u[rank(C6) % 8]`` with ``u ~ N(0, 0.5)``;
    * intercept ``-3.5`` (about 25 % positives; the model's Bayes AUC is about 0.89).

    The tables come from a fixed seed, so every generated file shares the model.
    """

    main_fields = (0, 1, 4, 5, 8, 13)
    int_fields = (0, 2, 4, 6)
    int_weights = (0.4, -0.3, 0.25, 0.3)
    intercept = -3.5

    def __init__(self):
        rng = np.random.default_rng(MODEL_SEED)
        self.main = {j: rng.normal(0.0, 0.8, CARDINALITIES[j]) for j in self.main_fields}
        self.pair = rng.normal(0.0, 1.0, (16, 16))
        self.cross = rng.normal(0.0, 0.5, 8)

    def logit(
        self, ints: np.ndarray, int_missing: np.ndarray, ranks: np.ndarray, cat_missing: np.ndarray
    ) -> np.ndarray:
        """Logits of a block: ``ints`` [n, 13] (values), ranks [n, 26] (frequency ranks)."""
        logit = np.full(len(ints), self.intercept)
        for j in self.main_fields:
            logit += np.where(cat_missing[:, j], 0.0, self.main[j][ranks[:, j]])
        for j, w in zip(self.int_fields, self.int_weights, strict=True):
            x = np.log1p(np.maximum(ints[:, j], 0)) - INT_LOG_MEAN[j]
            logit += np.where(int_missing[:, j], 0.0, w * x)
        logit += self.pair[ranks[:, 0] % 16, ranks[:, 1] % 16]
        i1 = np.where(int_missing[:, 0], 0.0, np.log1p(np.maximum(ints[:, 0], 0)))
        logit += np.where(cat_missing[:, 5], 0.0, i1 * self.cross[ranks[:, 5] % 8])
        return logit


def _zipf_cdfs() -> list[np.ndarray]:
    cdfs = []
    for n in CARDINALITIES:
        weights = 1.0 / np.arange(1, n + 1) ** ZIPF_EXPONENT
        cdf = np.cumsum(weights)
        cdfs.append(cdf / cdf[-1])
    return cdfs


def _hash32(ranks: np.ndarray, field: int) -> np.ndarray:
    # A fixed bijective mix of (field, rank) -> 32 bits, so values look like Criteo's hashes.
    z = (ranks.astype(np.uint64) + np.uint64(field + 1) * np.uint64(0x9E3779B1)) & np.uint64(
        0xFFFFFFFF
    )
    z = ((z ^ (z >> np.uint64(16))) * np.uint64(0x45D9F3B)) & np.uint64(0xFFFFFFFF)
    z = ((z ^ (z >> np.uint64(16))) * np.uint64(0x45D9F3B)) & np.uint64(0xFFFFFFFF)
    return z ^ (z >> np.uint64(16))


def _decimal_columns(
    values: np.ndarray, missing: np.ndarray, width: int = 12
) -> tuple[np.ndarray, np.ndarray]:
    """Right-aligned decimal text of ints as ``(n, width+1)`` bytes and a validity mask."""
    negative = values < 0
    mag = np.abs(values).astype(np.int64)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    digits = (mag[:, None] // powers[None, :]) % 10
    ndigits = np.maximum(1, np.floor(np.log10(np.maximum(mag, 1))).astype(np.int64) + 1)
    mask = np.arange(width)[None, :] >= (width - ndigits)[:, None]
    sign = np.full((len(values), 1), ord("-"), dtype=np.uint8)
    chars = np.concatenate([sign, DIGITS[digits]], axis=1)
    sign_mask = negative[:, None]
    full_mask = np.concatenate([sign_mask, mask], axis=1) & ~missing[:, None]
    return chars, full_mask


class CriteoGenerator:
    """Block-wise generator; :meth:`block` returns the text and labels of block ``b``."""

    def __init__(self, seed: int):
        self.seed = int(seed)
        self.model = CriteoLabelModel()
        self._cdfs = _zipf_cdfs()

    def sample(self, block: int, rows: int):
        """Draws a block: ``(ints, int_missing, ranks, cat_missing, labels)``."""
        rng = np.random.default_rng([self.seed, block])
        int_missing = rng.random((rows, N_INT)) < np.array(INT_MISSING)
        z = rng.standard_normal((rows, N_INT))
        ints = np.floor(
            np.expm1(np.maximum(np.array(INT_LOG_MEAN) + np.array(INT_LOG_STD) * z, 0))
        ).astype(np.int64)
        ints[:, 1] -= (rng.random(rows) < 0.1) * rng.integers(1, 4, rows)  # I2 can be negative
        ranks = np.empty((rows, N_CAT), dtype=np.int64)
        u = rng.random((rows, N_CAT))
        for j in range(N_CAT):
            ranks[:, j] = np.searchsorted(self._cdfs[j], u[:, j])
        ranks = np.minimum(ranks, np.array(CARDINALITIES) - 1)
        cat_missing = rng.random((rows, N_CAT)) < np.array(CAT_MISSING)
        logit = self.model.logit(ints, int_missing, ranks, cat_missing)
        labels = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
        return ints, int_missing, ranks, cat_missing, labels

    def block(self, block: int, rows: int) -> bytes:
        """Tab-separated text of the first ``rows`` rows of block ``block``.

        The whole block is always drawn, so a file's first N rows do not depend on its length.
        """
        drawn = self.sample(block, BLOCK_ROWS)
        ints, int_missing, ranks, cat_missing, labels = (a[:rows] for a in drawn)
        tab = np.full((rows, 1), ord("\t"), dtype=np.uint8)
        ones = np.ones((rows, 1), dtype=bool)
        parts = [DIGITS[labels][:, None]]
        masks = [ones]
        for j in range(N_INT):
            chars, mask = _decimal_columns(ints[:, j], int_missing[:, j])
            parts += [tab, chars]
            masks += [ones, mask]
        shifts = np.arange(28, -1, -4, dtype=np.uint64)
        for j in range(N_CAT):
            h = _hash32(ranks[:, j], j)
            chars = HEX[((h[:, None] >> shifts[None, :]) & np.uint64(0xF)).astype(np.int64)]
            parts += [tab, chars]
            masks += [ones, np.repeat(~cat_missing[:, j : j + 1], 8, axis=1)]
        parts.append(np.full((rows, 1), ord("\n"), dtype=np.uint8))
        masks.append(ones)
        return np.concatenate(parts, axis=1)[np.concatenate(masks, axis=1)].tobytes()


def generate_criteo(path: str, rows: int, seed: int = 0) -> str:
    """Writes ``rows`` rows of Criteo-format data to ``path`` (gzip if it ends with ``.gz``).

    Args:
        path: local path or TensorFlow file system URI.
        rows: number of rows (>= 1).
        seed: data seed; the same seed gives a byte-identical file.

    Returns:
        ``path``, which appears only when complete: rows go to a temporary file beside it (same
        directory, so gzip is decided by ``path``) and it is renamed at the end, so a killed run
        never leaves a truncated file that a rerun would take as finished.
    """
    if rows < 1:
        raise ValueError(f"`rows` must be >= 1. Received: `rows={rows}`")
    gen = CriteoGenerator(seed)
    start = time.perf_counter()
    with (
        fileio.atomic_output(path) as partial,
        fileio.open_write_binary(partial, compress=path.endswith(".gz")) as out,
    ):
        done = 0
        block = 0
        while done < rows:
            n = min(BLOCK_ROWS, rows - done)
            out.write(gen.block(block, n))
            done += n
            block += 1
            if block % 16 == 0:
                logger.info(
                    "%d / %d rows (%.0f rows/s)", done, rows, done / (time.perf_counter() - start)
                )
    logger.info(
        "Wrote %d Criteo-format rows to %s in %.1f s", rows, path, time.perf_counter() - start
    )
    return path
