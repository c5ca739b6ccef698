"""Classifying a folder with an exported model, end to end: the one path that
``linnaeus predict``, the GUI's Classify dialog and the demo all take.

The predictions stream from `Classifier.classify_folder` (engine.onnx.inference)
into the results CSV (engine.onnx.results) as they come; then, if asked, copies
are sorted into one folder per class and the predictions become label
suggestions in the project the model was trained for. Every destination is
checked before any work starts: nothing is ever written inside the folder
being classified. onnxruntime only, never TensorFlow.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING

from linnaeus.engine.atomic import remove_stale_temporaries
from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.images.imageio import content_hash
from linnaeus.engine.onnx.format import Int8Check
from linnaeus.engine.onnx.format import OnnxMetadata
from linnaeus.engine.onnx.inference import DEFAULT_BATCH_SIZE
from linnaeus.engine.onnx.inference import Classifier
from linnaeus.engine.onnx.results import UNKNOWN
from linnaeus.engine.onnx.results import Prediction
from linnaeus.engine.onnx.results import SortReport
from linnaeus.engine.onnx.results import check_destination
from linnaeus.engine.onnx.results import shown_label
from linnaeus.engine.onnx.results import sort_into as sort_copies
from linnaeus.engine.onnx.results import write_predictions_csv
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import ignore_progress
from linnaeus.engine.project.store import ProjectStore

if TYPE_CHECKING:
    from linnaeus.engine.project.label_edits import Edit


@dataclass(frozen=True)
class SuggestionReport:
    """The label suggestions written into a project: one undoable edit (or none)."""

    project: Path
    written: int  # images that got a suggested label
    edit: Edit | None


@dataclass(frozen=True)
class ClassifyResult:
    """A classified folder: where the results went and what the model found."""

    model: Path
    folder: Path  # as given
    csv: Path
    classes: list[str]
    provider: str  # the onnxruntime execution provider used
    precision: str  # "float32" or "int8"
    int8_check: Int8Check | None  # how the int8 model compared with the float one
    threads: int
    unknown_below: float | None
    images: int  # rows written to the CSV: every image file, readable or not
    counts: dict[str, int]  # images per shown label: every class, then "unknown" if any
    errors: list[tuple[str, str]]  # (path, reason) of the files that could not be read
    seconds: float  # classifying and writing the CSV
    sorted_copies: SortReport | None = None
    suggestions: SuggestionReport | None = None
    predictions: list[Prediction] = field(default_factory=list)  # with keep_predictions
    unfamiliar: int | None = None  # images unlike the training images; None: not scored

    @property
    def classified(self) -> int:
        return self.images - len(self.errors)

    @property
    def images_per_s(self) -> float | None:
        return self.images / self.seconds if self.seconds > 0 else None


def classify(
    model: Path | Classifier,
    folder: Path,
    csv_path: Path,
    *,
    sort_into: Path | None = None,
    unknown_below: float | None = None,
    suggest_into: Path | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    keep_predictions: bool = False,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> ClassifyResult:
    """Classify every image file under ``folder`` with ``model`` (an exported
    .onnx file, or one already loaded) and write one CSV row per file to
    ``csv_path``.

    ``sort_into`` also copies each readable image into ``sort_into/<class>/``
    (``unfamiliar/`` when the model finds it unlike its training images);
    ``unknown_below`` labels images whose confidence is below it "unknown";
    ``suggest_into`` (a project folder) gives that project's unlabelled images
    with the same content as a classified file its predicted class, as one
    undoable edit, after checking the model was trained for that project.
    ``keep_predictions`` returns every prediction in the result. Cancelling
    before the CSV is complete leaves no CSV; the temporary file of one that
    was killed is removed by the next run to the same CSV.
    """
    check_destinations(folder, csv_path, sort_into)
    remove_stale_temporaries(csv_path.parent, csv_path.name)  # left by a killed run
    classifier = model if isinstance(model, Classifier) else Classifier(model)
    if suggest_into is not None:
        check_model_fits_project(classifier.metadata, suggest_into)
    tally = _Tally(
        unknown_below,
        keep=keep_predictions or sort_into is not None,
        hash_root=folder if suggest_into is not None else None,
    )
    started = time.perf_counter()
    rows = _write_csv(
        classifier, folder, csv_path, tally, batch_size, on_progress=on_progress, cancel=cancel
    )
    seconds = time.perf_counter() - started
    report = None
    if sort_into is not None:
        report = sort_copies(
            tally.kept, folder, sort_into, classifier.classes, unknown_below=unknown_below,
            on_progress=on_progress, cancel=cancel,
        )  # fmt: skip
    suggestions = None
    if suggest_into is not None:
        suggestions = write_suggestions(suggest_into, tally.hashes, classifier.model_path.name)
    return ClassifyResult(
        model=classifier.model_path, folder=folder, csv=csv_path, classes=classifier.classes,
        provider=classifier.provider, precision=classifier.precision,
        int8_check=classifier.int8_check, threads=classifier.threads,
        unknown_below=unknown_below, images=rows, counts=tally.ordered_counts(classifier.classes),
        errors=tally.errors, seconds=seconds, sorted_copies=report, suggestions=suggestions,
        predictions=tally.kept if keep_predictions else [],
        unfamiliar=tally.unfamiliar if classifier.familiarity is not None else None,
    )  # fmt: skip


def check_destinations(folder: Path, csv_path: Path, sort_into: Path | None = None) -> None:
    """Refuse to classify ``folder`` into ``csv_path`` (and copies into ``sort_into``)
    unless ``folder`` is a folder, the CSV can be a new or replaced file in an
    existing folder, the copies' folder is not a file, and neither is inside
    ``folder``: Linnaeus never writes into the images it classifies."""
    if not folder.is_dir():
        raise LinnaeusError(f"{folder} is not a folder (or cannot be opened).")
    check_destination(folder, csv_path)
    check_destination(folder, csv_path.parent)  # the CSV is written beside itself first
    if csv_path.is_dir() or not csv_path.parent.is_dir():
        raise LinnaeusError(
            f"Cannot write the results to {csv_path}: choose a file in an existing folder."
        )
    if sort_into is not None:
        check_destination(folder, sort_into)
        if sort_into.exists() and not sort_into.is_dir():
            raise LinnaeusError(
                f"Cannot copy the images into {sort_into}: it is a file; choose a folder."
            )


def check_model_fits_project(metadata: OnnxMetadata, project: Path) -> None:
    """Refuse a model trained for another project than ``project``."""
    with ProjectStore.open(project) as store:
        project_id = store.meta("project_id")
        classes = {c.name for c in store.classes()}
    missing = [name for name in metadata.classes if name not in classes]
    if metadata.project_id and project_id and metadata.project_id != project_id:
        reason = "its project id differs from this project's"
    elif missing:
        reason = f"this project has no class {', '.join(map(repr, missing))}"
    else:
        return
    raise LinnaeusError(
        f"This model was trained for another project ({reason}); no suggestions were written "
        f"to {project}."
    )


def write_suggestions(
    project: Path, hashes: Iterable[tuple[str, str]], model_name: str
) -> SuggestionReport:
    """Give the project's unlabelled images with the same content hash as a
    classified file that file's predicted class (``hashes``: content hash, label),
    as one undoable edit of source "model-suggestion"."""
    predicted = dict(hashes)
    with ProjectStore.open(project) as store:
        labels = {
            image.id: predicted[image.content_hash]
            for image in store.images(unlabelled=True)
            if image.content_hash in predicted
        }
        edit = None
        if labels:
            edit = store.apply_labels(
                labels,
                source="model-suggestion",
                description=f"suggest labels for {len(labels)} image(s) from model {model_name}",
            )
    return SuggestionReport(project, edit.image_count if edit else 0, edit)


def _write_csv(
    classifier: Classifier,
    folder: Path,
    csv_path: Path,
    tally: _Tally,
    batch_size: int,
    *,
    on_progress: ProgressCallback,
    cancel: CancelToken | None,
) -> int:
    """Stream the folder's predictions into the CSV through ``tally``; the rows written."""
    predictions = classifier.classify_folder(
        folder, batch_size=batch_size, on_progress=on_progress, cancel=cancel
    )
    first = next(predictions, None)
    if first is None:
        raise LinnaeusError(f"There are no image files in {folder}.")
    return write_predictions_csv(
        tally.watch(itertools.chain([first], predictions)),
        classifier.classes,
        csv_path,
        unknown_below=tally.unknown_below,
        ood=classifier.familiarity is not None,
    )


@dataclass
class _Tally:
    """Counts and errors seen while the predictions stream into the CSV."""

    unknown_below: float | None
    keep: bool  # keep every prediction (for sorting, or for the caller)
    hash_root: Path | None  # hash readable files under this folder (for suggestions)
    counts: Counter[str] = field(default_factory=Counter)
    errors: list[tuple[str, str]] = field(default_factory=list)
    kept: list[Prediction] = field(default_factory=list)
    hashes: list[tuple[str, str]] = field(default_factory=list)  # (content hash, label)
    unfamiliar: int = 0

    def watch(self, predictions: Iterable[Prediction]) -> Iterator[Prediction]:
        for prediction in predictions:
            label = shown_label(prediction, self.unknown_below)
            if label is None:
                self.errors.append((prediction.path, prediction.error or ""))
            else:
                self.counts[label] += 1
                if self.hash_root is not None and label != UNKNOWN:
                    data = _read_bytes(self.hash_root / prediction.path)
                    if data is not None:
                        self.hashes.append((content_hash(data), label))
            self.unfamiliar += bool(prediction.unfamiliar)
            if self.keep:
                self.kept.append(prediction)
            yield prediction

    def ordered_counts(self, classes: list[str]) -> dict[str, int]:
        """Images per label: every class in the model's order, then "unknown" if any."""
        extra = [name for name in self.counts if name not in classes]
        return {name: self.counts[name] for name in [*classes, *extra]}


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None
