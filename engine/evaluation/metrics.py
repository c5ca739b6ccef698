"""How good a model is on one split, from its class probabilities per image.

Accuracy, confusion matrix and per-class precision/recall/F1 (at the argmax),
one-vs-rest ROC/PR curves and AUC, calibration (ECE and a reliability curve),
bootstrap confidence intervals (`intervals`) and, for two-class tasks, an
operating point: a threshold on the positive class chosen for a target
sensitivity, because a missed pneumonia costs more than a false alarm, and the
rates any threshold achieves (`binary_rates`, also what the GUI's threshold
slider shows). Also temperature scaling and the queue of images to re-check for
wrong labels. Pure NumPy/scikit-learn: no TensorFlow, no Qt.
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
from linnaeus.engine.evaluation.intervals import Interval
from linnaeus.engine.evaluation.intervals import bootstrap_intervals


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
class BinaryRates:
    """What calling an image positive when p(positive) >= threshold achieves on a
    set of images. Rates are NaN when undefined (e.g. no positive image)."""

    threshold: float
    true_positives: int
    false_negatives: int
    true_negatives: int
    false_positives: int

    @property
    def sensitivity(self) -> float:
        return _ratio(self.true_positives, self.true_positives + self.false_negatives)

    @property
    def specificity(self) -> float:
        return _ratio(self.true_negatives, self.true_negatives + self.false_positives)

    @property
    def precision(self) -> float:
        return _ratio(self.true_positives, self.true_positives + self.false_positives)


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else math.nan


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
    predicted = p.argmax(axis=1)
    correct = predicted == y
    per_class, balanced, loss = _argmax_metrics(y, p, predicted, names)
    defined = [i for i, name in enumerate(names) if 0 < per_class[name].support < n]
    auc, roc, pr = _one_vs_rest(y, p, names, defined)
    defined_aucs = [auc[names[i]] for i in defined]
    macro_auc = float(np.mean(defined_aucs)) if defined_aucs else None
    ece, reliability = _calibration(p.max(axis=1), correct)
    point: BinaryOperatingPoint | None = None
    binary: tuple[np.ndarray, np.ndarray] | None = None  # per image: is positive, flagged
    if c == 2:
        point, binary = _binary_decision(y, p, names, positive_class, threshold, target_sensitivity)
        auc.setdefault("macro", macro_auc)
    ci = bootstrap_intervals(y, p, correct, defined, binary, bootstrap, seed)
    confusion = _metrics().confusion_matrix(y, predicted, labels=list(range(c))).tolist()
    return Evaluation(
        split=split, classes=names, images=n, accuracy=float(correct.mean()),
        balanced_accuracy=balanced, loss=loss, confusion=confusion, per_class=per_class,
        auc=auc, macro_auc=macro_auc, roc=roc, pr=pr, ece=ece, reliability=reliability, ci=ci,
        operating_point=point, temperature=float(temperature),
    )  # fmt: skip


def _argmax_metrics(
    y: np.ndarray, p: np.ndarray, predicted: np.ndarray, names: list[str]
) -> tuple[dict[str, ClassMetrics], float, float]:
    """Per-class precision/recall/F1/support at the argmax, balanced accuracy and log loss."""
    labels = list(range(len(names)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined-metric warnings: zero_division handles them
        precision, recall, f1, support = _metrics().precision_recall_fscore_support(
            y, predicted, labels=labels, zero_division=0.0
        )
        balanced = float(_metrics().balanced_accuracy_score(y, predicted))
        loss = float(_metrics().log_loss(y, p, labels=labels))
    per_class = {
        name: ClassMetrics(float(precision[i]), float(recall[i]), float(f1[i]), int(support[i]))
        for i, name in enumerate(names)
    }
    return per_class, balanced, loss


def _one_vs_rest(
    y: np.ndarray, p: np.ndarray, names: list[str], defined: list[int]
) -> tuple[dict[str, float | None], dict[str, Curve], dict[str, Curve]]:
    """AUC, ROC and PR curve of each class against the rest; None and empty curves
    for a class not in ``defined`` (absent, or the only class present)."""
    auc: dict[str, float | None] = {}
    roc: dict[str, Curve] = {}
    pr: dict[str, Curve] = {}
    for i, name in enumerate(names):
        if i not in defined:
            auc[name], roc[name], pr[name] = None, Curve([], [], []), Curve([], [], [])
            continue
        is_class = y == i
        auc[name] = float(_metrics().roc_auc_score(is_class, p[:, i]))
        fpr, tpr, cuts = _metrics().roc_curve(is_class, p[:, i])
        roc[name] = _curve(fpr, tpr, cuts)
        prec, rec, cuts = _metrics().precision_recall_curve(
            is_class, p[:, i], drop_intermediate=True
        )
        pr[name] = _curve(rec, prec, np.append(cuts, np.inf))
    return auc, roc, pr


def _binary_decision(
    y: np.ndarray, p: np.ndarray, names: list[str], positive_class: str | None,
    threshold: float | None, target_sensitivity: float,
) -> tuple[BinaryOperatingPoint, tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    """The operating point of a two-class task at ``threshold`` (chosen on these
    images for the target when None), and per image (is positive, flagged)."""
    positive = _positive_index(names, positive_class)
    is_positive, score = y == positive, p[:, positive]
    if threshold is None:
        threshold = choose_threshold(is_positive, score, target_sensitivity)
    elif not math.isfinite(threshold):
        raise EvaluationError(f"The threshold must be a number, not {threshold}.")
    _check_target(target_sensitivity)
    rates = binary_rates(is_positive, score, threshold)
    point = BinaryOperatingPoint(
        positive_class=names[positive],
        threshold=rates.threshold,
        target_sensitivity=float(target_sensitivity),
        sensitivity=rates.sensitivity,
        specificity=rates.specificity,
        precision=rates.precision,
    )
    return point, (is_positive, score >= threshold)


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


def binary_rates(is_positive: np.ndarray, scores: np.ndarray, threshold: float) -> BinaryRates:
    """What calling an image positive when its score >= ``threshold`` achieves:
    the four counts, hence sensitivity, specificity and precision. The evaluation's
    operating point and the GUI's threshold slider both use it."""
    flagged = np.asarray(scores) >= threshold
    positive = np.asarray(is_positive).astype(bool)
    return BinaryRates(
        threshold=float(threshold),
        true_positives=int(np.count_nonzero(flagged & positive)),
        false_negatives=int(np.count_nonzero(~flagged & positive)),
        true_negatives=int(np.count_nonzero(~flagged & ~positive)),
        false_positives=int(np.count_nonzero(flagged & ~positive)),
    )


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
