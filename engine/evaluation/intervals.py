"""95% confidence intervals of the evaluation's figures that hold on small test sets.

Accuracy, sensitivity, specificity and precision are shares of images, so
they get Wilson score intervals (scipy's `binomtest`): never zero-width, even
when every one of 14 images is right. The macro AUC gets a bootstrap
percentile interval over resamples of the images (all resamples at once, one
`np.bincount` each), and none when too few images of a class make the
bootstrap collapse. Below `FEW_IMAGES` images, `few_images_note` says that the
intervals are wide. Pure NumPy/SciPy: no TensorFlow, no Qt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

CONFIDENCE = 0.95
FEW_IMAGES = 50  # below this many images, a note says the intervals are wide
AUC_MIN_IMAGES = 10  # a class needs this many images, in and out of it, for an AUC interval
_CHUNK_CELLS = 2_000_000  # bootstrap resamples x images held in memory at once
_AUC_CELL_BUDGET = 100_000_000  # resamples x images x classes for the macro-AUC interval
_MIN_AUC_RESAMPLES = 100


@dataclass(frozen=True)
class Interval:
    """A 95% confidence interval."""

    low: float
    high: float


def wilson_interval(successes: int, trials: int) -> Interval | None:
    """The 95% Wilson score interval of the share ``successes`` / ``trials`` (None
    without trials)."""
    if trials <= 0:
        return None
    from scipy import stats

    ci = stats.binomtest(int(successes), int(trials)).proportion_ci(CONFIDENCE, method="wilson")
    return Interval(float(ci.low), float(ci.high))


def proportion_intervals(counts: dict[str, tuple[int, int]]) -> dict[str, Interval]:
    """Wilson intervals of named shares given as (successes, trials); a share
    without trials gets none."""
    intervals = {name: wilson_interval(*count) for name, count in counts.items()}
    return {name: interval for name, interval in intervals.items() if interval is not None}


def few_images_note(images: int) -> str | None:
    """The warning shown beside figures measured on fewer than `FEW_IMAGES` images."""
    if images >= FEW_IMAGES:
        return None
    return (
        f"Few images ({images}): the intervals are wide, and a few images more or less "
        "right would change these figures a lot."
    )


def macro_auc_interval(
    y: np.ndarray, p: np.ndarray, auc_classes: list[int], resamples: int, seed: int
) -> Interval | None:
    """The 95% bootstrap percentile interval of the mean one-vs-rest AUC of
    ``auc_classes`` over ``resamples`` resamples of the images; None when there
    are no resamples, a class has fewer than `AUC_MIN_IMAGES` images in it or
    outside it, or the resampled AUCs do not vary (the bootstrap has collapsed:
    it would claim a certainty the images cannot give)."""
    n = len(y)
    if resamples <= 0 or not auc_classes:
        return None
    sizes = [int(np.count_nonzero(y == i)) for i in auc_classes]
    if min(min(sizes), n - max(sizes)) < AUC_MIN_IMAGES:
        return None
    resamples = min(resamples, _AUC_CELL_BUDGET // (n * len(auc_classes)))
    if resamples < _MIN_AUC_RESAMPLES:
        log.info("too many images x classes for a macro-AUC interval")
        return None
    codes = [_auc_codes(p[:, i], y == i) for i in auc_classes]
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_CELLS // n)
    values = []
    for start in range(0, resamples, chunk):
        draws = rng.integers(0, n, size=(min(chunk, resamples - start), n))
        with np.errstate(divide="ignore", invalid="ignore"):
            aucs = [_auc(_histogram(draws, code, size)) for code, size in codes]
        values.append(np.mean(aucs, axis=0))
    value = np.concatenate(values)
    value = value[np.isfinite(value)]
    if len(value) == 0:
        return None
    low, high = np.percentile(value, [2.5, 97.5])
    return Interval(float(low), float(high)) if high > low else None


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
