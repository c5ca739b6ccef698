"""Training a classifier on a project's current labels: one call, one new model version.

What a run is asked to do (`TrainConfig`, the model choices) is in
`engine.training.config`; this module loads the examples, registers the
version, runs the recipe (`engine.training.runs`) and records the outcome.
Classes too small for a validation split are validated on augmented views of
the training images (`engine.training.augmented_views`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from linnaeus.engine.atomic import temporary_path
from linnaeus.engine.dataset.duplicates import leak_warning
from linnaeus.engine.dataset.duplicates import leaks_among
from linnaeus.engine.disk_space import RESERVE_BYTES
from linnaeus.engine.disk_space import check_free_space
from linnaeus.engine.disk_space import disk_full_as_error
from linnaeus.engine.disk_space import reserve_space
from linnaeus.engine.errors import Cancelled
from linnaeus.engine.errors import EvaluationError
from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.errors import TrainingError
from linnaeus.engine.evaluation.label_issues import check_labels
from linnaeus.engine.evaluation.version import decided_split_figures
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import TrainingProgress
from linnaeus.engine.progress import ignore_progress
from linnaeus.engine.project import leftovers
from linnaeus.engine.project import lock as project_lock
from linnaeus.engine.project import versions
from linnaeus.engine.project.image_files import readable_images
from linnaeus.engine.project.predictions import save_predictions
from linnaeus.engine.project.predictions import save_view_predictions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.store import utc_now
from linnaeus.engine.project.versions import ModelVersion
from linnaeus.engine.training.augmented_views import ViewCounts
from linnaeus.engine.training.augmented_views import add_augmented_views
from linnaeus.engine.training.augmented_views import is_view
from linnaeus.engine.training.augmented_views import lacks_validation
from linnaeus.engine.training.augmented_views import planned_views
from linnaeus.engine.training.backbones import find_weights
from linnaeus.engine.training.config import BACKBONE_MODELS
from linnaeus.engine.training.config import TrainConfig
from linnaeus.engine.training.config import resumable_version
from linnaeus.engine.training.data import Examples
from linnaeus.engine.training.data import collect_examples
from linnaeus.engine.training.data import load_pixels
from linnaeus.engine.training.data import pixel_cache

if TYPE_CHECKING:
    from linnaeus.engine.training.runs import RunOutcome

log = logging.getLogger(__name__)
# For `bytes_needed`, measured on this code's models: the weights of a
# from-scratch model; how many times its weights' size a run has on disk at
# most (a checkpoint with Adam's state is 3.3 times it, written beside the one
# it replaces, and the best weights beside theirs: about 9; the autoencoder
# doubles that; the quick model writes only its model file, and fine-tuning
# keeps Adam's state for the whole backbone, as from scratch); a backbone feature row;
# a stored prediction or label row.
_SCRATCH_WEIGHTS_BYTES = {"seed-cnn": 140_000, "small-resnet": 2_900_000, "pretrain": 2_900_000}
_WEIGHTS_COPIES = {"quick": 1, "accurate": 9, "seed-cnn": 9, "small-resnet": 9, "pretrain": 18}
_FEATURE_BYTES = 1280 * 4
_ROW_BYTES = 200
# Held in the version's folder while it trains (see `reserve_space`), under a
# temporary file's name: one a killed training left is removed as stale.
RESERVE_NAME = "disk-space-reserve"


@dataclass(frozen=True)
class TrainResult:
    """A finished (or cancelled) training run."""

    version: ModelVersion
    skipped: list[tuple[str, str]]  # images that turned out unreadable: (path, reason)
    decoded: int  # images decoded this run (the rest came from the cache)
    warnings: tuple[str, ...] = ()  # what the user should know of its figures (leaks)


@project_lock.holding_lock("training")
def train(
    store: ProjectStore,
    config: TrainConfig = TrainConfig(),  # noqa: B008 (frozen: safe to share)
    *,
    resume: bool = False,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
    callbacks: Sequence[Any] = (),
    activate: bool = True,
) -> TrainResult:
    """Train on the project's current labels and register a new model version
    (or, with ``resume``, continue the latest unfinished one), holding the
    project's lock. The finished version becomes the active one unless
    ``activate`` is False; ``callbacks`` (Keras callbacks) join epoch training's."""
    started = time.monotonic()
    if resume:
        version = _resumable_version(store)  # before TensorFlow loads: a second writer is told
        config = TrainConfig.from_dict(version.config)
        examples = collect_examples(store, version.classes)
        snapshot = versions.label_snapshot(store, version.id)
        examples = examples.subset(np.isin(examples.image_ids, list(snapshot)))
    else:
        config = config.resolved()
        examples = collect_examples(store)
        config = config.for_classes(examples.classes)
        _check_enough(examples)
    from linnaeus.engine.training import runs as training_runs
    from linnaeus.engine.training.device import configure_devices

    device = configure_devices()
    import keras

    keras.utils.set_random_seed(config.seed)
    needed = bytes_needed(store, config, examples)
    check_free_space(store.project_dir, needed)
    with disk_full_as_error(store.project_dir, needed):
        loaded = load_pixels(
            store, examples, config.input_format, on_progress=on_progress, cancel=cancel
        )
        if not resume:
            version = _register_version(store, config, loaded.examples)
        views = None
        if lacks_validation(loaded.examples):
            loaded, views = add_augmented_views(
                store, loaded, config, on_progress=on_progress, cancel=cancel
            )
    project_lock.doing(store.project_dir, f"training {version.name}")
    reserve = temporary_path(version.folder / RESERVE_NAME)
    try:
        with disk_full_as_error(store.project_dir, needed), device.strategy.scope():
            reserve_space(reserve)  # given back to record the outcome, whatever fills the disk
            versions.update_version(store, version.id, status="training", device=device.description)
            outcome = training_runs.run(
                store,
                config,
                version,
                loaded,
                device,
                resume=resume,
                on_progress=on_progress,
                cancel=cancel,
                callbacks=callbacks,
            )
            version = _record_outcome(
                store, version, loaded.examples, outcome, views, started, on_progress, cancel
            )
    except Cancelled:
        _record_end(store, version, reserve, "cancelled", duration_s=time.monotonic() - started)
        raise
    except Exception as error:
        _record_end(store, version, reserve, "failed", error=str(error)[:500])
        raise
    reserve.unlink()
    if activate:
        versions.set_active(store, version.id)
    warning = _leak_warning(store, loaded.examples, cancel)
    return TrainResult(version, loaded.skipped, loaded.decoded, (warning,) if warning else ())


def _record_outcome(
    store: ProjectStore,
    version: ModelVersion,
    examples: Examples,
    outcome: RunOutcome,
    views: ViewCounts | None,
    started: float,
    on_progress: ProgressCallback,
    cancel: CancelToken | None,
) -> ModelVersion:
    """Store a finished run's predictions, label check and figures: the version is done."""
    save_predictions(store, version.id, outcome.image_ids, outcome.probabilities)
    checked = _check_labels(version, examples, outcome, on_progress, cancel)
    metrics = outcome.metrics
    if views is not None:
        metrics = _validated_on_views(version, examples, outcome, views)
    metrics |= checked
    version = versions.update_version(
        store,
        version.id,
        status="done",
        metrics=metrics,
        curves=outcome.curves,
        duration_s=time.monotonic() - started,
        finished_at=utc_now(),
    )
    # The accuracies the versions table shows, counted at the decisions the
    # version is exported with (threshold and temperature fitted on validation).
    return versions.update_version(store, version.id, metrics=decided_split_figures(store, version))


def _leak_warning(
    store: ProjectStore, examples: Examples, cancel: CancelToken | None
) -> str | None:
    """Duplicates of the images trained on in validation or test, in words (found
    after the run, when its backbone features are cached too)."""
    splits = {
        int(image_id): str(split)
        for image_id, split, image_hash in zip(
            examples.image_ids, examples.splits, examples.hashes, strict=True
        )
        if not is_view(image_hash)
    }
    warning = leak_warning(leaks_among(store, splits, cancel=cancel))
    if warning:  # the final report carries it to the user (CLI, JSON, the Train tab)
        log.info("%s", warning)
    return warning


def bytes_needed(store: ProjectStore, config: TrainConfig, examples: Examples) -> int:
    """About how many bytes a run of ``config`` (resolved) writes into the project:
    the prepared pixels (and backbone features) of images not cached yet and of
    the augmented views it may draw, the model's files, its label snapshot and
    predictions."""
    readable = readable_images(store)  # predictions are made for all of them
    cache = pixel_cache(store, config.input_format)
    hashes = {*examples.hashes, *(r.content_hash for r in readable)}
    uncached = len([h for h in hashes if h not in cache]) + planned_views(examples, config)
    per_image = cache.row_bytes + (_FEATURE_BYTES if config.model in BACKBONE_MODELS else 0)
    if config.model in BACKBONE_MODELS and config.backbone:
        weights = find_weights(config.backbone).stat().st_size
    else:
        weights = _SCRATCH_WEIGHTS_BYTES[config.model]
    rows = _ROW_BYTES * (len(readable) + len(examples.image_ids))
    model_files = _WEIGHTS_COPIES[config.model] * weights
    return uncached * per_image + model_files + rows + RESERVE_BYTES


def _record_end(
    store: ProjectStore, version: ModelVersion, reserve: Path, status: str, **fields: Any
) -> None:
    """Mark ``version`` cancelled or failed (its last whole checkpoint, if any,
    lets ``--resume`` continue it), in the room its reserve gives back."""
    reserve.unlink(missing_ok=True)
    try:
        versions.update_version(store, version.id, status=status, **fields)
    except LinnaeusError as unrecorded:  # the raised error says enough
        log.warning("could not mark %s %s: %s", version.name, status, unrecorded)


def _register_version(store: ProjectStore, config: TrainConfig, examples: Examples) -> ModelVersion:
    """A new model version for ``config``, with the labels and splits it trains on."""
    labels = {
        int(i): (int(c), str(s))
        for i, c, s in zip(examples.image_ids, examples.labels, examples.splits, strict=True)
    }
    return versions.create_version(
        store,
        kind=config.model,
        config=config.to_dict(),
        augmentation=config.augmentation.to_dict(),
        classes=examples.classes,
        labels=labels,
    )


def _check_enough(examples: Examples) -> None:
    train_labels = examples.labels[examples.split("train")]
    counts = np.bincount(train_labels, minlength=len(examples.classes))
    empty = [examples.classes[i] for i, n in enumerate(counts) if n == 0]
    if empty:
        raise TrainingError(f"These classes have no training images: {', '.join(empty)}.")


def _check_labels(
    version: ModelVersion,
    examples: Examples,
    outcome: RunOutcome,
    on_progress: ProgressCallback,
    cancel: CancelToken | None,
) -> dict[str, Any]:
    """Judge every labelled image by fold heads that never saw it, on the backbone
    features the run computed (`evaluation.label_issues`), and keep the result with
    the version; a model without backbone features keeps none. Returns the metrics
    that say so ({"label_check": {"images", "folds", "seconds"}}, or none)."""
    if outcome.features is None:
        return {}
    on_progress(TrainingProgress(stage="evaluate", done=0, total=1, phase="evaluate",
                                 message="Looking for wrong labels on held-out folds"))  # fmt: skip
    real = np.array([not is_view(h) for h in examples.hashes], dtype=bool)
    try:
        check = check_labels(version, examples.image_ids[real], examples.labels[real],
                             outcome.features[real], cancel=cancel)  # fmt: skip
    except EvaluationError as error:
        log.info("no label check for %s: %s", version.name, error)
        return {}
    log.info("label check of %d images in %.1f s", check.images, check.seconds)
    return {"label_check": asdict(check)}


def _validated_on_views(
    version: ModelVersion, examples: Examples, outcome: RunOutcome, views: ViewCounts
) -> dict[str, Any]:
    """The run's metrics with the training figures counted on the training images
    alone and the validation figures marked as counted on augmented views (of how
    many training images); the validation views' predictions are kept with the
    version (they are its validation split)."""
    from linnaeus.engine.training.runs import split_figures

    positions = examples.split("val")
    save_view_predictions(version, examples.image_ids[positions], examples.labels[positions],
                          outcome.split_probabilities["val"])  # fmt: skip
    train = examples.split("train")
    real = np.array([not is_view(examples.hashes[p]) for p in train], dtype=bool)
    return outcome.metrics | {
        "train": split_figures(examples.labels[train[real]],
                               outcome.split_probabilities["train"][real]),
        "val": outcome.metrics["val"] | {"augmented_views": views.validation_views,
                                         "training_images": views.training_images},
    }  # fmt: skip


def _resumable_version(store: ProjectStore) -> ModelVersion:
    leftovers.tidy(store)  # a killed training is "training" until settled as interrupted
    version = resumable_version(versions.list_versions(store))
    if version is None:
        raise TrainingError("There is no interrupted training to resume; start a new one.")
    project_lock.doing(store.project_dir, f"training {version.name}")
    return version
