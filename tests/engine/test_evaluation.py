"""Evaluation: hand-computed metrics at the model's decisions, calibration, degenerate
inputs, relabel queue (two-class thresholds: test_evaluation_threshold.py; intervals:
test_evaluation_intervals.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.evaluation.decision import DecisionRule
from linnaeus.engine.evaluation.metrics import evaluate_predictions
from linnaeus.engine.evaluation.metrics import fit_temperature
from linnaeus.engine.evaluation.metrics import logits_from_probabilities
from linnaeus.engine.evaluation.metrics import relabel_queue
from linnaeus.engine.evaluation.metrics import softmax
from tests.engine.conftest import ANIMALS
from tests.engine.conftest import XRAY
from tests.engine.conftest import binary
from tests.engine.conftest import synthetic_binary


def confident(predicted: list[int], n_classes: int = 3, top: float = 0.7) -> np.ndarray:
    """Rows with ``top`` on the predicted class and the rest shared evenly."""
    p = np.full((len(predicted), n_classes), (1 - top) / (n_classes - 1))
    p[np.arange(len(predicted)), predicted] = top
    return p


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
