"""Calibration across seeds: the reliability diagram and the comparison of losses (issue 17).

Every run's ``metrics.json`` holds ``calibration[split]`` = ``{ratio, ece, bins}`` from
:func:`tf4ctr_keras.metrics.calibration` (15 equal-width bins). Here several seeds of one model
are summarised: the ratio and ECE as mean ± sample standard deviation over seeds, and the bins
pooled over seeds (counts summed, the bin means weighted by their counts, which is the bins of
all seeds' predictions taken together) for the diagram. Runs archived before calibration was
recorded have no ``calibration`` key; they are counted and named, never filled in.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from benchmarks.report import mean_difference

SPLIT = "test"


def recorded(runs: list[dict], split: str = SPLIT) -> list[dict]:
    """The runs whose metrics hold the split's calibration."""
    return [r for r in runs if (r.get("calibration") or {}).get(split)]


def pooled_bins(runs: list[dict], split: str = SPLIT) -> dict:
    """The bins of all runs' predictions together: ``{"count", "mean_prediction",
    "observed_rate", "ece"}``; an empty bin has None means."""
    runs = recorded(runs, split)
    if not runs:
        raise ValueError("no run records calibration")
    n_bins = len(runs[0]["calibration"][split]["bins"]["count"])
    count = [0.0] * n_bins
    sum_p = [0.0] * n_bins
    sum_y = [0.0] * n_bins
    for r in runs:
        b = r["calibration"][split]["bins"]
        if len(b["count"]) != n_bins:
            raise ValueError(f"runs have {n_bins} and {len(b['count'])} bins")
        for i, c in enumerate(b["count"]):
            if c:
                count[i] += c
                sum_p[i] += c * b["mean_prediction"][i]
                sum_y[i] += c * b["observed_rate"][i]
    total = sum(count)
    mean_p = [s / c if c else None for s, c in zip(sum_p, count, strict=True)]
    rate = [s / c if c else None for s, c in zip(sum_y, count, strict=True)]
    ece = sum(c / total * abs(p - y) for c, p, y in zip(count, mean_p, rate, strict=True) if c)
    return {"count": count, "mean_prediction": mean_p, "observed_rate": rate, "ece": ece}


def summary(runs: list[dict], split: str = SPLIT) -> dict | None:
    """Ratio and ECE over the seeds that record them: ``{"n", "ratio", "ece"}`` with each a
    list per seed; None if no run records them."""
    runs = recorded(runs, split)
    if not runs:
        return None
    return {
        "n": len(runs),
        "ratio": [r["calibration"][split]["ratio"] for r in runs],
        "ece": [r["calibration"][split]["ece"] for r in runs],
    }


def stat(xs: list[float], digits: int = 4) -> str:
    if not xs:
        return "-"
    if len(xs) == 1:
        return f"{xs[0]:.{digits}f} (n=1)"
    return f"{statistics.fmean(xs):.{digits}f} ± {statistics.stdev(xs):.{digits}f} (n={len(xs)})"


def difference(a: list[float], b: list[float]) -> dict | None:
    """``mean(a) - mean(b)`` and the standard error of that difference over seeds
    (``sqrt(s_a^2 / n_a + s_b^2 / n_b)``); None without two seeds on each side."""
    if len(a) < 2 or len(b) < 2:
        return None
    diff, se = mean_difference(a, b)
    return {"diff": diff, "se": se, "exceeds_noise": abs(diff) > 2 * se}


def difference_text(a: list[float], b: list[float], digits: int = 4) -> str:
    d = difference(a, b)
    if d is None:
        return "-"
    verdict = "beyond the seed noise" if d["exceeds_noise"] else "within the seed noise"
    return f"{d['diff']:+.{digits}f} (se {d['se']:.{digits}f}; {verdict})"


def plot_reliability(curves: dict[str, list[dict]], png: Path, title: str) -> None:
    """Reliability diagram: per model, the observed click rate against the mean prediction of
    each pooled bin (the diagonal is perfect calibration), and below it the predictions per
    bin on a log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from experiments.figures import _save

    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(5.5, 6.5), gridspec_kw={"height_ratios": [3, 1]}, sharex=True
    )
    top.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="calibrated")
    n_bins = None
    for name, runs in curves.items():
        b = pooled_bins(runs)
        n_bins = len(b["count"])
        pts = [(p, y) for p, y in zip(b["mean_prediction"], b["observed_rate"], strict=True) if p]
        top.plot(
            [p for p, _ in pts],
            [y for _, y in pts],
            marker="o",
            markersize=3,
            label=f"{name} (ECE {b['ece']:.4f}, {len(recorded(runs))} seeds)",
        )
        centres = [(i + 0.5) / n_bins for i in range(n_bins)]
        bottom.plot(centres, [max(c, 0.5) for c in b["count"]], marker=".", label=name)
    top.set_ylabel("observed click rate")
    top.set_title(title, fontsize=10)
    top.legend(fontsize=7, loc="upper left")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    bottom.set_yscale("log")
    bottom.set_ylabel("predictions")
    bottom.set_xlabel(f"mean predicted probability ({n_bins} equal-width bins)")
    fig.tight_layout()
    _save(fig, png)
