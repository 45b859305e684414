"""The transform registry: each raw-value transform defined once, in NumPy and in TensorFlow.

Preprocessing applies a field's transform with its NumPy form; export builds the serving graph
from the manifest's schema with the TensorFlow form of the same registered transform, so the
served model sees exactly the values training saw (``tests/test_own_data.py`` sends the same raw
rows through both, every kind and transform, unseen, empty, missing and NaN values included).

A transform maps a number to a number (``float64`` array in, ``float64`` out, NaN = missing) or a
string to a string (object array of ``str`` in and out, ``""`` = missing). A missing input must
give a missing output; an output that is NaN or infinite is a missing value.

Adding one: define both forms and register them, in this module or in your own module, and name
it in the schema (``transform: log_price`` after registering here, or ``transform:
my_package.my_module:log_price`` for an object in your module)::

    import numpy as np
    from pipelines.data.transforms import Transform

    def _np(x):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.log(np.round(x, 2) + 1.0)

    def _tf(x):
        import tensorflow as tf
        return tf.math.log(tf.round(x * 100.0) / 100.0 + 1.0)

    log_price = Transform("log_price", "number", _np, _tf, "log(1 + price rounded to cents)")

Export refuses a transform without a TensorFlow form, naming it. Both forms compute in
float64; keep them op for op the same (NumPy and TensorFlow round half to even alike).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipelines.data.errors import DataError

KINDS = ("number", "string")


@dataclass(frozen=True)
class Transform:
    """A raw-value transform.

    Args:
        name: the name schemas use.
        kind: ``"number"`` (float64 -> float64) or ``"string"`` (str -> str).
        numpy: the preprocessing form, vectorized over an array.
        tensorflow: the serving-graph form (a ``tf.Tensor`` function), or ``None`` when there is
            none (such a field cannot be exported).
        doc: one line for the README table.
        raw_for: optional inverse for warmup requests: a raw value whose transform is the given
            output value (a float for number transforms, a string for string ones).
    """

    name: str
    kind: str
    numpy: Callable[[np.ndarray], np.ndarray]
    tensorflow: Callable | None = None
    doc: str = ""
    raw_for: Callable | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Transform `{self.name}`: kind must be one of {KINDS}.")

    def apply(self, values: np.ndarray) -> np.ndarray:
        """The NumPy form, with missing inputs kept missing and non-finite outputs missing."""
        if self.kind == "number":
            values = np.asarray(values, dtype=np.float64)
            with np.errstate(all="ignore"):
                out = np.asarray(self.numpy(values), dtype=np.float64)
            return np.where(np.isfinite(out) & ~np.isnan(values), out, np.nan)
        values = np.asarray(values, dtype=object)
        out = np.asarray(self.numpy(values), dtype=object)
        return np.where(values == "", "", out).astype(object)

    def apply_tf(self, values):
        """The TensorFlow form with the same missing-value rules as :meth:`apply`."""
        if self.tensorflow is None:
            raise DataError(
                f"Transform `{self.name}` has no TensorFlow form, so the serving graph cannot "
                "apply it; give it one (pipelines.data.transforms) before exporting."
            )
        import tensorflow as tf

        if self.kind == "number":
            x = tf.cast(values, tf.float64)
            out = tf.cast(self.tensorflow(x), tf.float64)
            ok = tf.math.is_finite(out) & ~tf.math.is_nan(x)
            return tf.where(ok, out, tf.constant(math.nan, tf.float64))
        out = self.tensorflow(values)
        return tf.where(tf.equal(values, ""), tf.constant("", tf.string), out)


TRANSFORMS: dict[str, Transform] = {}


def register(transform: Transform) -> Transform:
    """Adds ``transform`` to the registry (a name is registered once)."""
    if transform.name in TRANSFORMS:
        raise ValueError(f"Transform `{transform.name}` is already registered.")
    TRANSFORMS[transform.name] = transform
    return transform


def get_transform(name: str) -> Transform:
    """A registered transform, or ``module:attribute`` naming a :class:`Transform` object.

    Raises:
        DataError: for an unknown name (listing the registered ones) or an import path that
            does not lead to a :class:`Transform`.
    """
    if name in TRANSFORMS:
        return TRANSFORMS[name]
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            obj = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as error:
            raise DataError(f"Transform `{name}`: cannot import it ({error}).") from None
        if not isinstance(obj, Transform):
            raise DataError(f"Transform `{name}` is a {type(obj).__name__}, not a Transform.")
        return obj
    raise DataError(
        f"Unknown transform `{name}`. Registered: {', '.join(TRANSFORMS)}; or name your own "
        "as module:attribute (see pipelines/data/transforms.py)."
    )


# ------------------------------------------------------------------------------ built-ins


def _log_squared(x: np.ndarray) -> np.ndarray:
    big = np.floor(np.log(np.where(x > 2, x, 3.0)) ** 2)
    return np.where(x > 2, big, np.trunc(x))


def _log_squared_tf(x):
    import tensorflow as tf

    big = tf.floor(tf.square(tf.math.log(tf.where(x > 2, x, tf.constant(3.0, tf.float64)))))
    return tf.where(x > 2, big, tf.where(x >= 0, tf.floor(x), tf.math.ceil(x)))


def _log_squared_raw(token: float) -> float:
    """A raw integer whose ``log_squared`` is ``token``."""
    target = int(token)
    if target <= 2:
        return float(target)
    v = max(3, math.ceil(math.exp(math.sqrt(target))) - 2)
    while math.floor(math.log(v) ** 2) < target:
        v += 1
    if math.floor(math.log(v) ** 2) != target:
        raise ValueError(f"No integer maps to transformed value {target}.")
    return float(v)


def _age_bucket(x: np.ndarray) -> np.ndarray:
    valid = (x >= 1) & (x <= 95)
    buckets = np.clip(np.ceil(np.where(valid, x, 1.0) / 10.0), 1.0, 7.0)
    return np.where(valid, buckets, np.nan)


def _age_bucket_tf(x):
    import tensorflow as tf

    valid = (x >= 1.0) & (x <= 95.0)  # False for NaN
    buckets = tf.clip_by_value(tf.math.ceil(tf.where(valid, x, 1.0) / 10.0), 1.0, 7.0)
    return tf.where(valid, buckets, tf.constant(math.nan, tf.float64))


def _isrc_country(values: np.ndarray) -> np.ndarray:
    return np.asarray([v.strip()[:2] for v in values.tolist()], dtype=object)


def _isrc_country_tf(values):
    import tensorflow as tf

    return tf.strings.substr(tf.strings.strip(values), 0, 2, unit="UTF8_CHAR")


def _log1p(x: np.ndarray) -> np.ndarray:
    return np.log1p(np.where(x > -1, x, np.nan))


def _log1p_tf(x):
    import tensorflow as tf

    return tf.math.log1p(tf.where(x > -1, x, tf.constant(math.nan, tf.float64)))


def _lower(values: np.ndarray) -> np.ndarray:
    return np.asarray([v.lower() for v in values.tolist()], dtype=object)


def _lower_tf(values):
    import tensorflow as tf

    return tf.strings.lower(values, encoding="utf-8")


LOG_SQUARED = register(
    Transform(
        "log_squared",
        "number",
        _log_squared,
        _log_squared_tf,
        "Criteo_x4: floor(ln(v)^2) if v > 2, else int(v)",
        _log_squared_raw,
    )
)
AGE_BUCKET = register(
    Transform(
        "age_bucket",
        "number",
        _age_bucket,
        _age_bucket_tf,
        "KKBox age: [1, 10] -> 1, (10, 20] -> 2, ..., > 60 -> 7; < 1, > 95 -> missing",
        lambda b: 70.0 if int(b) == 7 else 10.0 * int(b) - 5.0,
    )
)
ISRC_COUNTRY = register(
    Transform(
        "isrc_country",
        "string",
        _isrc_country,
        _isrc_country_tf,
        "KKBox isrc: the first two characters (the country code)",
    )
)
LOG1P = register(
    Transform("log1p", "number", _log1p, _log1p_tf, "ln(1 + v); v <= -1 -> missing", math.expm1)
)
LOWER = register(Transform("lower", "string", _lower, _lower_tf, "lower case (Unicode)"))
