import numpy as np
import pytest

from astrobio.evaluation import metrics as M

# Six hand-made predictions: true 0,0,1,1,2,2; predicted 0,1,1,1,2,0.
Y = np.array([0, 0, 1, 1, 2, 2])
P = np.array([
    [0.8, 0.1, 0.1],
    [0.3, 0.6, 0.1],
    [0.1, 0.7, 0.2],
    [0.2, 0.5, 0.3],
    [0.1, 0.2, 0.7],
    [0.5, 0.2, 0.3],
])


def test_confusion_and_f1_match_hand_computation():
    m = M.classification_metrics(Y, P)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m["accuracy"] == pytest.approx(4 / 6)
    # class 0: P=1/2 R=1/2 F1=1/2; class 1: P=2/3 R=1 F1=0.8; class 2: P=1 R=1/2 F1=2/3
    assert m["per_class"]["habitable"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["inhabited"]["recall"] == pytest.approx(0.5)
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_auroc_hand_values():
    # perfect ranking -> 1, reversed -> 0, ties -> 0.5
    assert M.binary_auroc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert M.binary_auroc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert M.binary_auroc([0, 1], [0.5, 0.5]) == 0.5
    assert np.isnan(M.binary_auroc([1, 1], [0.2, 0.3]))
    # class 2 vs rest on the fixture: positives score 0.7, 0.3; negatives 0.1,0.1,0.2,0.3
    # pairs won: 0.7 beats 4; 0.3 beats 3 and ties 1 -> (4 + 3.5) / 8
    assert M.classification_metrics(Y, P)["auroc_ovr"]["inhabited"] == pytest.approx(7.5 / 8)


def test_ece_hand_value():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    y = np.array([0, 1, 0, 0])
    # bin(0.9): acc 0.5, conf 0.9 -> 0.4 * 0.5 ; bin(0.6): acc 1, conf 0.6 -> 0.4 * 0.5
    assert M.expected_calibration_error(probs, y, n_bins=10) == pytest.approx(0.4)


def test_temperature_scaling_reduces_overconfidence():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 2000)
    logits = rng.normal(0, 1, (2000, 3))
    logits[np.arange(2000), y] += 1.0
    hot = logits * 5.0  # overconfident
    t = M.fit_temperature(hot, y)
    assert 3.5 < t < 7.0
    assert M.expected_calibration_error(M.softmax(hot, t), y) < M.expected_calibration_error(M.softmax(hot), y)


def test_regression_metrics():
    t = np.array([[1.0], [2.0], [3.0]])
    r = M.regression_metrics(t + np.array([[0.0], [0.0], [0.3]]), t, ["x"])
    assert r["x"]["rmse"] == pytest.approx(np.sqrt(0.09 / 3))
    assert r["x"]["r2"] == pytest.approx(1 - 0.09 / 2)


def test_stratified_groups():
    s = M.stratified(Y, P, ["a", "a", "a", "b", "b", "b"])
    assert s["a"]["n"] == 3 and s["a"]["accuracy"] == pytest.approx(2 / 3)
    assert M.transit_stratum(0) == "no spectrum" and M.transit_stratum(50) == ">20 transits"
