"""Runs a command's ``main`` in this process and SIGKILLs it at a chosen training step: the
mid-epoch kill of tests/test_fault_injection.py (kills at commit points use the atomic
writer's own hook, ``TF4CTR_FAULT_KILL``; see pipelines/data/fileio.py).

Usage: ``python tests/fault_child.py STEP MODULE [ARGS...]`` kills the process after the
STEP-th training batch (counted over the whole process, 1-based) of ``MODULE.main(ARGS)``.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from typing import Any


def timeless(value: Any) -> Any:
    """``value`` (a run's metrics or history) without its wall-clock entries, the only part
    a resumed run may not share with an uninterrupted one."""
    if isinstance(value, dict):
        return {k: timeless(v) for k, v in value.items() if "seconds" not in k}
    if isinstance(value, list):
        return [timeless(v) for v in value]
    return value


def main() -> int:
    step, module, argv = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    import keras

    class KillAtStep(keras.callbacks.Callback):
        seen = 0

        def on_train_batch_end(self, batch, logs=None):
            KillAtStep.seen += 1
            if KillAtStep.seen >= step:
                os.kill(os.getpid(), signal.SIGKILL)

    fit = keras.Model.fit

    def fit_with_kill(self, *args, callbacks=None, **kwargs):
        return fit(self, *args, callbacks=[*(callbacks or []), KillAtStep()], **kwargs)

    keras.Model.fit = fit_with_kill
    return importlib.import_module(module).main(argv)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())
