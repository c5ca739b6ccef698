"""Evaluation: hand-computed metrics at the model's decisions, thresholds, calibration,
intervals, relabel queue."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.evaluation.decision import DecisionRule
from linnaeus.engine.evaluation.decision import binary_rates
from linnaeus.engine.evaluation.decision import choose_threshold
from linnaeus.engine.evaluation.intervals import wilson_interval
from linnaeus.engine.evaluation.metrics import at_threshold
from linnaeus.engine.evaluation.metrics import evaluate_predictions
from linnaeus.engine.evaluation.metrics import fit_temperature
from linnaeus.engine.evaluation.metrics import logits_from_probabilities
from linnaeus.engine.evaluation.metrics import relabel_queue
from linnaeus.engine.evaluation.metrics import softmax

ANIMALS = ["cat", "dog", "fox"]
XRAY = ["NORMAL", "PNEUMONIA"]


def confident(predicted: list[int], n_classes: int = 3, top: float = 0.7) -> np.ndarray:
    """Rows with ``top`` on the predicted class and the rest shared evenly."""
    p = np.full((len(predicted), n_classes), (1 - top) / (n_classes - 1))
    p[np.arange(len(predicted)), predicted] = top
    return p


def binary(scores: list[float] | np.ndarray) -> np.ndarray:
    """Two-class probabilities from p(positive = class 1)."""
    s = np.asarray(scores, dtype=float)
    return np.stack([1 - s, s], axis=1)


def synthetic_binary(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A 1:3 positive:negative task with overlapping scores."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.25).astype(int)
    score = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0.0, 1.0)
    return y, binary(score)


# --- a 3-class case by hand -------------------------------------------------------------

Y3 = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
PRED3 = [0, 0, 0, 2, 1, 1, 0, 2, 2, 2]


def test_three_class_metrics_by_hand() -> None:
    ev = evaluate_predictions(np.array(Y3), confident(PRED3), ANIMALS, bootstrap=0)
    # rows = true, cols = predicted
    # cat: 3 right, 1 called fox; dog: 1 called cat, 2 right; fox: 3 right
    assert ev.confusion == [[3, 0, 1], [1, 2, 0], [0, 0, 3]]
    assert ev.accuracy == pytest.approx(8 / 10)  # 3 + 2 + 3 on the diagonal
    cat, dog, fox = (ev.per_class[name] for name in ANIMALS)
    # cat: precision 3 / (3 + 1 dog) = 0.75, recall 3 / 4 = 0.75, F1 = 0.75
    assert (cat.precision, cat.recall, cat.f1, cat.support) == pytest.approx((0.75, 0.75, 0.75, 4))
    # dog: precision 2 / 2 = 1, recall 2 / 3, F1 = 2 * 1 * 2/3 / (1 + 2/3) = 0.8
    assert (dog.precision, dog.recall, dog.f1, dog.support) == pytest.approx((1.0, 2 / 3, 0.8, 3))
    # fox: precision 3 / (3 + 1 cat) = 0.75, recall 3 / 3 = 1, F1 = 1.5 / 1.75 = 6/7
    assert (fox.precision, fox.recall, fox.f1, fox.support) == pytest.approx((0.75, 1.0, 6 / 7, 3))
    # balanced accuracy = mean recall = (3/4 + 2/3 + 1) / 3 = 29/36
    assert ev.balanced_accuracy == pytest.approx(29 / 36)
    # 8 images at p(true) = 0.7, 2 at p(true) = 0.15
    assert ev.loss == pytest.approx((8 * -math.log(0.7) + 2 * -math.log(0.15)) / 10)
    # every confidence is 0.7 (one bin) and 80% are right: ECE = |0.8 - 0.7|
    assert ev.ece == pytest.approx(0.1)
    assert ev.reliability.thresholds == [10.0]
    assert ev.operating_point is None
    assert "macro" not in ev.auc
    assert ev.images == 10 and ev.split == "test" and ev.temperature == 1.0


def test_three_class_auc_matches_one_vs_rest() -> None:
    rng = np.random.default_rng(3)
    p = softmax(rng.normal(size=(10, 3)))
    ev = evaluate_predictions(np.array(Y3), p, ANIMALS, bootstrap=0)
    for i, name in enumerate(ANIMALS):
        assert ev.auc[name] == pytest.approx(roc_auc_score(np.array(Y3) == i, p[:, i]))
        assert ev.roc[name].x[0] == 0.0 and ev.roc[name].y[-1] == 1.0
    assert ev.macro_auc == pytest.approx(np.mean([ev.auc[name] for name in ANIMALS]))


# --- binary: AUC, threshold, operating point --------------------------------------------


def test_auc_perfect_reversed_and_with_a_tie() -> None:
    y = np.array([0, 0, 1, 1])
    perfect = evaluate_predictions(y, binary([0.1, 0.2, 0.8, 0.9]), XRAY, bootstrap=0)
    reversed_ = evaluate_predictions(y, binary([0.9, 0.8, 0.2, 0.1]), XRAY, bootstrap=0)
    assert perfect.auc["PNEUMONIA"] == 1.0 and perfect.macro_auc == 1.0
    assert reversed_.auc["PNEUMONIA"] == 0.0 and reversed_.auc["macro"] == 0.0
    # pairs (positive, negative): (.4,.1)=1, (.4,.4)=1/2 (tie), (.8,.1)=1, (.8,.4)=1 -> 3.5 / 4
    tied = evaluate_predictions(y, binary([0.1, 0.4, 0.4, 0.8]), XRAY, bootstrap=0)
    assert tied.auc["PNEUMONIA"] == pytest.approx(3.5 / 4)
    assert tied.auc["NORMAL"] == pytest.approx(3.5 / 4)


POSITIVE_SCORES = [0.9, 0.8, 0.6, 0.35, 0.2]
NEGATIVE_SCORES = [0.7, 0.5, 0.3, 0.1, 0.05]


def test_choose_threshold_by_hand() -> None:
    y = np.array([1] * 5 + [0] * 5)
    score = np.array(POSITIVE_SCORES + NEGATIVE_SCORES)
    # 80% of 5 positives = 4: the 4th highest positive (0.35) must be flagged; the highest
    # negative below it that can be cleared is 0.3, the lowest positive above that 0.35
    assert choose_threshold(y, score, 0.8) == pytest.approx((0.3 + 0.35) / 2)
    # 60%: 0.6 must be flagged; negatives 0.5 and below are cleared; positives above 0.5: 0.6
    assert choose_threshold(y, score, 0.6) == pytest.approx((0.5 + 0.6) / 2)
    # 100%: 0.2 must be flagged; 0.1 cleared
    assert choose_threshold(y, score, 1.0) == pytest.approx((0.1 + 0.2) / 2)
    # 1%: only 0.9; the negative 0.7 is cleared and the lowest positive above it is 0.8:
    # catching 0.8 too costs no false alarm
    assert choose_threshold(y, score, 0.01) == pytest.approx((0.7 + 0.8) / 2)


def test_choose_threshold_has_the_best_specificity_and_then_sensitivity() -> None:
    rng = np.random.default_rng(7)
    y = rng.random(300) < 0.3
    score = np.round(rng.random(300), 2)  # many ties
    candidates = np.unique(np.r_[score, score + 0.005, 0.001, 0.999])
    for target in (0.5, 0.8, 0.9, 0.95, 1.0):
        t = choose_threshold(y, score, target)
        assert 0 < t < 1 and not np.isin(t, score)  # between two scores, never on one
        rates = binary_rates(y, score, t)
        assert rates.sensitivity >= target
        meeting = [binary_rates(y, score, c) for c in candidates]
        meeting = [r for r in meeting if r.sensitivity >= target]
        best = max(r.specificity for r in meeting)
        assert rates.specificity == best
        assert rates.sensitivity == max(r.sensitivity for r in meeting if r.specificity == best)


def test_choose_threshold_tie_and_rounding_rules() -> None:
    # 0.95 * 20 = 19.000000000000004 in floating point: 19 positives are enough; with no
    # negative image to clear, the threshold stays halfway to the next lower score
    score = np.linspace(1.0, 0.05, 20)
    assert choose_threshold(np.ones(20, bool), score, 0.95) == pytest.approx(0.075)
    # every negative scores above the positives: nothing tells how low to go
    y = np.array([1, 1, 0, 0])
    assert choose_threshold(y, np.array([0.6, 0.3, 0.9, 0.7]), 1.0) == pytest.approx(0.15)
    # a negative tied with the positive that must be flagged is flagged too
    y = np.array([1, 1, 1, 1, 0])
    s = np.array([0.9, 0.5, 0.5, 0.5, 0.5])
    assert choose_threshold(y, s, 0.5) == pytest.approx(0.25)
    # no positive image: sensitivity undefined, the argmax rule
    assert choose_threshold(np.zeros(3), np.array([0.2, 0.6, 0.9])) == 0.5
    with pytest.raises(LinnaeusError):
        choose_threshold(y, s, 0.0)


def test_perfectly_separated_validation_gives_a_threshold_inside_the_gap() -> None:
    """A confident model: positives reach exactly 1.0 in float32, negatives 0.0 or a little
    more; the threshold sits halfway in the gap, strictly inside (0, 1)."""
    positives = np.array([1.0, 1.0, 1.0, 0.9999999, 0.97], np.float32)
    negatives = np.array([0.0, 0.0, 1e-7, 0.02, 0.2], np.float32)
    y = np.r_[np.ones(5, bool), np.zeros(5, bool)]
    score = np.r_[positives, negatives]
    for target in (0.5, 0.95, 1.0):
        t = choose_threshold(y, score, target)
        assert t == pytest.approx((0.2 + 0.97) / 2)
        rule = DecisionRule(("negative", "positive"), t)  # accepted: strictly inside (0, 1)
        assert list(rule.decide(binary(score))) == [1] * 5 + [0] * 5
    everything_one = choose_threshold(np.ones(3, bool), np.ones(3, np.float32), 0.95)
    assert everything_one == 0.5 and 0 < everything_one < 1


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.1, 1.5, math.nan, math.inf, True])
def test_a_decision_rule_refuses_a_threshold_not_strictly_inside(threshold: float) -> None:
    with pytest.raises(LinnaeusError, match="threshold"):
        DecisionRule(("NORMAL", "PNEUMONIA"), threshold)


def test_the_decision_rule_compares_float32_probabilities_exactly() -> None:
    rule = DecisionRule(("NORMAL", "PNEUMONIA"), 0.99999997)  # between two float32 values
    below, above = np.float32(0.99999994), np.float32(1.0)
    p = np.array([[1 - below, below], [0.0, above]], np.float32)
    assert list(rule.decide(p)) == [0, 1]
    assert DecisionRule(("a", "b", "c")).decide(np.array([[0.4, 0.4, 0.2]]))[0] == 0  # ties


def test_binary_operating_point_by_hand() -> None:
    y = np.array([1] * 5 + [0] * 5)
    p = binary(POSITIVE_SCORES + NEGATIVE_SCORES)
    ev = evaluate_predictions(y, p, XRAY, threshold=0.35, bootstrap=0)
    point = ev.operating_point
    assert point is not None and point.positive_class == "PNEUMONIA"
    assert point.threshold == 0.35 and point.chosen_on == "validation"
    # p >= 0.35: positives .9 .8 .6 .35 (4 of 5); negatives .7 .5 (2 of 5 false alarms)
    assert point.sensitivity == pytest.approx(4 / 5)
    assert point.specificity == pytest.approx(3 / 5)
    assert point.precision == pytest.approx(4 / 6)
    # accuracy and confusion count the same decisions
    assert ev.confusion == [[3, 2], [1, 4]]
    assert ev.accuracy == pytest.approx(7 / 10)
    assert ev.per_class["PNEUMONIA"].recall == pytest.approx(point.sensitivity)
    assert ev.per_class["NORMAL"].recall == pytest.approx(point.specificity)
    assert ev.per_class["PNEUMONIA"].precision == pytest.approx(point.precision)
    # the most probable class, kept as a secondary figure: .9 .8 .6 and .7 flagged (.5 vs
    # .5 is a tie: the earlier class, NORMAL)
    assert ev.argmax_accuracy == pytest.approx(7 / 10)
    assert ev.to_dict()["threshold"] == 0.35
    assert ev.to_dict()["decision_rule"] == "PNEUMONIA when its probability is at least 0.350"


def test_accuracy_is_the_operating_point_mix_and_differs_from_the_argmax() -> None:
    y, p = synthetic_binary(400, 8)
    ev = evaluate_predictions(y, p, XRAY, threshold=0.3, bootstrap=0)
    point = ev.operating_point
    positives = int(np.sum(y == 1))
    mix = (point.sensitivity * positives + point.specificity * (len(y) - positives)) / len(y)
    assert ev.accuracy == pytest.approx(mix)
    assert ev.accuracy == pytest.approx(np.mean((p[:, 1] >= 0.3) == (y == 1)))
    assert ev.argmax_accuracy == pytest.approx(np.mean(p.argmax(axis=1) == y))
    assert ev.accuracy != ev.argmax_accuracy
    assert np.trace(np.array(ev.confusion)) == round(ev.accuracy * len(y))


def test_at_threshold_is_the_evaluation_at_that_threshold() -> None:
    y, p = synthetic_binary(300, 9)
    saved = evaluate_predictions(y, p, XRAY, threshold=0.5, bootstrap=100)
    what_if = at_threshold(saved, y, p, 0.3)
    direct = evaluate_predictions(y, p, XRAY, threshold=0.3, bootstrap=100)
    for field in ("accuracy", "balanced_accuracy", "confusion", "per_class", "auc", "roc"):
        assert getattr(what_if, field) == getattr(direct, field), field
    assert what_if.operating_point.threshold == 0.3
    assert what_if.operating_point.chosen_on == "user"
    assert what_if.ci["accuracy"] == direct.ci["accuracy"]
    assert what_if.ci["macro_auc"] == saved.ci["macro_auc"]  # the AUC does not move


def test_binary_rates_by_hand() -> None:
    rates = binary_rates(np.array([1, 1, 0, 0]), np.array([0.9, 0.4, 0.6, 0.1]), 0.5)
    assert (rates.true_positives, rates.false_negatives) == (1, 1)
    assert (rates.true_negatives, rates.false_positives) == (1, 1)
    assert rates.sensitivity == 0.5 and rates.specificity == 0.5 and rates.precision == 0.5
    assert math.isnan(binary_rates(np.array([0]), np.array([0.2]), 0.5).sensitivity)


def test_binary_threshold_from_validation_and_positive_class() -> None:
    y = np.array([1] * 5 + [0] * 5)
    # PNEUMONIA is column 0 here, named explicitly
    p = binary(POSITIVE_SCORES + NEGATIVE_SCORES)[:, ::-1]
    ev = evaluate_predictions(
        y == 0, p, ["PNEUMONIA", "NORMAL"], positive_class="PNEUMONIA", threshold=0.6
    )
    point = ev.operating_point
    assert point is not None and point.positive_class == "PNEUMONIA"
    # p >= 0.6: positives .9 .8 .6; negatives .7
    assert (point.threshold, point.sensitivity, point.specificity) == (0.6, 0.6, 0.8)
    assert ev.confusion == [[3, 2], [1, 4]]  # PNEUMONIA first: 3 found, 1 false alarm
    with pytest.raises(LinnaeusError):
        evaluate_predictions(y, p, XRAY, positive_class="EFFUSION")
    with pytest.raises(LinnaeusError):
        evaluate_predictions(y, p, ["NORMAL", "NORMAL"])


# --- calibration and temperature -------------------------------------------------------


def test_ece_of_a_calibrated_model_is_near_zero() -> None:
    rng = np.random.default_rng(0)
    score = rng.random(100_000)
    y = (rng.random(100_000) < score).astype(int)  # P(pneumonia) is exactly the score
    ev = evaluate_predictions(y, binary(score), XRAY, bootstrap=0)
    assert ev.ece < 0.01
    assert sum(ev.reliability.thresholds) == 100_000
    assert np.allclose(ev.reliability.x, ev.reliability.y, atol=0.03)


def test_ece_with_two_bins_by_hand() -> None:
    # confidence 0.55 (bin 9 of 15): one right, one wrong -> accuracy 1/2, gap 0.05
    # confidence 0.95 (bin 15 of 15): two right, one wrong -> accuracy 2/3, gap 0.95 - 2/3
    y = np.array([1, 0, 1, 0, 0])
    p = binary([0.55, 0.55, 0.95, 0.05, 0.95])
    ev = evaluate_predictions(y, p, XRAY, bootstrap=0)
    assert ev.ece == pytest.approx((2 * 0.05 + 3 * (0.95 - 2 / 3)) / 5)
    assert ev.reliability.x == pytest.approx([0.55, 0.95])
    assert ev.reliability.y == pytest.approx([0.5, 2 / 3])
    assert ev.reliability.thresholds == [2.0, 3.0]


@pytest.mark.parametrize("true_temperature", [0.5, 2.5])
def test_fit_temperature_recovers_the_true_temperature(true_temperature: float) -> None:
    rng = np.random.default_rng(1)
    calibrated = rng.normal(0, 2, size=(20_000, 4))
    cumulative = softmax(calibrated).cumsum(axis=1)
    y = np.minimum((rng.random((20_000, 1)) > cumulative).sum(axis=1), 3)
    fitted = fit_temperature(calibrated * true_temperature, y)
    assert fitted == pytest.approx(true_temperature, rel=0.1)


def test_fit_temperature_degenerate_inputs_give_one() -> None:
    assert fit_temperature(np.zeros((0, 3)), np.zeros(0)) == 1.0
    assert fit_temperature(np.array([[2.0, 0.0], [3.0, 1.0]]), np.array([0, 0])) == 1.0
    assert fit_temperature(np.ones((4, 2)), np.array([0, 1, 0, 1])) == 1.0
    assert fit_temperature(np.array([[np.nan, 0.0], [1.0, 0.0]]), np.array([0, 1])) == 1.0


def test_softmax_is_stable_and_round_trips() -> None:
    p = softmax(np.array([[1e4, 0.0, -1e4], [1e300, 1e300, -1e300]]))
    assert np.isfinite(p).all()
    assert p[0] == pytest.approx([1.0, 0.0, 0.0]) and p[1] == pytest.approx([0.5, 0.5, 0.0])
    z = np.array([[1.0, 2.0, 4.0]])
    assert softmax(z, 2.0) == pytest.approx(softmax(z / 2.0))
    probabilities = np.array([[0.2, 0.8, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    logits = logits_from_probabilities(probabilities)
    assert np.isfinite(logits).all()
    assert softmax(logits) == pytest.approx(probabilities, abs=1e-9)
    with pytest.raises(LinnaeusError):
        softmax(z, 0.0)


# --- intervals --------------------------------------------------------------------------


def test_wilson_intervals_match_published_values() -> None:
    # Newcombe (1998), Statistics in Medicine 17:857, table I: Wilson score intervals
    for (successes, trials), (low, high) in {
        (81, 263): (0.2553, 0.3662),
        (15, 148): (0.0624, 0.1605),
        (0, 20): (0.0, 0.1611),
        (1, 29): (0.0061, 0.1718),
    }.items():
        interval = wilson_interval(successes, trials)
        assert (interval.low, interval.high) == pytest.approx((low, high), abs=1e-4)
    assert wilson_interval(0, 0) is None


def test_small_sets_never_get_a_zero_width_interval() -> None:
    """14 test images, all right: accuracy 100%, but not "100%-100%"."""
    y = np.array([0] * 7 + [1] * 7)
    p = binary([0.1] * 7 + [0.9] * 7)
    ev = evaluate_predictions(y, p, XRAY, threshold=0.5)
    for name in ("accuracy", "sensitivity", "specificity", "precision"):
        interval = ev.ci[name]
        assert interval.high == pytest.approx(1.0) and interval.low < 0.8, name
    assert ev.ci["accuracy"].low == pytest.approx(14 / (14 + 1.959964**2), abs=1e-4)
    assert "macro_auc" not in ev.ci  # 7 images a class: the bootstrap would collapse
    assert any("Few images (14)" in note for note in ev.notes())
    assert any("Calibration is not plotted" in note for note in ev.notes())
    assert evaluate_predictions(*synthetic_binary(200, 1), XRAY).notes() == []


def test_intervals_contain_the_estimate_and_narrow_with_more_images() -> None:
    small = evaluate_predictions(*synthetic_binary(200, 1), XRAY, bootstrap=500)
    large = evaluate_predictions(*synthetic_binary(5000, 1), XRAY, bootstrap=500)
    for ev in (small, large):
        point = ev.operating_point
        assert point is not None
        estimates = {
            "accuracy": ev.accuracy,
            "macro_auc": ev.macro_auc,
            "sensitivity": point.sensitivity,
            "specificity": point.specificity,
            "precision": point.precision,
        }
        for name, estimate in estimates.items():
            assert ev.ci[name].low < estimate < ev.ci[name].high, name
    for name in ("accuracy", "macro_auc", "sensitivity"):
        small_width = small.ci[name].high - small.ci[name].low
        large_width = large.ci[name].high - large.ci[name].low
        assert large_width < small_width / 2, name


def test_auc_bootstrap_is_deterministic_with_the_seed() -> None:
    y, p = synthetic_binary(300, 2)
    first = evaluate_predictions(y, p, XRAY, bootstrap=200, seed=5).ci
    assert evaluate_predictions(y, p, XRAY, bootstrap=200, seed=5).ci == first
    assert evaluate_predictions(y, p, XRAY, bootstrap=200, seed=6).ci != first
    assert "macro_auc" not in evaluate_predictions(y, p, XRAY, bootstrap=0).ci
    assert evaluate_predictions(y, p, XRAY, bootstrap=0).ci["accuracy"] == first["accuracy"]


def test_auc_bootstrap_matches_a_per_resample_loop() -> None:
    """The vectorised interval equals scikit-learn's AUC computed on each resample."""
    rng = np.random.default_rng(4)
    y = np.r_[np.arange(3).repeat(20)]
    p = softmax(rng.normal(size=(60, 3)) + 1.5 * np.eye(3)[y])
    p[:10] = np.round(p[:10], 1)  # some exact ties
    p /= p.sum(axis=1, keepdims=True)
    ev = evaluate_predictions(y, p, ANIMALS, bootstrap=200, seed=9)
    draws = np.random.default_rng(9).integers(0, 60, size=(200, 60))
    values = []
    for rows in draws:
        yb, pb = y[rows], p[rows]
        if len(np.unique(yb)) == 3:
            values.append(np.mean([roc_auc_score(yb == i, pb[:, i]) for i in range(3)]))
    low, high = np.percentile(values, [2.5, 97.5])
    assert (ev.ci["macro_auc"].low, ev.ci["macro_auc"].high) == pytest.approx((low, high))


def test_intervals_of_5000_images_are_fast() -> None:
    y, p = synthetic_binary(5000, 3)
    start = time.perf_counter()
    ev = evaluate_predictions(y, p, XRAY, bootstrap=1000)
    assert time.perf_counter() - start < 2.0
    assert {"accuracy", "macro_auc", "sensitivity", "specificity", "precision"} <= set(ev.ci)


# --- degenerate inputs ------------------------------------------------------------------


def test_single_image() -> None:
    ev = evaluate_predictions(np.array([1]), binary([0.8]), XRAY)
    assert ev.accuracy == 1.0 and ev.confusion == [[0, 0], [0, 1]]
    assert ev.auc == {"NORMAL": None, "PNEUMONIA": None, "macro": None}
    assert ev.macro_auc is None and "macro_auc" not in ev.ci
    point = ev.operating_point
    assert point is not None and point.sensitivity == 1.0 and math.isnan(point.specificity)
    assert ev.ci["accuracy"].low == pytest.approx(0.2065, abs=1e-4)  # Wilson, 1 of 1
    assert ev.ci["accuracy"].high == pytest.approx(1.0)
    assert "specificity" not in ev.ci
    assert ev.to_dict()["operating_point"]["specificity"] is None


def test_all_images_of_one_class() -> None:
    ev = evaluate_predictions(np.zeros(5, int), confident([0, 0, 1, 2, 0]), ANIMALS)
    assert all(value is None for value in ev.auc.values()) and ev.macro_auc is None
    assert ev.per_class["dog"] == ev.per_class["fox"]
    assert (ev.per_class["dog"].recall, ev.per_class["dog"].support) == (0.0, 0)
    assert ev.per_class["dog"].precision == 0.0  # predicted once, never right
    assert ev.roc["dog"].x == [] and ev.pr["cat"].x == []
    assert ev.accuracy == 0.6 and ev.balanced_accuracy == 0.6


def test_absent_class_and_class_never_predicted() -> None:
    # fox is absent from the labels; dog is never predicted
    y = np.array([0, 0, 0, 1, 1, 1])
    ev = evaluate_predictions(y, confident([0, 0, 2, 0, 0, 0]), ANIMALS, bootstrap=100)
    assert ev.auc["fox"] is None and ev.auc["cat"] is not None and ev.auc["dog"] is not None
    assert ev.macro_auc == pytest.approx((ev.auc["cat"] + ev.auc["dog"]) / 2)
    assert ev.per_class["fox"].support == 0 and ev.per_class["fox"].recall == 0.0
    assert ev.per_class["dog"].precision == 0.0 and ev.per_class["dog"].recall == 0.0
    assert ev.confusion[2] == [0, 0, 0]


def test_exact_ties_and_no_positive_image() -> None:
    tied = evaluate_predictions(np.array([0, 1, 0, 1]), binary([0.5] * 4), XRAY)
    assert tied.argmax_accuracy == 0.5  # ties: NORMAL
    assert tied.auc["PNEUMONIA"] == 0.5
    point = tied.operating_point
    assert point is not None and point.threshold == 0.25  # chosen on these images
    assert (point.sensitivity, point.specificity) == (1.0, 0.0)
    assert tied.accuracy == 0.5 and tied.confusion == [[0, 2], [0, 2]]
    healthy = evaluate_predictions(np.zeros(3, int), binary([0.2, 0.6, 0.9]), XRAY)
    point = healthy.operating_point
    assert point is not None and point.threshold == 0.5 and math.isnan(point.sensitivity)
    assert point.specificity == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("y", "p"),
    [
        (np.array([0, 1]), binary([0.5])),  # one row short
        (np.array([0, 3]), binary([0.5, 0.5])),  # label out of range
        (np.array([0, 1]), np.array([[0.5, 0.9], [0.5, 0.5]])),  # row sums to 1.4
        (np.array([0, 1]), np.array([[np.nan, 1.0], [0.5, 0.5]])),
        (np.zeros(0, int), np.zeros((0, 2))),
    ],
)
def test_inputs_that_do_not_fit_raise_a_linnaeus_error(y: np.ndarray, p: np.ndarray) -> None:
    with pytest.raises(LinnaeusError):
        evaluate_predictions(y, p, XRAY)


# --- relabel queue and JSON -------------------------------------------------------------


def test_relabel_queue_order() -> None:
    ids = np.array([10, 11, 12, 13, 14, 15])
    y = np.array([0, 0, 1, 1, 0, 1])
    p = binary([0.9, 0.6, 0.3, 0.8, 0.1, 0.3])
    # misclassified: 10 (loss -ln .1), 11 (-ln .4), 12 (-ln .3), 15 (-ln .3, tie with 12)
    # correct: 13 (-ln .8), 14 (-ln .9)
    queue = relabel_queue(ids, y, p, DecisionRule(tuple(XRAY)))
    assert [item.image_id for item in queue] == [10, 12, 15, 11, 13, 14]
    assert [item.misclassified for item in queue] == [True] * 4 + [False] * 2
    first = queue[0]
    assert (first.label, first.predicted) == (0, 1)
    assert first.confidence == pytest.approx(0.9) and first.loss == pytest.approx(-math.log(0.1))
    ev = evaluate_predictions(y, p, XRAY, bootstrap=0)
    assert ev.loss == pytest.approx(np.mean([item.loss for item in queue]))
    empty = (np.zeros(0, int), np.zeros(0, int), np.zeros((0, 2)), DecisionRule(tuple(XRAY)))
    assert relabel_queue(*empty) == []


def test_relabel_queue_follows_the_threshold() -> None:
    ids = np.array([10, 11, 12])
    y = np.array([0, 1, 1])
    p = binary([0.3, 0.4, 0.9])
    at_half = relabel_queue(ids, y, p, DecisionRule(tuple(XRAY)))
    at_025 = relabel_queue(ids, y, p, DecisionRule(tuple(XRAY), 0.25))
    assert [i.image_id for i in at_half if i.misclassified] == [11]
    assert [i.image_id for i in at_025 if i.misclassified] == [10]
    flagged = next(i for i in at_025 if i.image_id == 10)
    assert flagged.predicted == 1 and flagged.confidence == pytest.approx(0.3)


def test_to_dict_is_json_with_the_cli_keys() -> None:
    ev = evaluate_predictions(*synthetic_binary(400, 5), XRAY, bootstrap=100)
    data = json.loads(json.dumps(ev.to_dict(), allow_nan=False))
    required = {"accuracy", "classes", "confusion", "per_class", "auc", "ece", "threshold", "ci"}
    assert required <= set(data)
    assert set(data["per_class"]["PNEUMONIA"]) == {"precision", "recall", "f1", "support"}
    assert data["threshold"] == ev.operating_point.threshold
    assert data["ci"]["accuracy"]["low"] <= data["accuracy"] <= data["ci"]["accuracy"]["high"]
    assert data["roc"]["PNEUMONIA"]["thresholds"][0] is None  # inf: nothing flagged
    three = evaluate_predictions(np.array(Y3), confident(PRED3), ANIMALS, bootstrap=10)
    assert json.loads(json.dumps(three.to_dict(), allow_nan=False))["threshold"] is None
