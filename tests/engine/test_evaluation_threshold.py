"""Two-class evaluation: AUC, the threshold picked for a target sensitivity, the
decision rule and the operating point it gives."""

from __future__ import annotations

import math

import numpy as np
import pytest

from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.evaluation.decision import DecisionRule
from linnaeus.engine.evaluation.decision import binary_rates
from linnaeus.engine.evaluation.decision import choose_threshold
from linnaeus.engine.evaluation.metrics import at_threshold
from linnaeus.engine.evaluation.metrics import evaluate_predictions
from tests.engine.conftest import XRAY
from tests.engine.conftest import binary
from tests.engine.conftest import synthetic_binary


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
