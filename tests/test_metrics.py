import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from tf4ctr_keras.metrics import auc, calibration, evaluate_predictions, gauc, logloss

RNG = np.random.default_rng(7)


def _data(n=5000, ties=False):
    y = (RNG.random(n) < 0.3).astype(int)
    p = np.clip(RNG.normal(0.3 + 0.2 * y, 0.2), 0.01, 0.99)
    if ties:
        p = np.round(p, 2)  # many tied scores, across classes
    return y, p


@pytest.mark.parametrize("ties", [False, True])
def test_auc_equals_sklearn(ties):
    y, p = _data(ties=ties)
    assert abs(auc(y, p) - roc_auc_score(y, p)) < 1e-9


def test_auc_by_hand():
    # pairs (pos, neg): (0.8,0.1) win, (0.8,0.8) tie=0.5, (0.4,0.1) win, (0.4,0.8) loss
    assert auc([1, 0, 1, 0], [0.8, 0.1, 0.4, 0.8]) == pytest.approx(2.5 / 4)


def _sklearn_gauc(y, p, groups):
    total, weight = 0.0, 0.0
    for g in np.unique(groups):
        mask = groups == g
        if 0 < y[mask].sum() < mask.sum():
            total += roc_auc_score(y[mask], p[mask]) * mask.sum()
            weight += mask.sum()
    return total / weight


@pytest.mark.parametrize("ties", [False, True])
def test_gauc_equals_size_weighted_sklearn_per_group(ties):
    y, p = _data(ties=ties)
    groups = RNG.integers(0, 300, size=y.size)  # includes single-class groups
    assert abs(gauc(y, p, groups) - _sklearn_gauc(y, p, groups)) < 1e-9


def test_gauc_skips_single_class_groups_by_hand():
    y = [1, 0, 1, 1, 0, 0]
    p = [0.9, 0.1, 0.2, 0.3, 0.4, 0.5]
    g = ["u1", "u1", "u2", "u2", "u3", "u3"]  # only u1 has both classes
    assert gauc(y, p, g) == 1.0


def test_logloss_equals_sklearn():
    y, p = _data()
    assert abs(logloss(y, p) - log_loss(y, p)) < 1e-9


def test_logloss_clips_like_fuxictr():
    assert logloss([1, 0], [0.0, 1.0]) == pytest.approx(-np.log(1e-7))


def test_evaluate_predictions_keys():
    y, p = _data(200)
    assert set(evaluate_predictions(y, p)) == {"auc", "logloss"}
    assert set(evaluate_predictions(y, p, groups=y * 0)) == {"auc", "logloss", "gauc"}


def test_calibration_by_hand():
    # 15 bins of width 1/15; p = 0.05 -> bin 0, 0.1 -> 1, 0.5 -> 7 (7.5), 0.95 and 1.0 -> 14
    y = [0, 0, 1, 0, 1, 1, 1, 0]
    p = [0.05, 0.05, 0.1, 0.5, 0.5, 0.95, 1.0, 0.1]
    c = calibration(y, p)
    assert c["bins"]["count"][0] == 2 and c["bins"]["count"][1] == 2
    assert c["bins"]["count"][7] == 2 and c["bins"]["count"][14] == 2
    assert sum(c["bins"]["count"]) == 8 and c["bins"]["mean_prediction"][2] is None
    # |mean p - mean y| per bin: 0.05, |0.1 - 0.5| = 0.4, 0, |0.975 - 1| = 0.025; weights 2/8
    assert c["ece"] == pytest.approx((0.05 + 0.4 + 0.0 + 0.025) * 2 / 8)
    assert c["ratio"] == pytest.approx((3.25 / 8) / (4 / 8))
    assert c["bins"]["observed_rate"][14] == 1.0


def test_calibration_of_a_calibrated_and_a_shifted_model():
    rng = np.random.default_rng(3)
    p = rng.random(200_000)
    y = (rng.random(p.size) < p).astype(int)  # labels drawn at the predicted rate
    c = calibration(y, p)
    assert c["ece"] < 0.01 and c["ratio"] == pytest.approx(1.0, abs=0.01)
    doubled = calibration(y, np.minimum(2 * p, 1.0))
    assert doubled["ratio"] > 1.4 and doubled["ece"] > 0.2


def test_calibration_rejects_non_probabilities_and_counts_no_positive():
    with pytest.raises(ValueError, match="probabilities"):
        calibration([0, 1], [0.2, 1.5])
    with pytest.raises(ValueError, match="num_bins"):
        calibration([0, 1], [0.2, 0.5], num_bins=0)
    assert calibration([0, 0], [0.2, 0.4])["ratio"] is None


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: auc([1, 1], [0.2, 0.3]), "single class"),
        (lambda: auc([1, 0], [0.2]), "differ in length"),
        (lambda: auc([1, 2], [0.2, 0.3]), "only 0 and 1"),
        (lambda: auc([1, 0], [np.nan, 0.3]), "NaN"),
        (lambda: gauc([1, 1, 0], [0.1, 0.2, 0.3], [1, 2, 3]), "no group holds both"),
        (lambda: logloss([], []), "empty"),
    ],
)
def test_bad_input_is_explained(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_split_evaluator_groups_gauc_by_the_raw_group_not_the_encoded_id():
    """Users b and c are below the min count: both encode to id 0. By raw user their AUCs are
    0 and 1: gAUC = (2*1 + 2*0 + 2*1) / 6 = 2/3; by id they merge into one group of AUC 3/4:
    (2*1 + 4*0.75) / 6 = 5/6, the reference's number is the first."""
    import tensorflow as tf

    from pipelines.data.manifest import GROUP_FEATURE
    from pipelines.training.evaluation import SplitEvaluator

    ids = np.array([3, 3, 0, 0, 0, 0])
    raw = np.array([11, 11, 22, 22, 33, 33])  # a, a, b, b, c, c
    labels = np.array([1, 0, 1, 0, 1, 0], dtype=np.float32)
    scores = np.array([0.9, 0.2, 0.3, 0.6, 0.8, 0.1])
    seen = []

    def predict(model, features):
        seen.extend(sorted(next(iter(features))))
        return scores

    with_group = tf.data.Dataset.from_tensors(({"user": ids, GROUP_FEATURE: raw}, labels))
    evaluator = SplitEvaluator(with_group, "user", predict)
    assert evaluator(None)["gauc"] == pytest.approx(2 / 3)
    assert seen == ["user"]  # the group is not a model input
    older = tf.data.Dataset.from_tensors(({"user": ids}, labels))  # data prepared before it
    assert SplitEvaluator(older, "user", predict)(None)["gauc"] == pytest.approx(5 / 6)
    # the final metrics report both definitions from the same predictions
    final, _ = evaluator.with_calibration(None)
    assert final["gauc"] == pytest.approx(2 / 3) and final["gauc_by_id"] == pytest.approx(5 / 6)
    assert "gauc_by_id" not in SplitEvaluator(older, "user", predict).with_calibration(None)[0]
