"""Classifying images with an exported ONNX model, with onnxruntime only.

This module, and everything it imports, must never import TensorFlow or Keras:
machines that only classify have neither. Images are prepared with
`prepare_image`, exactly as for training; the model scales the pixels itself.
A folder is classified in batches while a thread pool decodes the next ones;
unreadable files become predictions with an error, never an exception.
"""

from __future__ import annotations

import csv
import errno
import logging
import os
import shutil
from collections import deque
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnx.utils
import onnxruntime

from linnaeus.engine.atomic import atomic_open
from linnaeus.engine.errors import ImageReadError
from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.export_labels import flat_file_name
from linnaeus.engine.export_labels import unique_folder_names
from linnaeus.engine.imageio import is_image_candidate
from linnaeus.engine.imageio import read_image
from linnaeus.engine.layout import walk_files
from linnaeus.engine.onnx_format import CAM
from linnaeus.engine.onnx_format import INPUT_NAME
from linnaeus.engine.onnx_format import PROBABILITIES
from linnaeus.engine.onnx_format import ModelFileError
from linnaeus.engine.onnx_format import OnnxMetadata
from linnaeus.engine.onnx_format import read_metadata
from linnaeus.engine.onnx_format import session_options
from linnaeus.engine.preprocess import InputFormat
from linnaeus.engine.preprocess import prepare_image
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import Progress
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import check_cancelled
from linnaeus.engine.progress import ignore_progress
from linnaeus.engine.store import display_path

log = logging.getLogger(__name__)

# Best first; onnxruntime runs the nodes a provider cannot on the next one in the list.
PROVIDER_PREFERENCE = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "DmlExecutionProvider",
    "CoreMLExecutionProvider",
    "CPUExecutionProvider",
)
UNKNOWN = "unknown"
BATCHES_AHEAD = 3  # batches decoded in advance while the model runs
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


@dataclass(frozen=True)
class SortReport:
    """What `sort_into` copied where, and which files it did not copy and why."""

    destination: str
    copied: int
    per_folder: dict[str, int]  # folder name under destination -> images copied
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def choose_providers(available: Sequence[str], requested: Sequence[str] | None = None) -> list[str]:
    """The execution providers to use, best first: ``requested`` (default
    `PROVIDER_PREFERENCE`) restricted to those ``available``, the CPU last."""
    wanted = PROVIDER_PREFERENCE if requested is None else tuple(requested)
    chosen = [name for name in wanted if name in available]
    if requested is not None and not chosen:
        raise LinnaeusError(
            f"None of the execution providers {', '.join(wanted)} is available here "
            f"(available: {', '.join(available)})."
        )
    if "CPUExecutionProvider" in available and "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


class Classifier:
    """An exported Linnaeus model, ready to classify images with onnxruntime."""

    def __init__(
        self,
        model_path: Path,
        *,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.metadata: OnnxMetadata = read_metadata(self.model_path)
        self.classes: list[str] = list(self.metadata.classes)
        self.input_format = InputFormat.from_dict(self.metadata.input_format)
        self._options = session_options(threads)
        self._providers = choose_providers(onnxruntime.get_available_providers(), providers)
        # onnxruntime runs every node of a graph whatever outputs are asked for: classifying
        # uses a copy cut down to "probabilities"; the full graph loads on the first explanation.
        self._session = self._load_session(_probabilities_only(self.model_path))
        self._explain_session: onnxruntime.InferenceSession | None = None
        self.provider: str = self._session.get_providers()[0]

    def _load_session(self, model: bytes | str) -> onnxruntime.InferenceSession:
        try:
            return onnxruntime.InferenceSession(
                model, sess_options=self._options, providers=self._providers
            )
        except Exception as error:  # onnxruntime's exceptions share no base class
            raise ModelFileError(
                f"onnxruntime cannot load the model {self.model_path}: {_first_line(error)}"
            ) from None

    # -- arrays -------------------------------------------------------------

    def predict_pixels(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities (N x K float32) of prepared uint8 images (N x S x S x C)."""
        return self._run(self._session, [PROBABILITIES], images)[PROBABILITIES]

    def explain_pixels(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Probabilities, class activation maps and feature maps of prepared images, by name."""
        names = [PROBABILITIES, CAM, *self.metadata.feature_outputs]
        return self._run(self._full_session(), names, images)

    def _full_session(self) -> onnxruntime.InferenceSession:
        if self._explain_session is None:
            self._explain_session = self._load_session(str(self.model_path))
        return self._explain_session

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """The class index of each row of ``probabilities``.

        For a binary model with a decision threshold, the positive class wins
        whenever its probability reaches the threshold; otherwise the most
        probable class.
        """
        probabilities = np.asarray(probabilities)
        threshold = self.metadata.threshold
        if threshold is None or len(self.classes) != 2:
            return probabilities.argmax(axis=1)
        positive = self._positive_index()
        return np.where(probabilities[:, positive] >= threshold, positive, 1 - positive)

    def _positive_index(self) -> int:
        positive = self.metadata.positive_class
        return self.classes.index(positive) if positive in self.classes else 1

    def heatmap(self, image_pixels: np.ndarray, class_index: int | None = None) -> np.ndarray:
        """Where the model looked: an H x W float32 map in [0, 1] at the image's own size.

        ``image_pixels`` is a decoded image (any `read_image` output); the map is
        the class activation map of ``class_index`` (default: the predicted class).
        """
        prepared = prepare_image(image_pixels, self.input_format)[np.newaxis]
        outputs = self._run(self._full_session(), [PROBABILITIES, CAM], prepared)
        if class_index is None:
            class_index = int(self.decide(outputs[PROBABILITIES])[0])
        cam = outputs[CAM][0, :, :, class_index]
        return heatmap_to_image(cam, image_pixels.shape[:2], self.input_format)

    def _run(
        self, session: onnxruntime.InferenceSession, names: list[str], images: np.ndarray
    ) -> dict[str, np.ndarray]:
        if not (
            isinstance(images, np.ndarray)
            and images.dtype == np.uint8
            and images.shape[1:] == self.input_format.shape
        ):
            shape = " x ".join(map(str, self.input_format.shape))
            raise ValueError(
                f"expected uint8 images shaped N x {shape}, "
                f"got {getattr(images, 'dtype', type(images))} {getattr(images, 'shape', '')}"
            )
        missing = set(names) - {o.name for o in session.get_outputs()}
        if missing:
            raise ModelFileError(
                f"{self.model_path} has no {', '.join(sorted(missing))} output; export it again."
            )
        if len(images) == 0:
            return {name: np.zeros((0, len(self.classes)), np.float32) for name in names}
        values = session.run(names, {INPUT_NAME: np.ascontiguousarray(images)})
        return dict(zip(names, values, strict=True))

    # -- files --------------------------------------------------------------

    def prepare_file(self, path: Path) -> np.ndarray | str:
        """A file's prepared pixels, or the reason it cannot be read."""
        try:
            return prepare_image(read_image(path).pixels, self.input_format)
        except ImageReadError as error:
            return str(error)
        except (cv2.error, MemoryError, ValueError) as error:
            log.debug("cannot prepare %s", path, exc_info=True)
            return f"cannot prepare the image: {_first_line(error) or type(error).__name__}"

    def predict_file(self, path: Path) -> Prediction:
        """The prediction for one image file (an unreadable file gives ``error``)."""
        return self._predict_loaded([(str(path), self.prepare_file(Path(path)))])[0]

    def classify_folder(
        self,
        folder: Path,
        *,
        batch_size: int = 64,
        workers: int | None = None,
        on_progress: ProgressCallback = ignore_progress,
        cancel: CancelToken | None = None,
    ) -> Iterator[Prediction]:
        """Predict every image file under ``folder``, in `walk_files` order.

        Files are decoded on ``workers`` threads (default: one per CPU) a few
        batches ahead of the model. Unreadable files yield a prediction with
        ``error`` set. Cancelling stops between batches (raises `Cancelled`).
        """
        if batch_size < 1:
            raise LinnaeusError(f"The batch size must be at least 1, not {batch_size}.")
        paths = find_images(folder)
        total = len(paths)
        on_progress(Progress("classify", 0, total))
        pending: deque[tuple[str, Future[np.ndarray | str]]] = deque()
        queue = iter(paths)
        in_flight = batch_size * (BATCHES_AHEAD + 1)
        with ThreadPoolExecutor(workers or os.cpu_count(), "linnaeus-decode") as pool:
            try:
                done = 0
                while True:
                    check_cancelled(cancel)
                    while len(pending) < in_flight and (relative := next(queue, None)):
                        future = pool.submit(self.prepare_file, folder / relative)
                        pending.append((relative, future))
                    if not pending:
                        break
                    batch = [pending.popleft() for _ in range(min(batch_size, len(pending)))]
                    predictions = self._predict_loaded([(p, f.result()) for p, f in batch])
                    done += len(predictions)
                    on_progress(Progress("classify", done, total))
                    yield from predictions
            finally:
                for _, future in pending:
                    future.cancel()

    def _predict_loaded(self, loaded: list[tuple[str, np.ndarray | str]]) -> list[Prediction]:
        good = [pixels for _, pixels in loaded if isinstance(pixels, np.ndarray)]
        batch = np.stack(good) if good else np.zeros((0, *self.input_format.shape), np.uint8)
        probabilities = self.predict_pixels(batch)
        chosen = self.decide(probabilities)
        rows = iter(range(len(good)))
        predictions = []
        for path, pixels in loaded:
            if isinstance(pixels, str):
                predictions.append(Prediction(path, None, None, {}, pixels))
                continue
            row = next(rows)
            index = int(chosen[row])
            values = dict(zip(self.classes, map(float, probabilities[row]), strict=True))
            predictions.append(
                Prediction(path, self.classes[index], values[self.classes[index]], values, None)
            )
        return predictions


def find_images(folder: Path) -> list[str]:
    """The image files under ``folder`` (relative '/' paths, `walk_files` order)."""
    if not folder.is_dir():
        raise LinnaeusError(f"{folder} is not a folder (or cannot be opened).")
    return [relative for relative in walk_files(folder) if is_image_candidate(folder / relative)]


# -- heatmap geometry -----------------------------------------------------------


def heatmap_to_image(
    cam: np.ndarray, original_shape: tuple[int, ...], fmt: InputFormat
) -> np.ndarray:
    """One class's activation map (h x w) as an H x W float32 map in [0, 1] over the
    original image, ``original_shape`` (H, W), that ``fmt`` prepared."""
    height, width = original_shape[:2]
    return square_to_original(cam_to_square(cam, fmt.size), height, width, fmt.resize)


def cam_to_square(cam: np.ndarray, size: int) -> np.ndarray:
    """A class activation map (h x w) as a ``size`` x ``size`` float32 map in [0, 1]:
    negative evidence dropped, the strongest point 1."""
    positive = np.maximum(np.asarray(cam, np.float32), 0)
    peak = float(positive.max()) if positive.size else 0.0
    if peak > 0:
        positive /= peak
    square = cv2.resize(positive, (size, size), interpolation=cv2.INTER_LINEAR)
    return np.clip(square, 0, 1).astype(np.float32)


def pad_box(height: int, width: int, size: int) -> tuple[int, int, int, int]:
    """Where the "pad" policy puts a ``height`` x ``width`` image in its ``size``
    square: (top, left, scaled height, scaled width), as `prepare_image` does."""
    if height == width:
        return 0, 0, size, size
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    return (size - new_h) // 2, (size - new_w) // 2, new_h, new_w


def square_to_original(square: np.ndarray, height: int, width: int, resize: str) -> np.ndarray:
    """A map over the prepared square, mapped back onto the original ``height`` x
    ``width`` image through the resize policy (for "pad", the padding is cut off)."""
    if resize == "pad":
        top, left, new_h, new_w = pad_box(height, width, square.shape[0])
        square = square[top : top + new_h, left : left + new_w]
    mapped = cv2.resize(square, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(mapped, 0, 1).astype(np.float32)


# -- results ----------------------------------------------------------------------


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
) -> int:
    """Write one row per prediction (path, label, confidence, each class's
    probability, error) to ``destination``, atomically; return the rows written."""
    rows = 0
    try:
        with atomic_open(destination, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([*CSV_FIXED_COLUMNS, *classes, "error"])
            for prediction in predictions:
                writer.writerow(_csv_row(prediction, classes, unknown_below))
                rows += 1
    except OSError as error:
        raise LinnaeusError(f"Cannot write {destination}: {error.strerror or error}") from None
    return rows


def _csv_row(
    prediction: Prediction, classes: Sequence[str], unknown_below: float | None
) -> list[str]:
    path = display_path(prediction.path)
    if prediction.error is not None or prediction.confidence is None:
        return [path, "", "", *([""] * len(classes)), prediction.error or ""]
    values = [f"{prediction.probabilities.get(name, 0.0):.6f}" for name in classes]
    label = shown_label(prediction, unknown_below) or ""
    return [path, label, f"{prediction.confidence:.6f}", *values, ""]


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
    (``unknown/`` when its confidence is below ``unknown_below``).

    Copies only: the files under ``source`` are never moved or changed, and
    nothing already in ``destination`` is overwritten (name clashes get _2, _3...).
    """
    check_destination(source, destination)
    folders = unique_folder_names(list(classes))
    folders[UNKNOWN] = _free_folder_name(UNKNOWN, set(folders.values()))
    # A class folder must stay inside destination and out of source (a link could lead there).
    for name in folders.values():
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
            folder = folders[UNKNOWN] if label == UNKNOWN else folders[label]
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


def _probabilities_only(path: Path) -> bytes:
    """The model at ``path`` without the nodes "probabilities" does not need."""
    try:
        model = onnx.load(path)
        if [o.name for o in model.graph.output] != [PROBABILITIES]:
            model = onnx.utils.Extractor(model).extract_model([INPUT_NAME], [PROBABILITIES])
        return model.SerializeToString()
    except Exception as error:  # onnx raises anything on a malformed graph
        raise ModelFileError(
            f"{path} does not have the inputs and outputs of a Linnaeus model "
            f"({_first_line(error)}); export it again."
        ) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else ""
