"""Intervals: Wilson for rates, bootstrap for AUC; honest at small n, and fast."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from linnaeus.engine.evaluation.intervals import wilson_interval
from linnaeus.engine.evaluation.metrics import evaluate_predictions
from linnaeus.engine.evaluation.metrics import softmax
from tests.engine.conftest import ANIMALS
from tests.engine.conftest import XRAY
from tests.engine.conftest import binary
from tests.engine.conftest import synthetic_binary


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
