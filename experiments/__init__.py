"""The reproduction study of the TF4CTR paper: ``python -m experiments.reproduce``.

Modules, each importing only those above it:

- :mod:`experiments.tables`: the paper's tables (data files in ``experiments/paper/``) and the
  study's cells, derived from the model library's registries.
- :mod:`experiments.runs`: the run cache (content-keyed run directories) and its committed
  archive ``experiments/results/runs/<dataset>``.
- :mod:`experiments.figures`: the in-process experiments (Figures 5 and 10, Table VI timing)
  and their plots.
- :mod:`experiments.report`: the Markdown report, computed from the cache.
- :mod:`experiments.reproduce`: the command line and the plan of runs.
- :mod:`experiments.hyperparams`: the paper's hyperparameter study (Figs. 2, 4, 6-9), its own
  command line and report ``experiments/results/<dataset>-hyperparams.md``.
- :mod:`experiments.parity` and :mod:`experiments.tuning`: the Frappe parity runs and the
  hyperparameter search, each one section of ``experiments/results/frappe.md``.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "experiments" / "results"
