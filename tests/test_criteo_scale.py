"""The RSS bookkeeping of benchmarks/criteo_scale.py on synthetic series (no timing)."""

from __future__ import annotations

import os
from datetime import datetime

import pytest

from benchmarks.criteo_scale import (
    count_pass_end,
    max_rss_between,
    prepare_window,
    read_rss_mb,
    rss_at_fractions,
    summarize_rss,
)


def test_rss_at_fractions_picks_the_nearest_sample():
    # Grows for 40 s, then flat at 900 MB until 100 s; one sample every 10 s.
    samples = [(float(t), min(t, 40) * 20.0 + 100.0) for t in range(0, 101, 10)]
    at = rss_at_fractions(samples, (0.1, 0.5, 0.9))
    assert at == {0.1: 300.0, 0.5: 900.0, 0.9: 900.0}
    # Explicit duration: 10 % of 50 s is 5 s, equidistant from 0 and 10: the earlier sample.
    assert rss_at_fractions(samples, (0.1,), duration=50.0) == {0.1: 100.0}
    with pytest.raises(ValueError):
        rss_at_fractions([], (0.5,))


def test_max_between_and_summary():
    samples = [(0.0, 100.0), (5.0, 700.0), (10.0, 650.0), (15.0, 690.0), (20.0, 680.0)]
    assert max_rss_between(samples, 0, 10) == 700.0
    assert max_rss_between(samples, 11, 14) is None
    s = summarize_rss(samples, 20.0)
    assert s["at"] == {0.1: 100.0, 0.5: 650.0, 0.9: 680.0}
    assert (s["max"], s["max_first_half"], s["max_second_half"], s["n"]) == (700, 700, 690, 5)


def test_prepare_window_excludes_child_start_up(tmp_path):
    # The child started at t=1000 (epoch); prepare itself started 8 s later and ran 20 s.
    log = tmp_path / "prepare.log"
    stamp = datetime.fromtimestamp(1000.0 + 12.5).strftime("%Y-%m-%d %H:%M:%S,%f")[:23]
    progress = "2000-01-01 00:00:00,000 INFO Pass 1 (count): raw.txt.gz line 1032252 (9 s)"
    log.write_text(f"{progress}\n{stamp} INFO Pass 1 (count): 240419 train rows in 4.5 s\n")
    end = count_pass_end(log, 1000.0)
    assert end == pytest.approx(12.5, abs=1e-3)
    prep = {
        "started_at": 1000.0,
        "prepare_started_at": 1008.0,
        "seconds": 20.0,
        "count_pass_end_s": end,
        "samples": [[2.0, 400.0], [8.0, 420.0], [18.0, 900.0], [28.0, 950.0], [40.0, 0.0]],
    }
    pairs, duration, pass_end = prepare_window(prep)
    assert pairs == [(0.0, 420.0), (10.0, 900.0), (20.0, 950.0)]
    assert duration == 20.0
    assert pass_end == pytest.approx(4.5, abs=1e-3)


def test_read_rss_of_this_process():
    rss, hwm = read_rss_mb(os.getpid())
    assert 0 < rss <= hwm
