"""The side-by-side benchmark's bookkeeping (no timing here: the measurements are made-up
records with known answers)."""

from __future__ import annotations

import json

import pytest

from benchmarks.vs_authors import (
    FULL_METRICS,
    METRICS,
    auc_verdict,
    machine_fraction,
    parse_peer,
    render,
    summarize,
    to_best,
)


def _peer_output() -> str:
    epochs = [
        {"train_s": 10.0, "eval_s": 2.0, "val": {"AUC": 0.90, "gAUC": 0.80}},
        {"train_s": 12.0, "eval_s": 1.0, "val": {"AUC": 0.95, "gAUC": 0.85}},  # best: 1.80
        {"train_s": 11.0, "eval_s": 3.0, "val": {"AUC": 0.96, "gAUC": 0.83}},  # 1.79
    ]
    lines = ["building CSVs ...", "2026-12-01 12:00:00 some log line"]
    lines += [json.dumps({"event": "epoch", "epoch": i + 1, **e}) for i, e in enumerate(epochs)]
    done = {"event": "done", "model": "TF4CTRv2", "epochs": 3, "test": {"AUC": 0.9876}}
    return "\n".join([*lines, json.dumps(done), ""])


def test_the_peer_runner_output_is_read_with_its_best_epoch():
    record = parse_peer(_peer_output())
    assert record["train_s"] == [10.0, 12.0, 11.0]
    assert record["eval_s"] == [2.0, 1.0, 3.0]
    assert record["best_epoch"] == 2  # AUC + gAUC, the authors' monitor
    assert record["test_auc"] == 0.9876
    assert to_best(record) == 10.0 + 12.0 + 2.0 + 1.0


def test_a_peer_run_without_a_done_line_is_an_error():
    broken = "\n".join(_peer_output().splitlines()[:-1])
    with pytest.raises(RuntimeError, match="no 'done' line"):
        parse_peer(broken)


def _record(train, evals, wall, cpu, best=1, auc=0.98):
    return {
        "train_s": train,
        "eval_s": evals,
        "wall_s": wall,
        "cpu_s": cpu,
        "best_epoch": best,
        "test_auc": auc,
    }


def test_ratios_are_taken_pair_by_pair_then_summarized():
    pairs = [
        {
            "ours": _record([9, 8, 7], [1, 1, 1], 40, 60),
            "theirs": _record([10, 10, 10], [2] * 3, 50, 60),
        },
        {
            "ours": _record([6, 6, 6], [1, 1, 1], 30, 45),
            "theirs": _record([10, 12, 8], [2] * 3, 60, 50),
        },
        {
            "ours": _record([5, 5, 5], [1, 1, 1], 20, 40),
            "theirs": _record([5, 5, 5], [1] * 3, 40, 80),
        },
    ]
    rows = {r["metric"]: r for r in summarize(pairs, METRICS)}
    train = rows["train epoch (median s)"]
    assert train["pairs"] == [(8, 10), (6, 10), (5, 5)]
    assert train["ratios"] == [0.8, 0.6, 1.0]
    assert (train["median"], train["low"], train["high"]) == (0.8, 0.6, 1.0)
    wall = rows["whole process wall (s)"]
    assert wall["ratios"] == [0.8, 0.5, 0.5] and wall["median"] == 0.5
    assert rows["whole process CPU (s)"]["ratios"] == [1.0, 0.9, 0.5]
    full = {r["metric"]: r for r in summarize(pairs, FULL_METRICS)}
    assert full["training to the best epoch (s)"]["pairs"][0] == (10, 12)


def test_the_report_states_date_command_and_each_pair():
    pair = {"ours": _record([8.0], [1.0], 40.0, 50.0), "theirs": _record([10.0], [2.0], 50.0, 50.0)}
    raw = {
        "date": "2026-12-01 21:00 UTC",
        "cpus": 2,
        "command": "python -m benchmarks.vs_authors --pairs 1",
        "epochs": 1,
        "short": {"tf4ctr": [pair]},
        "full": {"tf4ctr": [pair]},
    }
    text = render(raw)
    assert "Measured 2026-12-01 21:00 UTC" in text
    assert "`python -m benchmarks.vs_authors --pairs 1`" in text
    assert "| train epoch (median s) | 8.00 / 10.00 = 0.80x | **0.80x** (0.80-0.80) |" in text
    assert "| whole process wall (s) | 40.00 / 50.00 = 0.80x | **0.80x** (0.80-0.80) |" in text
    assert "test AUC ours 0.980000 (best epoch 1 of 1), theirs 0.980000" in text


def test_machine_fraction_counts_six_flops_per_weight_and_row():
    shapes = [(10, 4, 5), (10, 5, 2)]  # batch 10; kernels 4x5 and 5x2
    rates = [{(10, 4, 5): 1e9, (10, 5, 2): 2e9}, {(10, 4, 5): 3e9, (10, 5, 2): 2e9}]
    m = machine_fraction(shapes, rates, rows=100, epoch_seconds=1e-4)
    assert m["flops_per_epoch"] == 6 * 100 * (20 + 10)  # 18,000
    # medians 2e9 and 2e9 -> 18,000 FLOPs take 9 microseconds at the matmul rate
    assert m["matmul_bound_s"] == pytest.approx(9e-6)
    assert m["matmul_flops"] == pytest.approx(2e9)
    assert m["achieved_flops"] == pytest.approx(1.8e8)
    assert m["fraction"] == pytest.approx(0.09)


def test_the_report_says_which_targets_are_met():
    fast = {"ours": _record([5.0], [1.0], 30.0, 50.0), "theirs": _record([10.0], [2.0], 40.0, 50.0)}
    raw = {
        "date": "2026-12-02 08:00 UTC",
        "cpus": 2,
        "command": "python -m benchmarks.vs_authors --pairs 1",
        "epochs": 1,
        "short": {"tf4ctr": [fast], "dnn": [fast]},
        "machine": {
            "rates": [{"10 x 4 x 5": 2e9}, {"10 x 4 x 5": 1e9}],
            "models": {
                "tf4ctr": {
                    "flops_per_epoch": 7e11,
                    "epoch_s": 5.0,
                    "achieved_flops": 1.4e11,
                    "matmul_flops": 2e11,
                    "fraction": 0.7,
                }
            },
        },
    }
    text = render(raw)
    # 0.50x <= 0.6 is met; 30 / 40 = 0.75x > 0.7 is not
    assert (
        "| 1 epochs | tf4ctr | train epoch (median s) | <= 0.60x | 0.50x (0.50-0.50) | yes |"
        in text
    )
    assert (
        "| 1 epochs | tf4ctr | whole process wall (s) | <= 0.70x | 0.75x (0.75-0.75) | **no** |"
        in text
    )
    assert "| 10 x 4 x 5 | 2 | 1 |" in text
    assert "| tf4ctr | 0.700 | 5.00 | 140 | 200 | 70% | >= 60% | yes |" in text


def test_the_auc_target_compares_means_over_seeds_within_their_noise():
    # ours 0.987, 0.988, 0.989: mean 0.988, variance 1e-6; theirs 0.9884 +- 0.0002 (variance 4e-8)
    ours, theirs = [0.987, 0.988, 0.989], [0.9882, 0.9884, 0.9886]
    v = auc_verdict(ours, theirs)
    # standard error sqrt(1e-6 / 3 + 4e-8 / 3) = sqrt(3.4667e-7) = 5.888e-4 > the 4e-4 gap
    assert v["diff"] == pytest.approx(-4e-4)
    assert v["se"] == pytest.approx((1.04e-6 / 3) ** 0.5)
    assert v["met"]
    assert "0.988000 ± 0.001000 vs 0.988400 ± 0.000200 (mean ± sd, n=3)" in v["text"]
    # the same gap with a tenth of the noise is a shortfall
    tight = auc_verdict([0.9879, 0.9880, 0.9881], theirs)
    assert tight["se"] == pytest.approx((1e-8 / 3 + 4e-8 / 3) ** 0.5) and not tight["met"]
    # one seed a side: no noise estimate, ours must be at least theirs
    assert not auc_verdict([0.98726], [0.98745])["met"]
    assert auc_verdict([0.98745], [0.98745])["met"]
