import numpy as np
import pytest

from astrobio import metrics as M

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


def test_class_predicted_but_absent_from_truth_one_value_everywhere():
    # truth [0,0,1,1], prediction [0,0,1,2]: F1 = 1, 2/3 and 0 (class 2 predicted, never true) -> 5/9
    import torch
    from sklearn.metrics import f1_score

    from astrobio.training.trainer import classification_metrics as trainer_metrics

    y, pred = np.array([0, 0, 1, 1]), np.array([0, 0, 1, 2])
    probs = np.eye(3)[pred] * 0.7 + 0.1
    evaluation = M.classification_metrics(y, probs)["macro_f1"]
    trainer = trainer_metrics(torch.as_tensor(M.confusion_matrix(y, pred), dtype=torch.float64))["macro_f1"]
    assert evaluation == pytest.approx(5 / 9) and trainer == pytest.approx(5 / 9)
    assert f1_score(y, pred, labels=[0, 1, 2], average="macro") == pytest.approx(5 / 9)
    assert M.stratified(y, probs, ["a"] * 4)["a"]["macro_f1"] == pytest.approx(5 / 9)


def test_confusion_round_trips_through_pairs():
    cm = np.array([[2, 0, 1], [0, 3, 0], [4, 0, 0]])
    t, p = M.pairs_from_confusion(cm)
    assert (M.confusion_matrix(t, p) == cm).all() and len(t) == cm.sum()


def test_log_loss_and_brier_hand_values():
    m = M.classification_metrics(Y, P)
    p_true = P[np.arange(6), Y]  # 0.8, 0.6, 0.7, 0.5, 0.7, 0.3
    assert m["log_loss"] == pytest.approx(-np.log(p_true).mean())
    # first row: (0.8-1)² + 0.1² + 0.1² = 0.06
    assert M.brier_score(P[:1], Y[:1]) == pytest.approx(0.06)
    assert m["brier"] == pytest.approx(((P - np.eye(3)[Y]) ** 2).sum(1).mean())
    assert 0.0 <= m["brier"] <= 2.0
    assert M.brier_score(np.eye(3), [0, 1, 2]) == 0.0 and M.brier_score(np.eye(3), [1, 2, 0]) == 2.0


def test_binary_views_hand_values():
    m = M.classification_metrics(Y, P)
    # habitable-or-inhabited (y>=1) vs not, score p1+p2: positives 0.9, 0.8, 0.9, 0.5; negatives 0.2, 0.7
    assert m["auroc_habitable_vs_not"] == pytest.approx((4 + 3) / 8)
    # among y>=1: inhabited score p2/(p1+p2): hab 2/9, 3/8; inhab 7/9, 3/5 -> all 4 pairs won
    assert m["auroc_inhabited_vs_habitable"] == 1.0


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


def test_macro_f1_weights_split_two_confusable_classes_and_keep_argmax_when_it_is_best():
    # classes 1 and 2 are confusable: argmax always says 1, though p_2 is higher for the true 2s
    probs = np.array([[0.8, 0.1, 0.1], [0.8, 0.15, 0.05],
                      [0.1, 0.50, 0.40], [0.1, 0.52, 0.38],
                      [0.1, 0.46, 0.44], [0.1, 0.47, 0.43]])
    y = np.array([0, 0, 1, 1, 2, 2])
    assert M.accuracy_macro_f1(y, probs.argmax(1))["macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    w = M.fit_macro_f1_weights(probs, y)
    assert w[0] == 1.0
    assert M.accuracy_macro_f1(y, (probs * w).argmax(1))["macro_f1"] == 1.0
    clear = np.eye(3)[y] * 0.9 + 0.1 / 3  # argmax already perfect: the weights stay 1
    np.testing.assert_array_equal(M.fit_macro_f1_weights(clear, y), [1.0, 1.0, 1.0])


def test_revealed_answers_renormalise_over_the_agreeing_classes():
    # habitable revealed: the class-0 rows become certain, the others keep p1 : p2 (row 5: 0.2 : 0.3)
    hab = M.reveal_answer(P, Y, "habitable")
    np.testing.assert_allclose(hab[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(hab[5], [0.0, 0.4, 0.6])
    # inhabited revealed: row 1 (true 0) keeps p0 : p1 = 0.3 : 0.6 and is still called 1
    inh = M.reveal_answer(P, Y, "inhabited")
    np.testing.assert_allclose(inh[1], [1 / 3, 2 / 3, 0.0])
    np.testing.assert_allclose(inh[4], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(hab.sum(1), 1.0)
    np.testing.assert_allclose(inh.sum(1), 1.0)
    # predictions 0,0,1,1,2,2 (all right) and 0,1,1,1,2,2 (class-0 F1 2/3, class-1 F1 0.8, class-2 F1 1)
    assert M.revealed_macro_f1(Y, P) == pytest.approx({"habitable": 1.0, "inhabited": (2 / 3 + 0.8 + 1) / 3})


def test_revealed_answer_where_the_model_gave_the_true_side_no_probability():
    # a confident "not habitable" for a habitable planet: uniform over the classes the answer allows
    np.testing.assert_allclose(M.reveal_answer(np.array([[1.0, 0.0, 0.0]]), [2], "habitable"), [[0.0, 0.5, 0.5]])
    with pytest.raises(ValueError, match="question 'alive'"):
        M.reveal_answer(P, Y, "alive")
