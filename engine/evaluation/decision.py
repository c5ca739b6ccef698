"""The one decision rule: how a model version turns class probabilities into a class.

For two classes the positive class (`positive_class` picks it from the class
names when the version is trained; it is saved with the version) wins when its
probability reaches the threshold saved with the model version (`choose_threshold` picks it on the
validation images for a target sensitivity); with more classes, or without a
threshold, the most probable class wins (ties: the earlier class). The
exported model carries the same rule in its metadata, so `linnaeus predict`,
the evaluation, the grid's marks and filters, the relabel queue and the model
card give every image the same class. `binary_rates` counts what a threshold
achieves on images whose labels are known (the evaluation's operating point
and the Evaluate tab's what-if slider). Pure NumPy: no TensorFlow, no Qt.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from linnaeus.engine.errors import EvaluationError

log = logging.getLogger(__name__)

# Class names that read as "nothing found" (lower case, letters and digits only).
NEGATIVE_NAMES = frozenset({
    "normal", "healthy", "negative", "neg", "no", "none", "nofinding", "uninfected",
    "noninfected", "benign", "control", "controls", "clean", "absent", "ok", "good", "false",
    "0",
})  # fmt: skip
NO_POSITIVES_THRESHOLD = 0.5  # choose_threshold's answer when there is no positive image
THRESHOLD_MARGIN = 1e-9  # a chosen threshold stays this far inside (0, 1)


def check_threshold(threshold: float) -> float:
    """``threshold`` as a float, or an EvaluationError unless it is strictly between 0 and 1
    (at 0 every image would be positive, at 1 none could be)."""
    if isinstance(threshold, bool) or not isinstance(threshold, int | float | np.floating):
        raise EvaluationError(f"The decision threshold must be a number, not {threshold!r}.")
    if not 0.0 < float(threshold) < 1.0:
        raise EvaluationError(
            f"The decision threshold must be between 0 and 1 (not included), not {threshold!r}."
        )
    return float(threshold)


def positive_class(classes: Sequence[str]) -> int:
    """The index of the class a two-class model's threshold should find (its
    sensitivity is the one reported): the class whose name does NOT read as a
    negative, when exactly one of the two does. A name reads as a negative when,
    in lower case and with everything but letters and digits dropped, it is one of
    `NEGATIVE_NAMES` (normal, healthy, negative, no, uninfected, benign, control,
    ...): Parasitized of Parasitized/Uninfected, PNEUMONIA of NORMAL/PNEUMONIA,
    yes of no/yes. When neither or both read as negatives: the second class (1),
    the rule before names were read (dogs of cats/dogs)."""
    if len(classes) != 2:
        raise EvaluationError(f"A positive class is for two-class models, not {list(classes)}.")
    negative = [_reads_negative(name) for name in classes]
    return negative.index(False) if negative.count(True) == 1 else 1


def _reads_negative(name: str) -> bool:
    return "".join(ch for ch in str(name).lower() if ch.isalnum()) in NEGATIVE_NAMES


def flag_positive(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Which images a threshold calls positive: p(positive) >= ``threshold``, compared
    in float64 so that a float32 probability is never rounded onto the threshold."""
    return np.asarray(scores, dtype=np.float64) >= float(threshold)


@dataclass(frozen=True)
class DecisionRule:
    """How a model decides each image's class from its class probabilities.

    ``threshold`` (two classes only, strictly between 0 and 1) is on the
    probability of ``positive_class`` (default: the second class): the positive
    class when its probability is at least the threshold, the other class below
    it. Without a threshold: the most probable class.
    """

    classes: tuple[str, ...]
    threshold: float | None = None
    positive_class: str | None = None

    def __post_init__(self) -> None:
        classes = tuple(str(name) for name in self.classes)
        object.__setattr__(self, "classes", classes)
        if len(classes) < 2 or len(set(classes)) != len(classes):
            raise EvaluationError(f"A model needs at least two distinct classes, not {classes}.")
        if self.positive_class is not None and self.positive_class not in classes:
            raise EvaluationError(
                f"The positive class {self.positive_class!r} is not one of the model's classes "
                f"({', '.join(classes)})."
            )
        if self.threshold is not None:
            if len(classes) != 2:
                raise EvaluationError(
                    f"A decision threshold is for two-class models; this one has {len(classes)} "
                    "classes."
                )
            object.__setattr__(self, "threshold", check_threshold(self.threshold))

    @property
    def positive_index(self) -> int:
        """The index of the positive class (two classes: default the second one)."""
        if self.positive_class is None:
            return len(self.classes) - 1
        return self.classes.index(self.positive_class)

    def with_threshold(self, threshold: float | None) -> DecisionRule:
        """The same rule at another threshold (None: the most probable class)."""
        positive = self.classes[self.positive_index] if len(self.classes) == 2 else None
        return dataclasses.replace(self, threshold=threshold, positive_class=positive)

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """The class index of each row of ``probabilities`` (N x K)."""
        p = np.asarray(probabilities)
        if p.ndim != 2 or p.shape[1] != len(self.classes):
            raise EvaluationError(
                f"Probabilities of shape {p.shape} do not fit {len(self.classes)} classes."
            )
        if self.threshold is None:
            return p.argmax(axis=1)
        positive = self.positive_index
        return np.where(flag_positive(p[:, positive], self.threshold), positive, 1 - positive)

    def describe(self) -> str:
        """The rule in words: "PNEUMONIA when its probability is at least 0.412"."""
        if self.threshold is None:
            return "the most probable class"
        positive = self.classes[self.positive_index]
        return f"{positive} when its probability is at least {self.threshold:.3f}"


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


def binary_rates(is_positive: np.ndarray, scores: np.ndarray, threshold: float) -> BinaryRates:
    """The four counts, hence sensitivity, specificity and precision, of the decisions
    ``threshold`` makes on images with p(positive) ``scores``."""
    flagged = flag_positive(scores, threshold)
    positive = np.asarray(is_positive).astype(bool)
    return BinaryRates(
        threshold=float(threshold),
        true_positives=int(np.count_nonzero(flagged & positive)),
        false_negatives=int(np.count_nonzero(~flagged & positive)),
        true_negatives=int(np.count_nonzero(~flagged & ~positive)),
        false_positives=int(np.count_nonzero(flagged & ~positive)),
    )


def choose_threshold(
    y_true_positive: np.ndarray,
    positive_probability: np.ndarray,
    target_sensitivity: float = 0.95,
) -> float:
    """The decision threshold for a target sensitivity; choose it on validation images.

    Of the thresholds that find at least ``target_sensitivity`` of the positive
    images (p >= t), those with the best specificity all fall in one gap
    between two neighbouring scores: the highest negative image that can still
    be cleared and the lowest positive image above it. The answer is the middle
    of that gap, so it is strictly between 0 and 1 with room on both sides;
    when the images separate the classes perfectly, it is halfway between the
    highest negative and the lowest positive score. When no negative image
    scores below the positives that must be found (a tiny or odd validation
    split), nothing says how low to go: the threshold stays halfway between the
    lowest of those positives and the next lower score (0 if none). Without
    positive images the sensitivity is undefined and the answer is 0.5, the
    most probable class.
    """
    check_target(target_sensitivity)
    is_positive = np.asarray(y_true_positive).astype(bool).ravel()
    score = np.asarray(positive_probability, dtype=np.float64).ravel()
    if len(is_positive) != len(score):
        raise EvaluationError(f"{len(is_positive)} labels for {len(score)} probabilities.")
    positives = np.sort(score[is_positive])[::-1]
    if len(positives) == 0:
        log.warning("no positive image: threshold falls back to %s", NO_POSITIVES_THRESHOLD)
        return NO_POSITIVES_THRESHOLD
    needed = max(1, math.ceil(target_sensitivity * len(positives) - 1e-9))
    cut = positives[needed - 1]  # the lowest score that must still be called positive
    cleared = score[~is_positive & (score < cut)]
    if len(cleared):  # the best specificity: clear these, then find every positive above
        low = float(cleared.max())
        high = float(positives[positives > low].min())
    else:
        below = score[score < cut]
        low, high = (float(below.max()) if len(below) else 0.0), float(cut)
    if high <= 0.0:  # every positive image that must be found has probability 0
        log.warning("no threshold in (0, 1) finds a positive image; using %s",
                    NO_POSITIVES_THRESHOLD)  # fmt: skip
        return NO_POSITIVES_THRESHOLD
    return min(max((low + high) / 2, THRESHOLD_MARGIN), 1.0 - THRESHOLD_MARGIN)


def check_target(target: float) -> None:
    if not 0 < target <= 1:
        raise EvaluationError(f"The target sensitivity must be in (0, 1], not {target}.")
