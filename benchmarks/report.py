"""Shared by the benchmark scripts and the experiments: replace one named section of a Markdown
results file."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from pipelines.data.fileio import write_atomic


def replace_section(path: Path, name: str, body: str, title: str = "# Frappe results") -> str:
    """Writes ``body`` between ``<!-- name:begin -->`` and ``<!-- name:end -->`` in ``path``
    (appending the section if absent) and returns the section text."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = f"{begin}\n{body.strip()}\n{end}"
    current = path.read_text() if path.exists() else f"{title}\n\n"
    if begin in current:
        head, rest = current.split(begin, 1)
        current = head + text + rest.split(end, 1)[1]
    else:
        current = current.rstrip("\n") + "\n\n" + text + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, current)
    return text


def mean_difference(a: list[float], b: list[float]) -> tuple[float, float | None]:
    """``mean(a) - mean(b)`` and the standard error of that difference over seeds,
    ``sqrt(s_a^2 / n_a + s_b^2 / n_b)``; None without two values on each side."""
    diff = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return diff, None
    return diff, math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
