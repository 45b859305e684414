"""Start-up of the training process: import Keras without its optional integrations.

Keras 3 imports, at ``import keras``, every optional integration whose package is installed:
scikit-learn (``keras.wrappers``), matplotlib (``keras.visualization``), pandas (the array data
adapter) and IPython (``keras.saving.file_editor``). This stack installs all four (the reports,
the tests and the data side use them), and on the 2-core reference machine they cost about
2.5 s of a training process's 6 s of imports (``python -X importtime``; benchmarks/vs_authors.py
counts start-up in the whole-process time). A training process uses none of them: it feeds
``tf.data`` datasets, never DataFrames, and neither plots nor wraps estimators.

:func:`keras_without_extras` imports Keras with those packages hidden: an entry of ``None`` in
``sys.modules`` makes ``import name`` raise ImportError (the documented meaning of that entry),
which Keras catches and then leaves the integration off. The entries are removed afterwards,
so the process can still import every package itself (the data side reads CSV with pandas);
only Keras' own references stay off, for this process. No library or Keras setting does this.

Used by the training CLI only (``python -m pipelines.train``); ``import tf4ctr_keras`` in a
user's program is untouched.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

# Packages Keras imports only for integrations a training process does not use.
KERAS_EXTRAS = ("sklearn", "matplotlib", "IPython", "pandas")


@contextlib.contextmanager
def keras_without_extras(extras: tuple[str, ...] = KERAS_EXTRAS) -> Iterator[None]:
    """Within the block, ``import keras`` (and what imports it) skips ``extras``. A package
    already imported, or Keras already imported, is left as it is."""
    if "keras" in sys.modules:
        yield
        return
    hidden = [name for name in extras if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import keras  # noqa: F401

        yield
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
