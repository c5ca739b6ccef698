"""How good a model is on one split, from its class probabilities per image.

Accuracy, confusion matrix and per-class precision/recall/F1 (at the argmax),
one-vs-rest ROC/PR curves and AUC, calibration (ECE and a reliability curve),
bootstrap confidence intervals and, for two-class tasks, an operating point: a
threshold on the positive class chosen for a target sensitivity, because a
missed pneumonia costs more than a false alarm. Also temperature scaling and
the queue of images to re-check for wrong labels. Pure NumPy/scikit-learn:
no TensorFlow, no Qt.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from linnaeus.engine.errors import LinnaeusError


def _metrics() -> Any:
    """scikit-learn's metrics, imported on first use: importing them takes seconds,
    and the desktop window imports this module before it shows itself."""
    import sklearn.metrics

    return sklearn.metrics


log = logging.getLogger(__name__)

ECE_BINS = 15
TEMPERATURE_BOUNDS = (0.05, 20.0)
PROBABILITY_FLOOR = 1e-12  # logits_from_probabilities: log(0) becomes log(1e-12)
NO_POSITIVES_THRESHOLD = 0.5  # choose_threshold's answer when there is no positive image
MAX_CURVE_POINTS = 1000  # longer ROC/PR curves are thinned for plots and JSON
_CHUNK_CELLS = 2_000_000  # bootstrap resamples x images held in memory at once
_AUC_CELL_BUDGET = 100_000_000  # resamples x images x classes for the macro-AUC interval
_MIN_AUC_RESAMPLES = 100


class EvaluationError(LinnaeusError):
    """Predictions, labels and class names that do not fit together."""


@dataclass(frozen=True)
class ClassMetrics:
    """Precision, recall and F1 of one class at the argmax, and its image count."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Interval:
    """A 95% bootstrap percentile interval."""

    low: float
    high: float


@dataclass(frozen=True)
class Curve:
    """Points of a curve. ROC: x = false positive rate, y = true positive rate;
    PR: x = recall, y = precision (both with the threshold each point is taken
    at, ``inf`` meaning "nothing positive"); reliability: x = mean confidence,
    y = accuracy of each non-empty bin, thresholds = image count of the bin."""

    x: list[float]
    y: list[float]
    thresholds: list[float]


@dataclass(frozen=True)
class BinaryOperatingPoint:
    """A threshold on the positive class probability and what it achieves.
    Rates are NaN (None in JSON) when undefined (e.g. no positive image)."""

    positive_class: str
    threshold: float
    target_sensitivity: float
    sensitivity: float
    specificity: float
    precision: float


@dataclass(frozen=True)
class Evaluation:
    """Everything measured on one split; `to_dict` is what the CLI prints."""

    split: str
    classes: list[str]
    images: int
    accuracy: float
    balanced_accuracy: float
    loss: float
    confusion: list[list[int]]
    per_class: dict[str, ClassMetrics]
    auc: dict[str, float | None]
    macro_auc: float | None
    roc: dict[str, Curve]
    pr: dict[str, Curve]
    ece: float
    reliability: Curve
    ci: dict[str, Interval]
    operating_point: BinaryOperatingPoint | None
    temperature: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of every field plus ``threshold`` (None unless binary);
        NaN and infinities become None."""
        out = _json_safe(dataclasses.asdict(self))
        point = self.operating_point
        out["threshold"] = None if point is None else _json_safe(point.threshold)
        return out


@dataclass(frozen=True)
class QueueItem:
    """One image in the relabel queue."""

    image_id: int
    label: int
    predicted: int
    confidence: float
    loss: float
    misclassified: bool


def evaluate_predictions(
    y_true: np.ndarray,
    probabilities: np.ndarray,
    classes: Sequence[str],
    *,
    split: str = "test",
    positive_class: str | None = None,
    threshold: float | None = None,
    target_sensitivity: float = 0.95,
    bootstrap: int = 1000,
    seed: int = 0,
    temperature: float = 1.0,
) -> Evaluation:
    """Evaluate class probabilities (N x C, rows summing to 1) against true class indices.

    Accuracy, balanced accuracy, confusion and per-class metrics use the argmax
    (ties go to the earlier class), so they compare across tasks. A class with
    no image gets recall 0.0, support 0 and AUC None; ``macro_auc`` averages the
    classes whose AUC is defined. For two classes, ``auc`` also has the key
    "macro", ``positive_class`` defaults to the LAST class (PNEUMONIA after
    NORMAL) and ``operating_point`` reports the sensitivity, specificity and
    precision of predicting positive when p(positive) >= ``threshold``. Pass the
    threshold chosen on validation data (`choose_threshold`); without one it is
    chosen on these images, which is optimistic. ``positive_class`` and
    ``threshold`` are ignored for more than two classes. ``ci`` holds 95%
    intervals from ``bootstrap`` resamples of the images (none when 0), the
    threshold kept fixed. ``temperature`` records the temperature the
    probabilities were computed with.
    """
    names = [str(name) for name in classes]
    if len(set(names)) != len(names):
        raise EvaluationError(f"Class names must differ from each other: {names}.")
    y, p = _checked(y_true, probabilities, len(names))
    n, c = p.shape
    labels = list(range(c))
    predicted = p.argmax(axis=1)
    correct = predicted == y
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined-metric warnings: handled below
        precision, recall, f1, support = _metrics().precision_recall_fscore_support(
            y, predicted, labels=labels, zero_division=0.0
        )
        balanced = float(_metrics().balanced_accuracy_score(y, predicted))
        loss = float(_metrics().log_loss(y, p, labels=labels))
    per_class = {
        name: ClassMetrics(float(precision[i]), float(recall[i]), float(f1[i]), int(support[i]))
        for i, name in enumerate(names)
    }
    auc: dict[str, float | None] = {}
    roc: dict[str, Curve] = {}
    pr: dict[str, Curve] = {}
    defined = [i for i in labels if 0 < support[i] < n]
    for i, name in enumerate(names):
        is_class = y == i
        if not 0 < support[i] < n:  # absent, or the only class present
            auc[name], roc[name], pr[name] = None, Curve([], [], []), Curve([], [], [])
            continue
        auc[name] = float(_metrics().roc_auc_score(is_class, p[:, i]))
        fpr, tpr, cuts = _metrics().roc_curve(is_class, p[:, i])
        roc[name] = _curve(fpr, tpr, cuts)
        prec, rec, cuts = _metrics().precision_recall_curve(
            is_class, p[:, i], drop_intermediate=True
        )
        pr[name] = _curve(rec, prec, np.append(cuts, np.inf))
    defined_aucs = [auc[names[i]] for i in defined]
    macro_auc = float(np.mean(defined_aucs)) if defined_aucs else None
    ece, reliability = _calibration(p.max(axis=1), correct)

    point = None
    binary: tuple[np.ndarray, np.ndarray] | None = None
    if c == 2:
        positive = _positive_index(names, positive_class)
        is_positive, score = y == positive, p[:, positive]
        if threshold is None:
            threshold = choose_threshold(is_positive, score, target_sensitivity)
        elif not math.isfinite(threshold):
            raise EvaluationError(f"The threshold must be a number, not {threshold}.")
        _check_target(target_sensitivity)
        point = _operating_point(names[positive], is_positive, score, threshold, target_sensitivity)
        binary = (is_positive, score >= threshold)
        if "macro" not in auc:
            auc["macro"] = macro_auc
    ci = _bootstrap(y, p, correct, defined, binary, bootstrap, seed)
    confusion = _metrics().confusion_matrix(y, predicted, labels=labels).tolist()
    return Evaluation(
        split=split, classes=names, images=n, accuracy=float(correct.mean()),
        balanced_accuracy=balanced, loss=loss, confusion=confusion, per_class=per_class,
        auc=auc, macro_auc=macro_auc, roc=roc, pr=pr, ece=ece, reliability=reliability, ci=ci,
        operating_point=point, temperature=float(temperature),
    )  # fmt: skip


def choose_threshold(
    y_true_positive: np.ndarray, positive_probability: np.ndarray, target_sensitivity: float = 0.95
) -> float:
    """The highest threshold t whose sensitivity (share of positive images with
    p >= t) is at least ``target_sensitivity``; choose it on validation data.

    It is always one of the positive images' probabilities: the k-th highest,
    k = ceil(target x positives). Ties count as positive (p >= t), so the
    sensitivity reached may exceed the target, and negatives tied with t are
    false alarms, never missed findings. Without positive images the
    sensitivity is undefined and the answer is 0.5, the argmax rule.
    """
    _check_target(target_sensitivity)
    is_positive = np.asarray(y_true_positive).astype(bool).ravel()
    score = np.asarray(positive_probability, dtype=np.float64).ravel()
    if len(is_positive) != len(score):
        raise EvaluationError(f"{len(is_positive)} labels for {len(score)} probabilities.")
    positives = np.sort(score[is_positive])[::-1]
    if len(positives) == 0:
        log.warning("no positive image: threshold falls back to %s", NO_POSITIVES_THRESHOLD)
        return NO_POSITIVES_THRESHOLD
    needed = max(1, math.ceil(target_sensitivity * len(positives) - 1e-9))
    return float(positives[needed - 1])


def fit_temperature(logits: np.ndarray, y_true: np.ndarray) -> float:
    """The temperature T minimising the cross-entropy of softmax(logits / T) on
    (validation) images, within `TEMPERATURE_BOUNDS` (Guo et al. 2017).
    1.0 when it cannot be fitted: no images, fewer than two classes present,
    non-finite logits, or logits that do not depend on the class."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y_true).ravel().astype(int)
    if z.ndim != 2 or len(y) != len(z) or len(np.unique(y)) < 2 or not np.isfinite(z).all():
        return 1.0
    if y.min() < 0 or y.max() >= z.shape[1] or np.ptp(z, axis=1).max() == 0:
        return 1.0
    picked = z[np.arange(len(z)), y]

    from scipy import optimize
    from scipy import special

    def mean_nll(inverse_t: float) -> float:
        return float(np.mean(special.logsumexp(inverse_t * z, axis=1) - inverse_t * picked))

    low, high = TEMPERATURE_BOUNDS  # the loss is convex in 1/T: bounded Brent finds its minimum
    result = optimize.minimize_scalar(
        mean_nll, bounds=(1 / high, 1 / low), method="bounded", options={"xatol": 1e-7}
    )
    if not result.success or not math.isfinite(result.x):
        return 1.0
    return float(np.clip(1 / result.x, low, high))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Class probabilities of logits (last axis) at a temperature; no overflow
    for huge logits."""
    if not (math.isfinite(temperature) and temperature > 0):
        raise EvaluationError(f"The temperature must be positive, not {temperature}.")
    from scipy import special

    return special.softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=-1)


def logits_from_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """Logits whose softmax gives back the probabilities (log p, with p below
    `PROBABILITY_FLOOR` raised to it), for models whose logits were not stored."""
    p = np.asarray(probabilities, dtype=np.float64)
    return np.log(np.clip(p, PROBABILITY_FLOOR, 1.0))


def relabel_queue(
    image_ids: np.ndarray, y_true: np.ndarray, probabilities: np.ndarray
) -> list[QueueItem]:
    """Images in the order to check their labels: misclassified first, highest
    loss (cross-entropy of the true label) first, then the correctly classified
    by descending loss; equal losses by image id."""
    ids = np.asarray(image_ids).ravel()
    p = np.asarray(probabilities, dtype=np.float64)
    y, p = _checked(y_true, p, p.shape[1] if p.ndim == 2 else 0, allow_empty=True)
    if len(ids) != len(y):
        raise EvaluationError(f"{len(ids)} image ids for {len(y)} labels.")
    predicted = p.argmax(axis=1)
    misclassified = predicted != y
    eps = np.finfo(np.float64).eps  # as sklearn's log_loss clips
    losses = -np.log(np.clip(p[np.arange(len(y)), y], eps, 1.0))
    order = np.lexsort((ids, -losses, ~misclassified))
    return [
        QueueItem(int(ids[i]), int(y[i]), int(predicted[i]), float(p[i, predicted[i]]),
                  float(losses[i]), bool(misclassified[i]))
        for i in order
    ]  # fmt: skip


def _checked(
    y_true: np.ndarray, probabilities: np.ndarray, n_classes: int, *, allow_empty: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Labels as ints and probabilities as float64 rows summing to 1, or an error."""
    y = np.asarray(y_true).ravel()
    p = np.asarray(probabilities, dtype=np.float64)
    if n_classes < 2:
        raise EvaluationError("Evaluation needs at least two classes.")
    if p.ndim != 2 or p.shape[1] != n_classes or len(p) != len(y):
        raise EvaluationError(
            f"Probabilities of shape {p.shape} do not fit {len(y)} images of {n_classes} classes."
        )
    if len(y) == 0 and not allow_empty:
        raise EvaluationError("There are no images to evaluate.")
    if len(y) and (not np.array_equal(y, y.astype(int)) or y.min() < 0 or y.max() >= n_classes):
        raise EvaluationError(f"Labels must be class indices 0..{n_classes - 1}.")
    sums = p.sum(axis=1)
    if not np.isfinite(p).all() or (p < 0).any() or (np.abs(sums - 1) > 1e-3).any():
        raise EvaluationError("Probabilities must be finite, non-negative and sum to 1 per image.")
    return y.astype(int), p / sums[:, None]


def _check_target(target: float) -> None:
    if not 0 < target <= 1:
        raise EvaluationError(f"The target sensitivity must be in (0, 1], not {target}.")


def _positive_index(names: list[str], positive_class: str | None) -> int:
    if positive_class is None:
        return len(names) - 1
    if positive_class not in names:
        raise EvaluationError(f"Positive class {positive_class!r} is not one of {names}.")
    return names.index(positive_class)


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else math.nan


def _operating_point(
    name: str, is_positive: np.ndarray, score: np.ndarray, threshold: float, target: float
) -> BinaryOperatingPoint:
    flagged = score >= threshold
    tn, fp, fn, tp = _metrics().confusion_matrix(is_positive, flagged, labels=[False, True]).ravel()
    return BinaryOperatingPoint(
        positive_class=name,
        threshold=float(threshold),
        target_sensitivity=float(target),
        sensitivity=_ratio(tp, tp + fn),
        specificity=_ratio(tn, tn + fp),
        precision=_ratio(tp, tp + fp),
    )


def _curve(x: np.ndarray, y: np.ndarray, thresholds: np.ndarray) -> Curve:
    """A curve as lists, thinned evenly (ends kept) to `MAX_CURVE_POINTS`."""
    keep = np.arange(len(x))
    if len(x) > MAX_CURVE_POINTS:
        keep = np.unique(np.linspace(0, len(x) - 1, MAX_CURVE_POINTS).round().astype(int))
    return Curve(x[keep].tolist(), y[keep].tolist(), np.asarray(thresholds)[keep].tolist())


def _calibration(confidence: np.ndarray, correct: np.ndarray) -> tuple[float, Curve]:
    """ECE over `ECE_BINS` equal-width bins (lo, hi] of confidence, and the reliability curve."""
    bins = np.clip(np.ceil(confidence * ECE_BINS).astype(int) - 1, 0, ECE_BINS - 1)
    counts = np.bincount(bins, minlength=ECE_BINS)
    used = counts > 0
    mean_confidence = np.bincount(bins, confidence, ECE_BINS)[used] / counts[used]
    accuracy = np.bincount(bins, correct.astype(float), ECE_BINS)[used] / counts[used]
    ece = float(np.sum(counts[used] * np.abs(accuracy - mean_confidence)) / len(confidence))
    return ece, Curve(
        mean_confidence.tolist(), accuracy.tolist(), counts[used].astype(float).tolist()
    )


def _bootstrap(
    y: np.ndarray, p: np.ndarray, correct: np.ndarray, auc_classes: list[int],
    binary: tuple[np.ndarray, np.ndarray] | None, resamples: int, seed: int,
) -> dict[str, Interval]:  # fmt: skip
    """95% percentile intervals over resamples of the images; a resample where a
    metric is undefined (e.g. no positive image) is left out for that metric."""
    if resamples <= 0:
        return {}
    n, c = p.shape
    # Each metric is a function of a histogram of per-image codes, one per resample.
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


def _json_safe(value: Any) -> Any:
    """Plain Python containers and numbers; NaN and infinities as None."""
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
