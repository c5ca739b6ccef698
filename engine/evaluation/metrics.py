"""How good a model is on one split, from its class probabilities per image.

Every figure that counts right and wrong images (accuracy, balanced accuracy,
confusion matrix, per-class precision/recall/F1 and, for two classes, the
operating point's sensitivity, specificity and precision) counts the model's
own decisions (`decision.DecisionRule`: for two classes, the threshold saved
with the model version), so it is what the exported model does; the accuracy
of the most probable class is kept as a secondary figure, named so. ROC/PR
curves and AUC (over all thresholds), calibration (ECE and a reliability
curve of the probabilities) and the log loss do not depend on the decision.
Intervals come from `intervals` (Wilson for shares, bootstrap for the AUC);
`at_threshold` recounts an evaluation at another threshold (the Evaluate
tab's what-if). Also temperature scaling and the queue of images to re-check
for wrong labels. Pure NumPy/scikit-learn: no TensorFlow, no Qt.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from linnaeus.engine.errors import EvaluationError
from linnaeus.engine.evaluation.decision import DecisionRule
from linnaeus.engine.evaluation.decision import binary_rates
from linnaeus.engine.evaluation.decision import check_target
from linnaeus.engine.evaluation.decision import choose_threshold
from linnaeus.engine.evaluation.intervals import Interval
from linnaeus.engine.evaluation.intervals import few_images_note
from linnaeus.engine.evaluation.intervals import macro_auc_interval
from linnaeus.engine.evaluation.intervals import proportion_intervals


def _metrics() -> Any:
    """scikit-learn's metrics, imported on first use: importing them takes seconds,
    and the desktop window imports this module before it shows itself."""
    import sklearn.metrics

    return sklearn.metrics


ECE_BINS = 15
CALIBRATION_MIN_IMAGES = 100  # fewer images: the reliability curve is not plotted
TEMPERATURE_BOUNDS = (0.05, 20.0)
PROBABILITY_FLOOR = 1e-12  # logits_from_probabilities: log(0) becomes log(1e-12)
MAX_CURVE_POINTS = 1000  # longer ROC/PR curves are thinned for plots and JSON


@dataclass(frozen=True)
class ClassMetrics:
    """Precision, recall and F1 of one class at the model's decisions, and its image count."""

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
    """The decision threshold on the positive class probability and what it achieves.
    ``chosen_on`` says where the threshold was chosen: "validation" (for the
    target sensitivity), "user" (by hand) or the evaluated split itself. Rates
    are NaN (None in JSON) when undefined (e.g. no positive image)."""

    positive_class: str
    threshold: float
    target_sensitivity: float
    chosen_on: str
    sensitivity: float
    specificity: float
    precision: float


THRESHOLD_ORIGINS = {
    "validation": "chosen on the validation images for a sensitivity of at least {target:.0%}",
    "user": "set by hand in the Evaluate tab; if it was set looking at these images, "
    "their figures are optimistic",
}


def threshold_origin(point: BinaryOperatingPoint) -> str:
    """Where the operating point's threshold was chosen, in words."""
    origin = THRESHOLD_ORIGINS.get(point.chosen_on, "chosen on these {split} images (optimistic)")
    return origin.format(target=point.target_sensitivity, split=point.chosen_on)


AUGMENTED_VIEWS_NOTE = (
    "Validated on augmented views of the training images, because some classes have too few "
    "images for a validation split: figures are optimistic."
)


@dataclass(frozen=True)
class Evaluation:
    """Everything measured on one split; `to_dict` is what the CLI prints.

    Accuracy, balanced accuracy, confusion, per-class figures, the operating
    point and their intervals count the model's decisions (``decision``);
    ``argmax_accuracy`` is the secondary figure of the most probable class.
    """

    split: str
    classes: list[str]
    images: int
    decision: DecisionRule
    accuracy: float
    argmax_accuracy: float
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
    augmented_views: bool = False  # counted on augmented views of training images (optimistic)

    @property
    def shows_calibration(self) -> bool:
        """Whether there are enough images (`CALIBRATION_MIN_IMAGES`) to plot calibration."""
        return self.images >= CALIBRATION_MIN_IMAGES

    def notes(self) -> list[str]:
        """What a reader must know to read these figures: augmented views, few images,
        no calibration plot."""
        notes = [AUGMENTED_VIEWS_NOTE] if self.augmented_views else []
        notes += [note] if (note := few_images_note(self.images)) else []
        if not self.shows_calibration:
            notes.append(calibration_note(self.images))
        return notes

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of every field plus ``threshold`` (None unless binary) and
        where it was chosen, the decision rule in words and the notes; NaN and
        infinities become None."""
        out = _json_safe(dataclasses.asdict(self))
        point = self.operating_point
        out["threshold"] = None if point is None else _json_safe(point.threshold)
        out["threshold_origin"] = None if point is None else threshold_origin(point)
        out["decision_rule"] = self.decision.describe()
        out["notes"] = self.notes()
        return out


def calibration_note(images: int) -> str:
    """Why the calibration of ``images`` images is not plotted."""
    return (
        f"Calibration is not plotted: {images} images are too few to tell a calibrated model "
        f"from chance (at least {CALIBRATION_MIN_IMAGES} are needed)."
    )


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
    chosen_on: str = "validation",
    bootstrap: int = 1000,
    seed: int = 0,
    temperature: float = 1.0,
) -> Evaluation:
    """Evaluate class probabilities (N x C, rows summing to 1) against true class indices.

    For two classes the model decides by ``threshold`` on p(``positive_class``)
    (default: the LAST class, PNEUMONIA after NORMAL); pass the threshold
    chosen on validation data (`choose_threshold`): without one it is chosen on
    these images for ``target_sensitivity``, which is optimistic. With more
    classes it picks the most probable class (ties: the earlier class).
    Accuracy, balanced accuracy, confusion, per-class figures and the operating
    point count these decisions, with 95% Wilson intervals in ``ci``. A class
    with no image gets recall 0.0, support 0 and AUC None; ``macro_auc``
    averages the classes whose AUC is defined, with a bootstrap interval over
    ``bootstrap`` resamples (none when 0, or when too few images make it
    collapse). ``temperature`` records the temperature the probabilities were
    computed with.
    """
    names = [str(name) for name in classes]
    if len(set(names)) != len(names):
        raise EvaluationError(f"Class names must differ from each other: {names}.")
    y, p = _checked(y_true, probabilities, len(names))
    check_target(target_sensitivity)
    n, c = p.shape
    rule = DecisionRule(tuple(names))
    if c == 2:
        positive = _positive_index(names, positive_class)
        if threshold is None:
            threshold = choose_threshold(y == positive, p[:, positive], target_sensitivity)
            chosen_on = split
        rule = DecisionRule(tuple(names), threshold, names[positive])
    figures = _decision_figures(y, p, rule, (target_sensitivity, chosen_on))
    support = np.bincount(y, minlength=c)
    defined = [i for i in range(c) if 0 < support[i] < n]
    auc, roc, pr = _one_vs_rest(y, p, names, defined)
    defined_aucs = [auc[names[i]] for i in defined]
    macro_auc = float(np.mean(defined_aucs)) if defined_aucs else None
    if c == 2:
        auc.setdefault("macro", macro_auc)
    interval = macro_auc_interval(y, p, defined, bootstrap, seed)
    if interval is not None:
        figures["ci"]["macro_auc"] = interval
    ece, reliability = _calibration(p.max(axis=1), p.argmax(axis=1) == y)
    loss = float(_metrics().log_loss(y, p, labels=list(range(c))))
    return Evaluation(
        split=split, classes=names, images=n, decision=rule,
        argmax_accuracy=float(np.mean(p.argmax(axis=1) == y)), loss=loss, auc=auc,
        macro_auc=macro_auc, roc=roc, pr=pr, ece=ece, reliability=reliability,
        temperature=float(temperature), **figures,
    )  # fmt: skip


def at_threshold(
    evaluation: Evaluation, y_true: np.ndarray, probabilities: np.ndarray, threshold: float
) -> Evaluation:
    """A two-class ``evaluation`` of these images as it would be at another decision
    threshold (what if): every figure that counts decisions is recounted; the
    curves, AUC, calibration and loss do not depend on the threshold."""
    point = evaluation.operating_point
    if point is None:
        raise EvaluationError("A decision threshold applies to two-class models only.")
    y, p = _checked(y_true, probabilities, len(evaluation.classes))
    figures = _decision_figures(
        y, p, evaluation.decision.with_threshold(threshold), (point.target_sensitivity, "user")
    )
    if "macro_auc" in evaluation.ci:
        figures["ci"]["macro_auc"] = evaluation.ci["macro_auc"]
    return dataclasses.replace(
        evaluation, decision=evaluation.decision.with_threshold(threshold), **figures
    )


def _decision_figures(
    y: np.ndarray, p: np.ndarray, rule: DecisionRule, origin: tuple[float, str]
) -> dict[str, Any]:
    """The `Evaluation` fields that count the decisions of ``rule``: accuracy, balanced
    accuracy, confusion, per-class figures, operating point (``origin``: its target
    sensitivity and where its threshold was chosen), and their Wilson intervals."""
    predicted = rule.decide(p)
    labels = list(range(len(rule.classes)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined-metric warnings: zero_division handles them
        precision, recall, f1, support = _metrics().precision_recall_fscore_support(
            y, predicted, labels=labels, zero_division=0.0
        )
        balanced = float(_metrics().balanced_accuracy_score(y, predicted))
    per_class = {
        name: ClassMetrics(float(precision[i]), float(recall[i]), float(f1[i]), int(support[i]))
        for i, name in enumerate(rule.classes)
    }
    right = int(np.count_nonzero(predicted == y))
    counts = {"accuracy": (right, len(y))}
    point = None
    if rule.threshold is not None:
        positive = rule.positive_index
        rates = binary_rates(y == positive, p[:, positive], rule.threshold)
        tp, fn = rates.true_positives, rates.false_negatives
        tn, fp = rates.true_negatives, rates.false_positives
        counts |= {"sensitivity": (tp, tp + fn), "specificity": (tn, tn + fp),
                   "precision": (tp, tp + fp)}  # fmt: skip
        point = BinaryOperatingPoint(
            positive_class=rule.classes[positive], threshold=rates.threshold,
            target_sensitivity=float(origin[0]), chosen_on=origin[1], sensitivity=rates.sensitivity,
            specificity=rates.specificity, precision=rates.precision,
        )  # fmt: skip
    confusion = _metrics().confusion_matrix(y, predicted, labels=labels).tolist()
    return {
        "accuracy": right / len(y), "balanced_accuracy": balanced, "confusion": confusion,
        "per_class": per_class, "operating_point": point, "ci": proportion_intervals(counts),
    }  # fmt: skip


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
    image_ids: np.ndarray, y_true: np.ndarray, probabilities: np.ndarray, rule: DecisionRule
) -> list[QueueItem]:
    """Images in the order to check their labels: those whose label differs from the
    model's decision (``rule``) first, highest loss (cross-entropy of the true
    label) first, then the others by descending loss; equal losses by image id.
    An item's confidence is the probability of the class the model decided."""
    ids = np.asarray(image_ids).ravel()
    p = np.asarray(probabilities, dtype=np.float64)
    y, p = _checked(y_true, p, len(rule.classes), allow_empty=True)
    if len(ids) != len(y):
        raise EvaluationError(f"{len(ids)} image ids for {len(y)} labels.")
    predicted = rule.decide(p)
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
