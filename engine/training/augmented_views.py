"""Validation on augmented views of the training images, for classes too small to split.

When most classes have no validation image (seed 000: 1,458 chemical structure
drawings, one image each), a model can still be chosen and measured the way
seed 000 did it: on augmented copies of the training images, drawn with other
random numbers than the augmentation training uses. These views replace the
validation split (early stopping, the quick head's regularisation, calibration
and the figures); every figure made on them is optimistic, and every place that
shows one says so (`linnaeus.engine.evaluation.metrics.AUGMENTED_VIEWS_NOTE`).

The quick head does not augment as it trains, so it also gets augmented training
views (seed 000's model learned only because of augmentation). Views are made
once, with the project's other prepared images in its pixel cache, under keys
that name their source image, purpose, seed, number and augmentation.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np

from linnaeus.engine.errors import TrainingError
from linnaeus.engine.images.augment import PRESETS
from linnaeus.engine.images.augment import Augmentation
from linnaeus.engine.images.augment import augment_image
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import ignore_progress
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.training.config import BACKBONE_MODELS
from linnaeus.engine.training.config import TrainConfig
from linnaeus.engine.training.data import Examples
from linnaeus.engine.training.data import LoadedPixels
from linnaeus.engine.training.data import pixel_cache

VALIDATION_VIEWS = 400  # views in all, at least (one per training image if there are more)
MAX_VIEWS_PER_IMAGE = 10  # validation views of one image, at most
TRAINING_VIEWS_PER_IMAGE = 8  # for the quick head, besides the image itself
_VIEW_MARK = ":view:"  # in a view's cache key, which no content hash holds
_PURPOSES = {"val": 1, "train": 2}  # separate random streams; training's batches use others


@dataclass(frozen=True)
class ViewCounts:
    """How many augmented views a run made: of how many training images, for what."""

    training_images: int
    validation_views: int
    training_views: int


def lacks_validation(examples: Examples) -> bool:
    """Whether the validation split is too thin to validate on: more than half of
    the classes have no validation image (as when every class has a single image)."""
    covered = np.unique(examples.labels[examples.split("val")])
    return 2 * len(covered) < len(examples.classes)


def view_augmentation(config: TrainConfig) -> Augmentation:
    """The augmentation views are drawn with: the run's, or the seed's gentle preset
    when the run asks for none (unchanged copies would validate nothing)."""
    augmentation = config.augmentation
    return PRESETS["gentle"] if augmentation.is_identity else augmentation


def validation_views_per_image(training_images: int) -> int:
    """Validation views drawn from each training image: enough for `VALIDATION_VIEWS`
    in all, between one and `MAX_VIEWS_PER_IMAGE`."""
    wanted = math.ceil(VALIDATION_VIEWS / max(training_images, 1))
    return max(1, min(MAX_VIEWS_PER_IMAGE, wanted))


def planned_views(examples: Examples, config: TrainConfig) -> int:
    """How many augmented views `add_augmented_views` draws for ``examples`` (none
    when their validation split will do), cached ones included."""
    if not lacks_validation(examples):
        return 0
    training_images = len(examples.split("train"))
    return training_images * sum(n for _, n in _plan(training_images, config))


def add_augmented_views(
    store: ProjectStore,
    loaded: LoadedPixels,
    config: TrainConfig,
    *,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> tuple[LoadedPixels, ViewCounts]:
    """``loaded`` with its validation split replaced by augmented views of its
    training images (and, for the backbone models, augmented training views
    added), the views' pixels in the project's pixel cache."""
    examples = loaded.examples
    sources = examples.split("train")
    augmentation = view_augmentation(config)
    made: list[tuple[int, str, int]] = []  # per view: (source position, purpose, number)
    for purpose, per_image in _plan(len(sources), config):
        made += [(int(p), purpose, n) for p in sources for n in range(per_image)]
    keys = [
        _view_key(examples.hashes[position], purpose, number, config.seed, augmentation)
        for position, purpose, number in made
    ]
    origins = np.array([position for position, _, _ in made], dtype=np.int64)
    view_splits = [purpose for _, purpose, _ in made]

    def make_view(index: int) -> np.ndarray:
        position, purpose, number = made[index]
        source = examples.hashes[position]
        rng = np.random.default_rng([_PURPOSES[purpose], config.seed, number, _number(source)])
        return augment_image(loaded.images[loaded.rows[position]], augmentation, rng)

    cache = pixel_cache(store, config.input_format)
    fill = cache.fill(keys, make_view, stage="augment", on_progress=on_progress, cancel=cancel)
    if fill.failures:  # augmenting decoded pixels does not fail; if it ever does, say so
        reason = next(iter(fill.failures.values()))
        raise TrainingError(f"Could not make augmented views of the training images: {reason}")
    kept = examples.subset(examples.splits != "val")  # the views replace the validation split
    views = Examples(
        classes=examples.classes,
        image_ids=examples.image_ids[origins],
        paths=[examples.paths[p] for p in origins],
        hashes=keys,
        labels=examples.labels[origins],
        splits=np.array(view_splits),
    )
    combined = LoadedPixels(
        _joined(kept, views),
        cache.view(),
        np.concatenate([loaded.rows[examples.splits != "val"], fill.row_numbers]),
        loaded.skipped,
        loaded.decoded,
    )
    counts = ViewCounts(len(sources), view_splits.count("val"), view_splits.count("train"))
    return combined, counts


def _plan(training_images: int, config: TrainConfig) -> list[tuple[str, int]]:
    """(purpose, views per training image) of the views a run draws."""
    plan = [("val", validation_views_per_image(training_images))]
    if config.model in BACKBONE_MODELS:
        plan.append(("train", TRAINING_VIEWS_PER_IMAGE))
    return plan


def _joined(first: Examples, second: Examples) -> Examples:
    return Examples(
        classes=first.classes,
        image_ids=np.concatenate([first.image_ids, second.image_ids]),
        paths=[*first.paths, *second.paths],
        hashes=[*first.hashes, *second.hashes],
        labels=np.concatenate([first.labels, second.labels]),
        splits=np.concatenate([first.splits, second.splits]),
    )


def _view_key(
    content_hash: str, purpose: str, number: int, seed: int, augmentation: Augmentation
) -> str:
    """The pixel (and embedding) cache key of one view: what makes it, nothing else."""
    settings = json.dumps(augmentation.to_dict(), sort_keys=True).encode()
    digest = hashlib.sha256(settings).hexdigest()[:12]
    return f"{content_hash}{_VIEW_MARK}{purpose}:{seed}:{number}:{digest}"


def is_view(key: str) -> bool:
    """Whether an example's cache key (`Examples.hashes`) is an augmented view's."""
    return _VIEW_MARK in key


def _number(content_hash: str) -> int:
    return int(hashlib.sha256(content_hash.encode()).hexdigest()[:15], 16)
