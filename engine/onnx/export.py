"""Exporting a model version to ONNX for fast offline classification.

The exported file follows `engine.onnx.format`'s contract: uint8 "image" in;
"probabilities" (temperature applied), "logits", "cam" and one feature map per
convolutional block out; the version's description in the metadata. Before
anything is written the ONNX model is run on real project images and compared
with the Keras model. An int8 model (on request, instead of the float one) is
calibrated on project images and compared with the float model on held-out
ones; the comparison travels in its metadata, so whoever classifies with it
sees what the speed costs.

Speed on the CPU: onnxruntime runs every node of a graph whatever outputs are
asked for, so inference classifies with a copy cut down to "probabilities".
For that copy the export moves max pooling before activations onnxruntime
cannot fuse into its convolutions (ELU; exact, as both are monotonic), which
makes those activations run on a quarter of the values.

Imports TensorFlow and Keras (and, through `engine.onnx.convert`, tf2onnx);
only the CLI and GUI export paths import this module, lazily.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import keras
import numpy as np
import onnx

from linnaeus.engine import __version__
from linnaeus.engine.atomic import atomic_open
from linnaeus.engine.atomic import remove_stale_temporaries
from linnaeus.engine.disk_space import check_free_space
from linnaeus.engine.disk_space import disk_full_error
from linnaeus.engine.disk_space import is_disk_full
from linnaeus.engine.errors import EvaluationError
from linnaeus.engine.errors import ExportError
from linnaeus.engine.evaluation.decision import DecisionRule
from linnaeus.engine.evaluation.version import calibrate_version
from linnaeus.engine.images.preprocess import InputFormat
from linnaeus.engine.onnx.convert import convert
from linnaeus.engine.onnx.convert import keras_probabilities
from linnaeus.engine.onnx.convert import set_metadata
from linnaeus.engine.onnx.export_images import export_images
from linnaeus.engine.onnx.format import FORMAT_VERSION
from linnaeus.engine.onnx.format import Int8Check
from linnaeus.engine.onnx.format import OnnxMetadata
from linnaeus.engine.onnx.format import check_signature
from linnaeus.engine.onnx.format import output_names
from linnaeus.engine.onnx.graph import compare_int8
from linnaeus.engine.onnx.graph import probabilities_of
from linnaeus.engine.onnx.graph import quantise
from linnaeus.engine.onnx.unfamiliar import BANK_SIZE
from linnaeus.engine.onnx.unfamiliar import familiarise
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import Progress
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import check_cancelled
from linnaeus.engine.progress import ignore_progress
from linnaeus.engine.project import lock as project_lock
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.versions import ModelVersion
from linnaeus.engine.training.models import HEAD_LAYER_NAMES
from linnaeus.engine.training.models import feature_layer_names

PARITY_TOLERANCE = 1e-4  # largest allowed |probability difference| from the Keras model
# An export writes a copy of the Keras model file and an ONNX file about its
# size, each through a temporary file beside it.
_EXPORT_COPIES = 2


@dataclass(frozen=True)
class ExportReport:
    """What `export_onnx` wrote and how closely the ONNX model matches the Keras one."""

    path: Path
    keras_path: Path
    max_abs_difference: float  # largest |probability difference| ONNX (float) vs Keras
    images_checked: int
    int8: bool
    int8_accuracy_change: float | None  # accuracy(int8) - accuracy(float) on the checked images
    seconds: float
    size_bytes: int
    int8_check: Int8Check | None = None  # int8 against float on held-out images


# --- public API ------------------------------------------------------------------------


def export_version(
    store: ProjectStore,
    version: ModelVersion,
    destination: Path,
    *,
    int8: bool = False,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> ExportReport:
    """Export ``version`` as `export_onnx` does, with the decision rule the project
    evaluates it with: the temperature and (two classes) the threshold fitted on
    the validation split (`calibrate_version`), so the exported model decides as
    its evaluation says. Holds the project's lock."""
    with project_lock.hold(store.project_dir, f"exporting {version.name}"):
        calibration = calibrate_version(store, version)
        return export_onnx(
            store, version, destination, int8=int8, threshold=calibration.get("threshold"),
            positive_class=calibration.get("positive_class"),
            temperature=calibration.get("temperature", 1.0), on_progress=on_progress,
            cancel=cancel,
        )  # fmt: skip


def export_onnx(
    store: ProjectStore,
    version: ModelVersion,
    destination: Path,
    *,
    int8: bool = False,
    threshold: float | None = None,
    positive_class: str | None = None,
    temperature: float = 1.0,
    parity_images: int = 64,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> ExportReport:
    """Write ``version`` as an ONNX model to ``destination`` (a ``.onnx`` path) and its
    Keras model beside it (``.keras``), after checking the ONNX model against the
    Keras one on up to ``parity_images`` of the images the version was trained on.

    ``int8`` writes a model quantised on up to 100 of those images instead of
    the float one, compared with the float one on up to `INT8_CHECK_IMAGES`
    (engine.onnx.export_images) held-out images (the comparison is in its metadata and the report).
    ``threshold`` (two classes only) is the decision threshold on the
    probability of ``positive_class`` (default: the second class);
    ``temperature`` divides the logits before the softmax. Nothing is left at
    ``destination`` if the export fails or is cancelled.
    """
    from linnaeus.engine.training.config import TrainConfig

    destination = Path(destination)
    _check_destination(destination)
    _check_version(version, parity_images)
    check_free_space(destination.parent, _EXPORT_COPIES * version.model_file.stat().st_size)
    _check_temperature(temperature)
    threshold, positive_class = _decision_rule(version.classes, threshold, positive_class)
    fmt = TrainConfig.from_dict(version.config).input_format

    checked = export_images(
        store, version, fmt, parity_images=parity_images, int8=int8, familiar=BANK_SIZE,
        on_progress=on_progress, cancel=cancel,
    )  # fmt: skip
    check_cancelled(cancel)
    model = _load_keras(version.model_file)
    metadata = OnnxMetadata(
        format_version=FORMAT_VERSION, classes=list(version.classes), input_format=fmt.to_dict(),
        feature_outputs=[], feature_layers=[], threshold=threshold, positive_class=positive_class,
        temperature=float(temperature), model_version=version.name, model_kind=version.kind,
        project_id=store.meta("project_id"), trained_at=version.finished_at,
        metrics=dict(version.metrics), linnaeus_version=__version__, int8=int8,
    )  # fmt: skip
    return export_model(
        model,
        destination,
        metadata,
        images=checked.images,
        labels=checked.labels,
        calibration_images=checked.calibration,
        int8_images=checked.int8_images,
        int8_labels=checked.int8_labels,
        familiar_images=checked.familiar,
        held_out_images=checked.held_out,
        keras_file=version.model_file,
        on_progress=on_progress,
        cancel=cancel,
    )


def export_model(
    model: keras.Model,
    destination: Path,
    metadata: OnnxMetadata,
    *,
    images: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    calibration_images: np.ndarray | None = None,
    int8_images: np.ndarray | None = None,
    int8_labels: np.ndarray | None = None,
    familiar_images: np.ndarray | None = None,
    held_out_images: np.ndarray | None = None,
    keras_file: Path | None = None,
    optimize: bool = True,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> ExportReport:
    """Write the Linnaeus classifier ``model`` as an ONNX model described by ``metadata``
    (its feature outputs and layers are filled in from the model; its temperature
    is baked into the graph; ``metadata.int8`` asks for an int8 model).

    ``images`` (prepared uint8, N x S x S x C) are the parity check's images
    (default: 8 random images); ``calibration_images`` calibrate int8 (default:
    ``images``); int8 is compared with float on ``int8_images`` (default: ``images``
    and ``labels``), whose ``int8_labels`` (class indices) give each one's accuracy.
    ``familiar_images`` (training images) give it its "ood_score", cut on
    ``held_out_images`` (`engine.onnx.unfamiliar`). The Keras model is copied from
    ``keras_file`` (or saved) beside the ONNX file; ``optimize=False`` keeps
    tf2onnx's graph as converted (benchmarks).
    """
    started = time.monotonic()
    destination = Path(destination)
    _check_destination(destination)
    _check_temperature(metadata.temperature)
    fmt = InputFormat.from_dict(metadata.input_format)
    _check_model(model, fmt, len(metadata.classes))
    images, labels, int8_images, int8_labels = _checked_image_sets(
        fmt, images, labels, int8_images, int8_labels
    )
    int8 = bool(metadata.int8)
    step = _Steps(on_progress, steps := 4 if int8 else 3)

    step("Converting the model to ONNX" + (", with its training images' features" if
         familiar_images is not None else ""))  # fmt: skip
    check_cancelled(cancel)
    float_model, metadata = _convert(model, metadata, optimize, familiar_images, held_out_images)
    float_bytes = float_model.SerializeToString()
    step(f"Checking the ONNX model against the Keras model on {len(images)} images")
    check_cancelled(cancel)
    difference = _parity_difference(model, float_bytes, images, metadata.temperature)

    data, int8_check = float_bytes, None
    with tempfile.TemporaryDirectory(prefix="linnaeus-export-") as work:
        workdir = Path(work)
        if int8:
            step(f"Quantising to int8 and comparing it with float on {len(int8_images)} images")
            check_cancelled(cancel)
            calibration = images if calibration_images is None else calibration_images
            calibration = _check_images(calibration, fmt, "calibration images")
            data, int8_check = _quantise_and_compare(
                float_model, float_bytes, metadata, calibration, int8_images, int8_labels, workdir
            )
        step(f"Writing {destination.name}")
        check_cancelled(cancel)
        if keras_file is None:
            keras_file = workdir / "model.keras"
            model.save(keras_file)
        keras_path = _write(destination, data, Path(keras_file))
    step("Done", done=steps)
    return ExportReport(
        path=destination,
        keras_path=keras_path,
        max_abs_difference=difference,
        images_checked=len(images),
        int8=int8,
        int8_accuracy_change=int8_check.accuracy_change if int8_check else None,
        seconds=time.monotonic() - started,
        size_bytes=len(data),
        int8_check=int8_check,
    )


# --- stages --------------------------------------------------------------------------


def _convert(
    model: keras.Model,
    metadata: OnnxMetadata,
    optimize: bool,
    familiar: np.ndarray | None,
    held_out: np.ndarray | None,
) -> tuple[onnx.ModelProto, OnnxMetadata]:
    """The float ONNX model, and ``metadata`` with the model's feature outputs filled in;
    with ``familiar`` (training images), its "ood_score" output too."""
    layers = feature_layer_names(model)
    metadata = dataclasses.replace(
        metadata,
        feature_outputs=output_names(len(layers))[3:],
        feature_layers=layers,
        int8=False,
    )
    float_model = convert(model, metadata.temperature, len(layers), optimize=optimize)
    set_metadata(float_model, metadata)
    check_signature(float_model, metadata)
    if familiar is not None:
        return _familiarise(float_model, metadata, familiar, held_out)
    return float_model, metadata


def _familiarise(
    float_model: onnx.ModelProto,
    metadata: OnnxMetadata,
    training: np.ndarray,
    held_out: np.ndarray | None,
) -> tuple[onnx.ModelProto, OnnxMetadata]:
    """The float model with its "ood_score" output, and ``metadata`` with its cut."""
    fmt = InputFormat.from_dict(metadata.input_format)
    training = _check_images(training, fmt, "training images")
    familiarity = familiarise(float_model, metadata.feature_outputs[-1], training, held_out)
    metadata = dataclasses.replace(metadata, unfamiliar=familiarity.to_dict())
    set_metadata(float_model, metadata)
    check_signature(float_model, metadata)
    return float_model, metadata


def _parity_difference(
    model: keras.Model, float_bytes: bytes, images: np.ndarray, temperature: float
) -> float:
    """The largest |probability difference| between the ONNX and the Keras model on
    ``images``; refuses the export beyond `PARITY_TOLERANCE`."""
    reference = keras_probabilities(model, images, temperature)
    difference = float(np.max(np.abs(probabilities_of(float_bytes, images) - reference)))
    if not difference <= PARITY_TOLERANCE:  # also catches NaN
        raise ExportError(
            f"The ONNX model differs from the trained model by up to {difference:.1e} "
            f"(tolerance {PARITY_TOLERANCE:.0e}) on {len(images)} images; nothing was "
            "written. Please report this with the model's kind."
        )
    return difference


def _quantise_and_compare(
    float_model: onnx.ModelProto,
    float_bytes: bytes,
    metadata: OnnxMetadata,
    calibration: np.ndarray,
    images: np.ndarray,
    labels: np.ndarray | None,
    workdir: Path,
) -> tuple[bytes, Int8Check]:
    """The int8 model's bytes, with its comparison with the float model on ``images``
    in its metadata, and that comparison."""
    int8_model = quantise(float_model, calibration, workdir)
    float_probabilities = probabilities_of(float_bytes, images)
    int8_check = compare_int8(
        float_probabilities, int8_model.SerializeToString(), images, labels, metadata
    )
    metadata = dataclasses.replace(metadata, int8=True, int8_check=int8_check.to_dict())
    set_metadata(int8_model, metadata)
    check_signature(int8_model, metadata)
    return int8_model.SerializeToString(), int8_check


# --- checks --------------------------------------------------------------------------


def _check_version(version: ModelVersion, parity_images: int) -> None:
    if version.status != "done":
        raise ExportError(f"{version.name} did not finish training ({version.status}).")
    if not version.model_file.is_file():
        raise ExportError(
            f"{version.name} has no saved model ({version.model_file} is missing); train it again."
        )
    if isinstance(parity_images, bool) or not isinstance(parity_images, int) or parity_images < 1:
        raise ExportError(f"Check on at least one image, not {parity_images!r}.")


def _check_destination(destination: Path) -> None:
    if destination.suffix.lower() != ".onnx":
        raise ExportError(f"The ONNX file name must end in .onnx: {destination.name}.")
    if not destination.parent.is_dir():
        raise ExportError(f"The folder {destination.parent} does not exist.")
    if destination.is_dir():
        raise ExportError(f"{destination} is a folder; choose a file name ending in .onnx.")


def _check_temperature(temperature: float) -> None:
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not math.isfinite(temperature)
        or temperature <= 0
    ):
        raise ExportError(f"The temperature must be a positive number, not {temperature!r}.")


def _decision_rule(
    classes: Sequence[str], threshold: float | None, positive_class: str | None
) -> tuple[float | None, str | None]:
    """The threshold and positive class to export, checked as `DecisionRule` checks
    every rule the engine can choose (a threshold strictly inside (0, 1))."""
    if threshold is not None and positive_class is None and len(classes) == 2:
        positive_class = classes[1]
    try:
        rule = DecisionRule(tuple(classes), threshold, positive_class)
    except EvaluationError as error:
        raise ExportError(str(error)) from None
    return rule.threshold, positive_class


def _check_model(model: keras.Model, fmt: InputFormat, num_classes: int) -> None:
    names = {layer.name for layer in model.layers}
    if not set(HEAD_LAYER_NAMES) <= names or len(model.inputs) != 1:
        raise ExportError(
            f"The model {model.name!r} is not a Linnaeus classifier (it needs one image input "
            f"and the layers {', '.join(HEAD_LAYER_NAMES)})."
        )
    image = model.inputs[0]
    if tuple(image.shape[1:]) != fmt.shape or str(image.dtype) != "uint8":
        raise ExportError(
            f"The model takes {image.dtype} images shaped {tuple(image.shape[1:])}, but its "
            f"input format is uint8 {fmt.shape}."
        )
    units = model.get_layer("logits").units
    if units != num_classes:
        raise ExportError(f"The model has {units} outputs for {num_classes} classes.")


def _checked_image_sets(
    fmt: InputFormat,
    images: np.ndarray | None,
    labels: np.ndarray | None,
    int8_images: np.ndarray | None,
    int8_labels: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray | None]:
    """The parity-check and int8-check images and labels, defaults filled in, checked."""
    if images is None:
        images = np.random.default_rng(0).integers(0, 256, (8, *fmt.shape), dtype=np.uint8)
    images = _check_images(images, fmt, "images")
    if labels is not None and len(labels) != len(images):
        raise ExportError("There must be one label per parity-check image.")
    if int8_images is None:
        int8_images, int8_labels = images, labels
    int8_images = _check_images(int8_images, fmt, "int8 check images")
    if int8_labels is not None and len(int8_labels) != len(int8_images):
        raise ExportError("There must be one label per int8 check image.")
    return images, labels, int8_images, int8_labels


def _check_images(images: np.ndarray, fmt: InputFormat, what: str) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.shape[1:] != fmt.shape or len(images) == 0:
        raise ExportError(
            f"The {what} must be uint8 N x {' x '.join(map(str, fmt.shape))} with N >= 1, "
            f"not {images.dtype} {images.shape}."
        )
    return images


def _load_keras(path: Path) -> keras.Model:
    try:
        return keras.models.load_model(path, compile=False)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise ExportError(f"The Keras model {path} cannot be loaded: {error}") from None


# --- writing -------------------------------------------------------------------------


def _write(destination: Path, data: bytes, keras_source: Path) -> Path:
    """Write the ONNX bytes and a copy of the Keras model, each atomically."""
    keras_path = destination.with_suffix(".keras")
    for path in (keras_path, destination):  # what a killed export left
        remove_stale_temporaries(path.parent, path.name)
    try:
        with atomic_open(keras_path) as keras_copy:
            _readable_by_all(keras_copy)
            if keras_source.resolve() != keras_path.resolve():
                with keras_source.open("rb") as source:
                    shutil.copyfileobj(source, keras_copy)
            else:  # exporting next to the version's own model file: keep it as it is
                keras_copy.write(keras_source.read_bytes())
            with atomic_open(destination) as onnx_file:
                _readable_by_all(onnx_file)
                onnx_file.write(data)
    except OSError as error:
        if is_disk_full(error):
            needed = len(data) + keras_source.stat().st_size
            raise disk_full_error(destination.parent, needed) from error
        raise ExportError(
            f"Could not write {destination}: {error.strerror or error}. Is the folder read-only?"
        ) from None
    return keras_path


def _readable_by_all(handle: IO[bytes]) -> None:
    """Give an exported file the usual rw-r--r-- (temporary files start private)."""
    if hasattr(os, "fchmod"):  # POSIX
        os.fchmod(handle.fileno(), 0o644)


class _Steps:
    """Progress of the export's stages."""

    def __init__(self, on_progress: ProgressCallback, total: int) -> None:
        self._on_progress = on_progress
        self._total = total
        self._done = 0

    def __call__(self, message: str, done: int | None = None) -> None:
        self._done = self._done if done is None else done
        self._on_progress(Progress("export", self._done, self._total, message))
        self._done += 1
