"""The project images an export checks the ONNX model on, and calibrates and
checks an int8 model with: prepared as the version was trained, held-out
images first for the checks, training images first for the calibration; and
the training and validation images the unfamiliar-image score is fitted and cut
on (`engine.onnx.unfamiliar`)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from linnaeus.engine.errors import ExportError
from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.images.imageio import read_image
from linnaeus.engine.images.preprocess import InputFormat
from linnaeus.engine.images.preprocess import prepare_image
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import Progress
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import check_cancelled
from linnaeus.engine.project import versions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.versions import ModelVersion

log = logging.getLogger(__name__)

CALIBRATION_IMAGES = 100
INT8_CHECK_IMAGES = 500  # held-out images on which int8 is compared with float
_SPLIT_ORDER_CHECK = ("test", "val", "train")  # held-out images first for the parity check
_SPLIT_ORDER_CALIBRATE = ("train", "val", "test")
_ONLY_TRAIN, _ONLY_VAL = ("train",), ("val",)  # these sets take no image of another split
HELD_OUT_IMAGES = 500  # validation images the unfamiliar-image cut is chosen on


@dataclass(frozen=True)
class ExportImages:
    """Prepared uint8 images (N x S x S x C) with their class indices."""

    images: np.ndarray  # the parity check's
    labels: np.ndarray
    calibration: np.ndarray | None = None  # int8 only
    int8_images: np.ndarray | None = None  # int8 only: compared with the float model on these
    int8_labels: np.ndarray | None = None
    familiar: np.ndarray | None = None  # training images: what the model knows
    held_out: np.ndarray | None = None  # validation images: where unfamiliar is cut


def export_images(
    store: ProjectStore,
    version: ModelVersion,
    fmt: InputFormat,
    *,
    parity_images: int,
    int8: bool,
    familiar: int = 0,
    on_progress: ProgressCallback,
    cancel: CancelToken | None,
) -> ExportImages:
    """Up to ``parity_images`` readable images of the version's label snapshot for
    the parity check; with ``int8``, up to `CALIBRATION_IMAGES` to calibrate
    and `INT8_CHECK_IMAGES` to compare int8 with float; with ``familiar``, up to
    that many training images and `HELD_OUT_IMAGES` validation images; all
    prepared for ``fmt``."""
    wanted = [(_SPLIT_ORDER_CHECK, parity_images)]
    if int8:
        wanted += [
            (_SPLIT_ORDER_CALIBRATE, CALIBRATION_IMAGES),
            (_SPLIT_ORDER_CHECK, INT8_CHECK_IMAGES),
        ]
    if familiar:
        wanted += [(_ONLY_TRAIN, familiar), (_ONLY_VAL, HELD_OUT_IMAGES)]
    sets = _project_images(store, version, fmt, wanted, on_progress=on_progress, cancel=cancel)
    (images, labels), *more = sets
    found = ExportImages(images, labels)
    if int8:
        (calibration, _), (int8_images, int8_labels), *more = more
        found = ExportImages(images, labels, calibration, int8_images, int8_labels)
    if familiar:
        (train, _), (val, _) = more
        found = dataclasses.replace(found, familiar=train, held_out=val if len(val) else None)
    return found


def _project_images(
    store: ProjectStore,
    version: ModelVersion,
    fmt: InputFormat,
    wanted: Sequence[tuple[Sequence[str], int]],
    *,
    on_progress: ProgressCallback,
    cancel: CancelToken | None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each (split order, count) in ``wanted``: up to ``count`` readable images of
    the version's label snapshot, prepared for ``fmt``, with their class indices."""
    snapshot = versions.label_snapshot(store, version.id)
    cache: dict[int, np.ndarray | None] = {}
    total = sum(count for _, count in wanted)
    results = []
    for order, count in wanted:
        rank = {split: i for i, split in enumerate(order)}
        ids = sorted(snapshot, key=lambda i: (rank.get(snapshot[i][1], len(rank)), i))
        if order in (_ONLY_TRAIN, _ONLY_VAL):
            ids = [i for i in ids if snapshot[i][1] in rank]
        pixels, labels = [], []
        for image_id in ids:
            if len(pixels) == count:
                break
            check_cancelled(cancel)
            if image_id not in cache:
                cache[image_id] = _read_prepared(store, image_id, fmt)
                on_progress(Progress("decode", min(len(cache), total), total, "Reading images"))
            if cache[image_id] is not None:
                pixels.append(cache[image_id])
                labels.append(snapshot[image_id][0])
        if not pixels and order == _ONLY_VAL:  # no validation split: the cut falls back
            results.append((np.zeros((0, *fmt.shape), np.uint8), np.zeros(0, np.int64)))
            continue
        if not pixels:
            raise ExportError(
                f"None of the images {version.name} was trained on can be read (is the image "
                f"folder {store.image_root} available?); the export checks the model on them."
            )
        results.append((np.stack(pixels), np.asarray(labels, dtype=np.int64)))
    return results


def _read_prepared(store: ProjectStore, image_id: int, fmt: InputFormat) -> np.ndarray | None:
    try:
        record = store.image(image_id)
        return prepare_image(read_image(store.image_root / record.path).pixels, fmt)
    except (LinnaeusError, cv2.error, ValueError, MemoryError):
        log.debug("image %d skipped by the export check", image_id, exc_info=True)
        return None
