"""What the evaluation panel shows, computed off the GUI thread from stored predictions.

`load_evaluation` runs in a Worker. It keeps each image's calibrated
probabilities, so that moving the threshold slider recounts the evaluation at
the new threshold with the engine's `at_threshold` (NumPy over the stored
probabilities, not a new evaluation): a what-if until "Use this threshold"
saves it with the version.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from linnaeus.engine.evaluation.decision import BinaryRates
from linnaeus.engine.evaluation.intervals import Interval
from linnaeus.engine.evaluation.intervals import few_images_note
from linnaeus.engine.evaluation.intervals import wilson_interval
from linnaeus.engine.evaluation.label_issues import LabelIssue
from linnaeus.engine.evaluation.label_issues import version_label_issues
from linnaeus.engine.evaluation.metrics import AUGMENTED_VIEWS_NOTE
from linnaeus.engine.evaluation.metrics import Evaluation
from linnaeus.engine.evaluation.metrics import at_threshold
from linnaeus.engine.evaluation.metrics import threshold_origin
from linnaeus.engine.evaluation.version import calibrate_version
from linnaeus.engine.evaluation.version import calibrated_probabilities
from linnaeus.engine.evaluation.version import evaluate_version
from linnaeus.engine.evaluation.version import version_relabel_queue
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import Progress
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import check_cancelled
from linnaeus.engine.project import versions
from linnaeus.engine.project.predictions import split_predictions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.store import display_path
from linnaeus.engine.project.versions import ModelVersion
from linnaeus.gui.widgets.formatting import format_percent

QUEUE_LENGTH = 500  # the Check labels list shows this many images at most
SPLIT_WORDS = {"test": "test", "val": "validation", "train": "training"}


@dataclass(frozen=True)
class QueueEntry:
    """One image of the Check labels list, as shown."""

    image_id: int
    path: str
    label: str  # its label, as the version was trained on it
    suggested: str  # the class the judging model believes (the label itself if it agrees)
    score: float  # the judging model's probability that the label is wrong
    flagged: bool  # likely wrong: confident learning says so (in-sample: the model disagrees)
    suggested_probability: float


@dataclass(frozen=True)
class EvaluationData:
    """Everything the panel shows for one version and split: ``evaluation`` at the
    threshold saved with the version, and what the what-if slider needs."""

    version_id: int
    version_name: str
    evaluation: Evaluation
    queue: list[QueueEntry]
    held_out: bool  # the queue was judged by fold heads that never saw the images
    image_ids: np.ndarray  # the split's evaluated images
    labels: np.ndarray  # their class indices, as the version was trained on them
    probabilities: np.ndarray  # N x K, calibrated as the exported model gives them

    @property
    def positive(self) -> int | None:
        """Two classes: the index of the positive class."""
        if self.evaluation.operating_point is None:
            return None
        return self.evaluation.decision.positive_index

    @property
    def scores(self) -> np.ndarray | None:
        """Two classes: calibrated p(positive) per image."""
        positive = self.positive
        return None if positive is None else self.probabilities[:, positive]

    @property
    def is_positive(self) -> np.ndarray | None:
        positive = self.positive
        return None if positive is None else self.labels == positive

    def at_threshold(self, threshold: float) -> Evaluation:
        """The evaluation as it would be at ``threshold`` (the saved one: as saved)."""
        point = self.evaluation.operating_point
        if point is not None and threshold == point.threshold:
            return self.evaluation
        return at_threshold(self.evaluation, self.labels, self.probabilities, threshold)

    def cell_images(self, evaluation: Evaluation, label: int, predicted: int) -> list[int]:
        """The images of a confusion-matrix cell of ``evaluation`` (one of this data's)."""
        decided = evaluation.decision.decide(self.probabilities)
        chosen = (self.labels == label) & (decided == predicted)
        return [int(i) for i in self.image_ids[chosen]]


def load_evaluation(
    project_dir: Path,
    version_id: int,
    split: str,
    *,
    on_progress: ProgressCallback,
    cancel: CancelToken,
) -> EvaluationData:
    """Evaluate a version on a split from its stored predictions (runs in a Worker, on
    its own connection to the project)."""
    with ProjectStore.open(project_dir) as store:
        version = versions.get_version(store, version_id)
        on_progress(Progress("evaluate", 0, 3, "Measuring"))
        evaluation = evaluate_version(store, version, split)
        calibration = calibrate_version(store, version)  # saved by evaluate_version
        data = split_predictions(store, version, split)
        check_cancelled(cancel)
        on_progress(Progress("evaluate", 1, 3, "Ranking the labels to check"))
        issues = version_label_issues(store, version)
        held_out = issues is not None
        if issues is not None:
            queue = _held_out_queue(store, version, issues)
        else:
            queue = _in_sample_queue(store, version)
    probabilities = calibrated_probabilities(np.asarray(data.probabilities), calibration)
    return EvaluationData(version.id, version.name, evaluation, queue, held_out, data.image_ids,
                          data.labels, probabilities)  # fmt: skip


def _held_out_queue(
    store: ProjectStore, version: ModelVersion, issues: list[LabelIssue]
) -> list[QueueEntry]:
    """The labels to check, judged by fold heads that never saw the images."""
    return [
        QueueEntry(issue.image_id, display_path(store.image(issue.image_id).path),
                   version.classes[issue.label], version.classes[issue.suggested], issue.score,
                   issue.flagged, issue.suggested_probability)
        for issue in issues[:QUEUE_LENGTH]
    ]  # fmt: skip


def _in_sample_queue(store: ProjectStore, version: ModelVersion) -> list[QueueEntry]:
    """A version without held-out predictions (no backbone features): the labels its
    own model disagrees with, highest loss first."""
    return [
        QueueEntry(item.image_id, display_path(store.image(item.image_id).path),
                   version.classes[item.label], version.classes[item.predicted],
                   1.0 - math.exp(-item.loss), item.misclassified, item.confidence)
        for item in version_relabel_queue(store, version)[:QUEUE_LENGTH]
    ]  # fmt: skip


def decision_text(evaluation: Evaluation) -> str:
    """How the model decides, and where its threshold comes from."""
    point = evaluation.operating_point
    if point is None:
        return "The model picks the most probable class."
    return f"The model decides {evaluation.decision.describe()} ({threshold_origin(point)})."


def summary_text(data: EvaluationData, evaluation: Evaluation | None = None) -> str:
    """The headline figures of ``evaluation`` (default: at the saved threshold)."""
    e = evaluation or data.evaluation
    split = SPLIT_WORDS.get(e.split, e.split)
    counted = f"{split} images"
    if e.augmented_views:
        counted = "augmented views of the training images"
    text = (
        f"{data.version_name} on {e.images:,} {counted}: accuracy "
        f"{_with_interval(e.accuracy, e.ci.get('accuracy'))}"
    )
    point = e.operating_point
    if point is not None:
        text += (
            f", sensitivity {_with_interval(point.sensitivity, e.ci.get('sensitivity'))}, "
            f"specificity {_with_interval(point.specificity, e.ci.get('specificity'))}"
        )
    text += f", balanced accuracy {format_percent(e.balanced_accuracy)}"
    if e.macro_auc is not None:
        auc = e.ci.get("macro_auc")
        text += f", AUC {e.macro_auc:.3f}"
        text += f" ({auc.low:.3f}–{auc.high:.3f})" if auc else ""
    text += f", calibration error {e.ece:.3f}."
    if point is not None:
        text += (
            f" The most probable class (argmax) would be right for "
            f"{format_percent(e.argmax_accuracy)}."
        )
    if e.augmented_views:
        text += f" {AUGMENTED_VIEWS_NOTE}"
    few = few_images_note(e.images)  # the calibration tab says why it shows no plot
    return f"{text} {few}" if few else text


def _with_interval(value: float, interval: Interval | None) -> str:
    if interval is None:
        return format_percent(value)
    return (
        f"{format_percent(value)} ({format_percent(interval.low)}–{format_percent(interval.high)})"
    )


def rates_text(rates: BinaryRates, positive: str) -> str:
    """What calling an image positive at a threshold does, counted, with intervals."""
    found, positives = rates.true_positives, rates.true_positives + rates.false_negatives
    cleared, others = rates.true_negatives, rates.true_negatives + rates.false_positives
    return (
        f"Calling an image {positive} when its probability is at least {rates.threshold:.3f}: "
        f"sensitivity {_with_interval(rates.sensitivity, wilson_interval(found, positives))} "
        f"({found} of {positives} {positive} images found), specificity "
        f"{_with_interval(rates.specificity, wilson_interval(cleared, others))} "
        f"({cleared} of {others} others cleared)."
    )
