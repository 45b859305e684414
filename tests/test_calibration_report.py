"""experiments.calibration: pooling of reliability bins over seeds, the seed-noise comparison,
and the parity section's calibration block, on hand-made runs with known answers."""

from __future__ import annotations

import math

import pytest

from experiments import calibration
from tf4ctr_keras.metrics import calibration as run_calibration


def _run(labels, probs, loss="bce", num_bins=2):
    c = run_calibration(labels, probs, num_bins=num_bins)
    return {"loss": loss, "calibration": {"test": c, "valid": c}}


def test_pooled_bins_are_the_bins_of_all_seeds_predictions_together():
    a = ([0, 1, 1, 0], [0.1, 0.9, 0.6, 0.7])
    b = ([0, 0, 1], [0.2, 0.4, 0.8])
    pooled = calibration.pooled_bins([_run(*a), _run(*b)])
    together = run_calibration(a[0] + b[0], a[1] + b[1], num_bins=2)
    assert pooled["count"] == together["bins"]["count"] == [3, 4]
    # bin [0, 0.5): predictions 0.1, 0.2, 0.4 (mean 0.7 / 3), no click; bin [0.5, 1]: 0.9, 0.6,
    # 0.7, 0.8 (mean 0.75), clicks 3 of 4
    assert pooled["mean_prediction"] == pytest.approx([0.7 / 3, 0.75])
    assert pooled["observed_rate"] == pytest.approx([0.0, 0.75])
    assert pooled["ece"] == pytest.approx(together["ece"]) == pytest.approx(3 / 7 * 0.7 / 3)


def test_runs_without_calibration_are_left_out_and_named_by_count():
    old = {"loss": "bce", "test": {"auc": 0.9}}  # archived before calibration was recorded
    new = _run([0, 1], [0.25, 0.75])
    assert calibration.recorded([old, new]) == [new]
    s = calibration.summary([old, new])
    assert s == {"n": 1, "ratio": [1.0], "ece": [0.25]}
    assert calibration.summary([old]) is None
    with pytest.raises(ValueError, match="no run records calibration"):
        calibration.pooled_bins([old])


def test_a_difference_is_beyond_the_noise_past_twice_its_standard_error():
    a, b = [0.010, 0.012, 0.014], [0.020, 0.021, 0.022]
    d = calibration.difference(a, b)
    # means 0.012 and 0.021; variances 4e-6 and 1e-6: se = sqrt(5e-6 / 3)
    assert d["diff"] == pytest.approx(-0.009)
    assert d["se"] == pytest.approx(math.sqrt(5e-6 / 3))
    assert d["exceeds_noise"]  # 0.009 > 2 x 0.00129
    assert not calibration.difference([0.010, 0.030], [0.020, 0.021])["exceeds_noise"]
    assert calibration.difference([0.01], [0.02, 0.03]) is None
    assert calibration.stat([0.5, 0.7]) == "0.6000 ± 0.1414 (n=2)"


def test_the_parity_section_reports_calibration_per_model_and_against_tf4ctr():
    from experiments.parity import calibration_lines

    tf = [_run([0, 1], [0.25, 0.75], "tf"), _run([0, 1], [0.3, 0.7], "tf")]
    bce = [_run([0, 1], [0.1, 0.7]), _run([0, 1], [0.2, 0.6])]
    text = "\n".join(calibration_lines({"tf4ctr": tf, "dnn": bce}))
    # ECE per seed: tf 0.25 and 0.30; bce (|0.1| + |0.7 - 1|) / 2 = 0.2, (0.2 + 0.4) / 2 = 0.3
    assert "| tf4ctr | tf | 1.0000 ± 0.0000 (n=2) | 0.2750 ± 0.0354 (n=2) |" in text
    assert "| dnn | bce | 0.8000 ± 0.0000 (n=2) | 0.2500 ± 0.0707 (n=2) |" in text
    assert "- dnn: ECE +0.0250 (se 0.0559; within the seed noise), ratio +0.2000" in text
    assert calibration_lines({"dnn": [{"loss": "bce", "test": {}}]}) == []
