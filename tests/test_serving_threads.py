"""benchmarks/serving_threads.py's bookkeeping on made-up records with known answers (no
timing here)."""

from __future__ import annotations

from benchmarks.serving_threads import SETTINGS, section, summarize


def _round(default, inter, both):
    keys = ("p50", "p99", "rows_s")
    return {
        name: dict(zip(keys, values, strict=True))
        for name, values in zip(SETTINGS, (default, inter, both), strict=True)
    }


def test_ratios_are_per_round_against_that_rounds_default_then_the_median():
    rounds = [
        _round((1.0, 4.0, 100.0), (0.8, 3.0, 150.0), (0.5, 2.0, 90.0)),
        _round((2.0, 4.0, 200.0), (1.0, 4.0, 260.0), (1.2, 2.0, 200.0)),
        _round((1.0, 2.0, 100.0), (0.9, 2.0, 140.0), (0.6, 1.0, 100.0)),
    ]
    s = summarize(rounds)
    # inter 1: p50 ratios 0.8, 0.5, 0.9 -> median 0.8; rows/s 1.5, 1.3, 1.4 -> 1.4
    assert s["inter 1"]["p50_ratio"] == (0.8, 0.5, 0.9)
    assert s["inter 1"]["rows_s_ratio"][0] == 1.4
    assert s["inter 1"]["p50"] == 0.9  # median of 0.8, 1.0, 0.9
    assert s["default"]["p50_ratio"] == (1.0, 1.0, 1.0)
    text = section(s, 3, 100, 10, 1.5e-8, "python benchmarks/serving_threads.py")
    assert (
        "| inter 1, intra 1 (1, 1) | 0.60 | 0.60x (0.50-0.60) | 2.00 | 0.50x (0.50-0.50) |" in text
    )
    assert "| default (auto, auto) |" in text and "rows: 1.5e-08." in text
