"""95% bootstrap intervals of the evaluation's figures, all resamples at once.

Each figure (accuracy, balanced accuracy, sensitivity, specificity, macro AUC)
is a function of a histogram of per-image codes, so one resample costs one
`np.bincount` instead of a call to scikit-learn. Pure NumPy: no TensorFlow, no Qt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

_CHUNK_CELLS = 2_000_000  # bootstrap resamples x images held in memory at once
_AUC_CELL_BUDGET = 100_000_000  # resamples x images x classes for the macro-AUC interval
_MIN_AUC_RESAMPLES = 100


@dataclass(frozen=True)
class Interval:
    """A 95% bootstrap percentile interval."""

    low: float
    high: float


def bootstrap_intervals(
    y: np.ndarray, p: np.ndarray, correct: np.ndarray, auc_classes: list[int],
    binary: tuple[np.ndarray, np.ndarray] | None, resamples: int, seed: int,
) -> dict[str, Interval]:  # fmt: skip
    """95% percentile intervals over ``resamples`` resamples of the images (none
    when 0): accuracy and balanced accuracy; sensitivity and specificity when
    ``binary`` (is positive, flagged) is given; the macro AUC of ``auc_classes``.
    A resample where a figure is undefined (e.g. no positive image) is left out
    for that figure."""
    if resamples <= 0:
        return {}
    n, c = p.shape
    class_codes = 2 * y + correct  # (true class, correct)
    binary_codes = None if binary is None else 2 * binary[0] + binary[1]  # TN FP FN TP
    auc_codes = [_auc_codes(p[:, i], y == i) for i in auc_classes]
    auc_resamples = min(resamples, _AUC_CELL_BUDGET // (n * max(1, len(auc_classes))))
    if auc_resamples < min(resamples, _MIN_AUC_RESAMPLES):
        log.info("too many images x classes for a macro-AUC interval")
        auc_resamples = 0
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_CELLS // n)
    values: dict[str, list[np.ndarray]] = {}
    for start in range(0, resamples, chunk):
        draws = rng.integers(0, n, size=(min(chunk, resamples - start), n))
        found = {}
        with np.errstate(divide="ignore", invalid="ignore"):
            counts = _histogram(draws, class_codes, 2 * c).reshape(-1, c, 2)
            found["accuracy"] = counts[:, :, 1].sum(axis=1) / n
            found["balanced_accuracy"] = np.nanmean(counts[:, :, 1] / counts.sum(axis=2), axis=1)
            if binary_codes is not None:
                tn, fp, fn, tp = _histogram(draws, binary_codes, 4).T
                found["sensitivity"] = tp / (tp + fn)
                found["specificity"] = tn / (tn + fp)
            if auc_codes and start < auc_resamples:
                rows = min(len(draws), auc_resamples - start)
                aucs = [_auc(_histogram(draws[:rows], codes, size)) for codes, size in auc_codes]
                found["macro_auc"] = np.mean(aucs, axis=0)
        for name, value in found.items():
            values.setdefault(name, []).append(value)
    return _percentile_intervals(values)


def _percentile_intervals(values: dict[str, list[np.ndarray]]) -> dict[str, Interval]:
    """The 2.5th and 97.5th percentiles of each figure's finite resampled values."""
    intervals = {}
    for name, parts in values.items():
        value = np.concatenate(parts)
        value = value[np.isfinite(value)]
        if len(value):
            low, high = np.percentile(value, [2.5, 97.5])
            intervals[name] = Interval(float(low), float(high))
    return intervals


def _histogram(draws: np.ndarray, codes: np.ndarray, size: int) -> np.ndarray:
    """Per resample (row of image draws), how often each of ``size`` codes was drawn."""
    keys = np.arange(len(draws))[:, None] * size + codes[draws]
    return np.bincount(keys.ravel(), minlength=len(draws) * size).reshape(len(draws), size)


def _auc_codes(score: np.ndarray, is_class: np.ndarray) -> tuple[np.ndarray, int]:
    """Per image 2 x (rank of its score among the distinct scores) + (in the class),
    and the number of codes."""
    distinct, rank = np.unique(score, return_inverse=True)
    return 2 * rank.ravel() + is_class, 2 * len(distinct)


def _auc(histogram: np.ndarray) -> np.ndarray:
    """One-vs-rest AUC (Mann-Whitney, ties count half) per row of a histogram of
    `_auc_codes`; NaN for a row without images of the class or without others."""
    negatives, positives = histogram[:, 0::2], histogram[:, 1::2]
    below = np.cumsum(negatives, axis=1) - negatives
    twice = (positives * (2 * below + negatives)).sum(axis=1)
    return twice / (2.0 * positives.sum(axis=1) * negatives.sum(axis=1))
