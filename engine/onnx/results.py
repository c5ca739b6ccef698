"""Writing predictions out: the results CSV and copies sorted into class folders.

A `Prediction` is one file's answer from the classifier (engine.onnx.inference);
this module writes predictions to files the user chose (the project store keeps
its own in engine.project.predictions), and `engine.onnx.classify` runs a whole
folder through the classifier and these writers.
Never writes into the folder that was classified, never moves or overwrites a
file. Qt-free and TensorFlow-free.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

from linnaeus.engine.csv_tables import EXACT_PATH_COLUMN
from linnaeus.engine.csv_tables import exact_path
from linnaeus.engine.csv_tables import write_csv
from linnaeus.engine.dataset.export_labels import flat_file_name
from linnaeus.engine.dataset.export_labels import unique_folder_names
from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import Progress
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import check_cancelled
from linnaeus.engine.progress import ignore_progress
from linnaeus.engine.project.store import display_path

UNKNOWN = "unknown"
UNFAMILIAR = "unfamiliar"  # the sorted copies' folder of images unlike the training images
OOD_COLUMNS = ("ood_score", UNFAMILIAR)  # after the classes, for models that score it
CSV_FIXED_COLUMNS = ("path", "label", "confidence")
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one image file, or why the file could not be read."""

    path: str  # as given, or relative to the classified folder ('/' separators)
    label: str | None  # None if the file could not be read
    confidence: float | None  # the probability of `label`
    probabilities: dict[str, float]
    error: str | None  # why the file could not be read
    ood_score: float | None = None  # how unlike the training images (`engine.onnx.unfamiliar`)
    unfamiliar: bool | None = None  # ood_score above the model's cut; None: not scored


@dataclass(frozen=True)
class SortReport:
    """What `sort_into` copied where, and which files it did not copy and why."""

    destination: str
    copied: int
    per_folder: dict[str, int]  # folder name under destination -> images copied
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def shown_label(prediction: Prediction, unknown_below: float | None = None) -> str | None:
    """The label reported for a prediction: ``"unknown"`` when its confidence is
    below ``unknown_below``; None for an unreadable file."""
    if prediction.label is None or prediction.confidence is None:
        return None
    if unknown_below is not None and prediction.confidence < unknown_below:
        return UNKNOWN
    return prediction.label


def write_predictions_csv(
    predictions: Iterable[Prediction],
    classes: Sequence[str],
    destination: Path,
    *,
    unknown_below: float | None = None,
    ood: bool = False,
) -> int:
    """Write one row per prediction (path, label, confidence, each class's
    probability, with ``ood`` its ood_score and unfamiliar yes/no, error,
    exact_path) to ``destination``, atomically, safe to open in a spreadsheet
    (`engine.csv_tables`); return the rows written."""
    header = [*CSV_FIXED_COLUMNS, *classes, *(OOD_COLUMNS if ood else ()), "error",
              EXACT_PATH_COLUMN]  # fmt: skip
    rows = (_csv_row(prediction, classes, unknown_below, ood) for prediction in predictions)
    try:
        return write_csv(destination, header, rows)
    except OSError as error:
        raise LinnaeusError(f"Cannot write {destination}: {error.strerror or error}") from None


def _csv_row(
    prediction: Prediction, classes: Sequence[str], unknown_below: float | None, ood: bool
) -> list[str]:
    path, exact = display_path(prediction.path), exact_path(prediction.path)
    if prediction.error is not None or prediction.confidence is None:
        blanks = [""] * (len(classes) + (len(OOD_COLUMNS) if ood else 0))
        return [path, "", "", *blanks, prediction.error or "", exact]
    values = [f"{prediction.probabilities.get(name, 0.0):.6f}" for name in classes]
    if ood:
        score, unfamiliar = prediction.ood_score, prediction.unfamiliar
        values += ["" if score is None else f"{score:.6f}",
                   "" if unfamiliar is None else ("yes" if unfamiliar else "no")]  # fmt: skip
    label = shown_label(prediction, unknown_below) or ""
    return [path, label, f"{prediction.confidence:.6f}", *values, "", exact]


def check_destination(source: Path, destination: Path) -> None:
    """Refuse a ``destination`` that is ``source`` itself or inside it."""
    if destination.resolve().is_relative_to(source.resolve()):
        raise LinnaeusError(
            f"{destination} is inside the folder being classified ({source}); choose a folder "
            "outside it: Linnaeus never writes into your image folder."
        )


def sort_into(
    predictions: Iterable[Prediction],
    source: Path,
    destination: Path,
    classes: Sequence[str],
    *,
    unknown_below: float | None = None,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> SortReport:
    """Copy each readable image under ``source`` into ``destination/<class>/``
    (``unknown/`` when its confidence is below ``unknown_below``; ``unfamiliar/``,
    before either, when it is unlike the training images).

    Copies only: the files under ``source`` are never moved or changed, and
    nothing already in ``destination`` is overwritten (name clashes get _2, _3...).
    """
    check_destination(source, destination)
    folders = unique_folder_names(list(classes))
    unknown = _free_folder_name(UNKNOWN, set(folders.values()))
    unfamiliar = _free_folder_name(UNFAMILIAR, {*folders.values(), unknown})
    # A class folder must stay inside destination and out of source (a link could lead there).
    for name in [*folders.values(), unknown, unfamiliar]:
        check_destination(source, destination / name)
        if not (destination / name).resolve().is_relative_to(destination.resolve()):
            raise LinnaeusError(f"{destination / name} leads outside {destination}; remove it.")
    items = predictions if isinstance(predictions, Sequence) else list(predictions)
    per_folder: dict[str, int] = {}
    skipped: list[tuple[str, str]] = []
    copied = 0
    for done, prediction in enumerate(items, start=1):
        check_cancelled(cancel)
        label = shown_label(prediction, unknown_below)
        if label is None:
            skipped.append((prediction.path, prediction.error or "not classified"))
        else:
            folder = unknown if label == UNKNOWN else folders[label]
            if prediction.unfamiliar:
                folder = unfamiliar
            try:
                _copy_file(source / prediction.path, destination / folder)
            except OSError as error:
                if error.errno in _DISK_FULL:
                    raise LinnaeusError(
                        f"The disk is full: {copied} images were copied to {destination} before "
                        "it filled up. Free some space and sort again into a new folder."
                    ) from None
                skipped.append((prediction.path, error.strerror or str(error)))
            else:
                copied += 1
                per_folder[folder] = per_folder.get(folder, 0) + 1
        on_progress(Progress("sort", done, len(items)))
    return SortReport(str(destination), copied, per_folder, skipped)


def _free_folder_name(name: str, taken: set[str]) -> str:
    lowered = {t.lower() for t in taken}
    candidate, n = name, 2
    while candidate.lower() in lowered:
        candidate, n = f"{name}_{n}", n + 1
    return candidate


def _copy_file(source: Path, folder: Path) -> Path:
    """Copy ``source`` into ``folder`` under a name no file there has yet."""
    folder.mkdir(parents=True, exist_ok=True)
    name = flat_file_name(source.name)
    stem, suffix = os.path.splitext(name)
    n = 1
    while True:
        target = folder / (name if n == 1 else f"{stem}_{n}{suffix}")
        try:
            target.open("xb").close()  # claim the name: never overwrite anything
            break
        except FileExistsError:
            n += 1
    try:
        shutil.copyfile(source, target)
        shutil.copystat(source, target)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target
