"""What the evaluation panel shows, computed off the GUI thread from stored predictions.

`load_evaluation` runs in a Worker; it keeps each image's calibrated
p(positive) so that the threshold slider can call the engine's `binary_rates`
on each move (NumPy over the stored probabilities, not a new evaluation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from linnaeus.engine.evaluation.metrics import BinaryRates
from linnaeus.engine.evaluation.metrics import Evaluation
from linnaeus.engine.evaluation.metrics import logits_from_probabilities
from linnaeus.engine.evaluation.metrics import softmax
from linnaeus.engine.evaluation.version import calibrate_version
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
from linnaeus.gui.widgets.formatting import format_percent

QUEUE_LENGTH = 500  # the relabel queue shows this many images at most


@dataclass(frozen=True)
class QueueEntry:
    """One image of the relabel queue, as shown."""

    image_id: int
    path: str
    label: str
    predicted: str
    confidence: float
    loss: float
    misclassified: bool


@dataclass(frozen=True)
class EvaluationData:
    """Everything the panel shows for one version and split."""

    version_name: str
    evaluation: Evaluation
    queue: list[QueueEntry]
    image_ids: np.ndarray  # the split's evaluated images
    labels: np.ndarray  # their class indices, as the version was trained on them
    predicted: np.ndarray  # the class index the model gives each (most probable)
    positive: int | None = None  # two classes: the index of the positive class
    scores: np.ndarray | None = None  # two classes: calibrated p(positive) per image

    @property
    def is_positive(self) -> np.ndarray | None:
        return None if self.positive is None else self.labels == self.positive

    def cell_images(self, label: int, predicted: int) -> list[int]:
        """The images of a confusion-matrix cell."""
        chosen = (self.labels == label) & (self.predicted == predicted)
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
        queue = version_relabel_queue(store, version)[:QUEUE_LENGTH]
        entries = [
            QueueEntry(
                item.image_id,
                display_path(store.image(item.image_id).path),
                version.classes[item.label],
                version.classes[item.predicted],
                item.confidence,
                item.loss,
                item.misclassified,
            )
            for item in queue
        ]
    probabilities = data.probabilities
    if calibration["temperature"] != 1.0:  # as the evaluation measured them
        probabilities = softmax(
            logits_from_probabilities(probabilities), calibration["temperature"]
        )
    positive = scores = None
    if evaluation.operating_point is not None:
        positive = version.classes.index(calibration["positive_class"])
        scores = probabilities[:, positive]
    return EvaluationData(
        version.name,
        evaluation,
        entries,
        data.image_ids,
        data.labels,
        probabilities.argmax(axis=1),
        positive,
        scores,
    )


def summary_text(data: EvaluationData) -> str:
    e = data.evaluation
    ci = e.ci.get("accuracy")
    interval = f" (95% CI {format_percent(ci.low)}–{format_percent(ci.high)})" if ci else ""
    split = {"test": "test", "val": "validation", "train": "training"}.get(e.split, e.split)
    text = (
        f"{data.version_name} on {e.images:,} {split} images: accuracy "
        f"{format_percent(e.accuracy)}{interval}, balanced accuracy "
        f"{format_percent(e.balanced_accuracy)}"
    )
    if e.macro_auc is not None:
        text += f", AUC {e.macro_auc:.3f}"
    return text + f", calibration error {e.ece:.3f}."


def rates_text(rates: BinaryRates, positive: str) -> str:
    return (
        f"Calling an image {positive} when its probability is at least {rates.threshold:.3f}: "
        f"sensitivity {format_percent(rates.sensitivity)} ({rates.true_positives} of "
        f"{rates.true_positives + rates.false_negatives} {positive} images found), specificity "
        f"{format_percent(rates.specificity)} ({rates.true_negatives} of "
        f"{rates.true_negatives + rates.false_positives} others cleared)."
    )
