"""The classifier: an exported ONNX model run with onnxruntime only, giving class
probabilities, decisions and heatmaps for prepared pixels, files and folders.

Here a prediction is made; `engine.onnx.results` writes predictions out (CSV,
sorted copies), `engine.onnx.classify` runs a whole folder through both, and
`engine.project.predictions` keeps a model version's predictions of the
project's own images in the project store.

This module, and everything it imports, must never import TensorFlow or Keras:
machines that only classify have neither. Images are prepared with
`prepare_image`, exactly as for training; the model scales the pixels itself.
A folder is classified in small batches by one worker per core, each decoding
its batch and running the model on it with one onnxruntime thread
(`engine.sessions.in_order`: on a 2-core CPU this beat one model call on both
cores beside separate decoding threads, bench/bench_predict.py). Unreadable
files become predictions with an error, never an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnx.utils
import onnxruntime

from linnaeus.engine.dataset.layout import walk_files
from linnaeus.engine.errors import ImageReadError
from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.evaluation.decision import DecisionRule
from linnaeus.engine.images.heatmaps import heatmap_to_image
from linnaeus.engine.images.imageio import is_image_candidate
from linnaeus.engine.images.imageio import read_image
from linnaeus.engine.images.preprocess import InputFormat
from linnaeus.engine.images.preprocess import prepare_image
from linnaeus.engine.onnx.format import CAM
from linnaeus.engine.onnx.format import INPUT_NAME
from linnaeus.engine.onnx.format import OOD_SCORE
from linnaeus.engine.onnx.format import PROBABILITIES
from linnaeus.engine.onnx.format import Int8Check
from linnaeus.engine.onnx.format import ModelFileError
from linnaeus.engine.onnx.format import OnnxMetadata
from linnaeus.engine.onnx.format import read_metadata
from linnaeus.engine.onnx.results import Prediction
from linnaeus.engine.onnx.unfamiliar import Familiarity
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import Progress
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import ignore_progress
from linnaeus.engine.sessions import choose_providers
from linnaeus.engine.sessions import in_order
from linnaeus.engine.sessions import session_options

log = logging.getLogger(__name__)


DEFAULT_BATCH_SIZE = 8  # per worker; small batches keep each map in the core's cache


class Classifier:
    """An exported Linnaeus model, ready to classify images with onnxruntime.

    ``threads`` (default: the physical cores) is how many images or batches are
    worked on at once; ``precision`` says whether the file is the float model
    or its int8 quantisation, and ``int8_check`` how the latter compared with
    the float model when it was exported.
    """

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
        self.rule: DecisionRule = self.metadata.decision_rule()
        self.precision: str = "int8" if self.metadata.int8 else "float32"
        check = self.metadata.int8_check
        self.int8_check: Int8Check | None = Int8Check.from_dict(check) if check else None
        known = self.metadata.unfamiliar  # None: a model exported before unfamiliar images
        self.familiarity: Familiarity | None = Familiarity.from_dict(known) if known else None
        self._fast_outputs = [PROBABILITIES] + ([OOD_SCORE] if known else [])
        self._explain_options = session_options(threads)
        self.threads: int = self._explain_options.intra_op_num_threads
        self._providers = choose_providers(onnxruntime.get_available_providers(), providers)
        # onnxruntime runs every node of a graph whatever outputs are asked for: classifying
        # uses a copy cut down to "probabilities", one intra-op thread per call (the calls run
        # side by side); the full graph loads on the first explanation, on every thread.
        fast = _outputs_only(self.model_path, self._fast_outputs)
        self._session = self._load_session(fast, session_options(1))
        self._explain_session: onnxruntime.InferenceSession | None = None
        self.provider: str = self._session.get_providers()[0]

    def _load_session(
        self, model: bytes | str, options: onnxruntime.SessionOptions
    ) -> onnxruntime.InferenceSession:
        try:
            return onnxruntime.InferenceSession(
                model, sess_options=options, providers=self._providers
            )
        except Exception as error:  # onnxruntime's exceptions share no base class
            raise ModelFileError(
                f"onnxruntime cannot load the model {self.model_path}: {_first_line(error)}"
            ) from None

    # -- arrays -------------------------------------------------------------

    def predict_pixels(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities (N x K float32) of prepared uint8 images (N x S x S x C)."""
        parts = min(self.threads, len(images) // 2) if isinstance(images, np.ndarray) else 1
        if parts < 2:
            return self._probabilities(images)
        with ThreadPoolExecutor(parts, "linnaeus-predict") as pool:
            return np.concatenate(
                list(pool.map(self._probabilities, np.array_split(images, parts)))
            )

    def _probabilities(self, images: np.ndarray) -> np.ndarray:
        return self._run(self._session, [PROBABILITIES], images)[PROBABILITIES]

    def ood_scores(self, images: np.ndarray) -> np.ndarray | None:
        """How unlike the training images each prepared image is (N float32; higher is
        less familiar, `engine.onnx.unfamiliar`), or None for a model without the score."""
        if self.familiarity is None:
            return None
        return self._run(self._session, [OOD_SCORE], images)[OOD_SCORE].reshape(-1)

    def explain_pixels(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Probabilities, class activation maps and feature maps of prepared images, by name."""
        names = [PROBABILITIES, CAM, *self.metadata.feature_outputs]
        return self._run(self._full_session(), names, images)

    def _full_session(self) -> onnxruntime.InferenceSession:
        if self._explain_session is None:
            self._explain_session = self._load_session(str(self.model_path), self._explain_options)
        return self._explain_session

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """The class index of each row of ``probabilities``, by the model's decision rule
        (`OnnxMetadata.decision_rule`: for two classes, its threshold)."""
        return self.rule.decide(probabilities)

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
            empty = {OOD_SCORE: (0,)}
            return {name: np.zeros(empty.get(name, (0, len(self.classes))), np.float32)
                    for name in names}  # fmt: skip
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
        batch_size: int = DEFAULT_BATCH_SIZE,
        workers: int | None = None,
        on_progress: ProgressCallback = ignore_progress,
        cancel: CancelToken | None = None,
    ) -> Iterator[Prediction]:
        """Predict every image file under ``folder``, in `walk_files` order.

        ``workers`` threads (default: ``threads``) each decode a batch of
        ``batch_size`` files and classify it, a few batches ahead of the caller.
        Unreadable files yield a prediction with ``error`` set. Cancelling stops
        between batches (raises `Cancelled`).
        """
        if batch_size < 1:
            raise LinnaeusError(f"The batch size must be at least 1, not {batch_size}.")
        workers = workers or self.threads
        paths = find_images(folder)
        total = len(paths)
        on_progress(Progress("classify", 0, total))
        batches = (paths[start : start + batch_size] for start in range(0, total, batch_size))
        classify = partial(self._classify_files, folder)
        done = 0
        for predictions in in_order(
            classify, batches, workers=workers, cancel=cancel, name="linnaeus-classify"
        ):
            done += len(predictions)
            on_progress(Progress("classify", done, total))
            yield from predictions

    def _classify_files(self, folder: Path, relatives: list[str]) -> list[Prediction]:
        return self._predict_loaded([(p, self.prepare_file(folder / p)) for p in relatives])

    def _predict_loaded(self, loaded: list[tuple[str, np.ndarray | str]]) -> list[Prediction]:
        good = [pixels for _, pixels in loaded if isinstance(pixels, np.ndarray)]
        batch = np.stack(good) if good else np.zeros((0, *self.input_format.shape), np.uint8)
        outputs = self._run(self._session, self._fast_outputs, batch)
        probabilities, scores = outputs[PROBABILITIES], outputs.get(OOD_SCORE)
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
            label = self.classes[index]
            score = None if scores is None else float(scores.reshape(-1)[row])
            unfamiliar = None
            if score is not None and self.familiarity is not None:
                unfamiliar = bool(self.familiarity.is_unfamiliar(score))
            predictions.append(
                Prediction(path, label, values[label], values, None, score, unfamiliar)
            )
        return predictions


def find_images(folder: Path) -> list[str]:
    """The image files under ``folder`` (relative '/' paths, `walk_files` order)."""
    if not folder.is_dir():
        raise LinnaeusError(f"{folder} is not a folder (or cannot be opened).")
    return [relative for relative in walk_files(folder) if is_image_candidate(folder / relative)]


# -- heatmap geometry -----------------------------------------------------------


def _outputs_only(path: Path, outputs: list[str]) -> bytes:
    """The model at ``path`` without the nodes ``outputs`` do not need."""
    try:
        model = onnx.load(path)
        if [o.name for o in model.graph.output] != outputs:
            model = onnx.utils.Extractor(model).extract_model([INPUT_NAME], outputs)
        return model.SerializeToString()
    except Exception as error:  # onnx raises anything on a malformed graph
        raise ModelFileError(
            f"{path} does not have the inputs and outputs of a Linnaeus model "
            f"({_first_line(error)}); export it again."
        ) from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else ""
