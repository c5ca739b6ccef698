"""Training a classifier on a project's current labels: one call, one new model version.

What a run is asked to do (`TrainConfig`, the model choices) is in
`engine.training.config`; this module loads the examples, registers the
version, runs the recipe (`engine.training.runs`) and records the outcome.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from linnaeus.engine.errors import Cancelled
from linnaeus.engine.errors import TrainingError
from linnaeus.engine.evaluation.version import decided_split_figures
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import ignore_progress
from linnaeus.engine.project import leftovers
from linnaeus.engine.project import lock as project_lock
from linnaeus.engine.project import versions
from linnaeus.engine.project.predictions import save_predictions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.store import utc_now
from linnaeus.engine.project.versions import ModelVersion
from linnaeus.engine.training.config import TrainConfig
from linnaeus.engine.training.config import resumable_version
from linnaeus.engine.training.data import Examples
from linnaeus.engine.training.data import collect_examples
from linnaeus.engine.training.data import load_pixels

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """A finished (or cancelled) training run."""

    version: ModelVersion
    skipped: list[tuple[str, str]]  # images that turned out unreadable: (path, reason)
    decoded: int  # images decoded this run (the rest came from the cache)


@project_lock.holding_lock("training")
def train(
    store: ProjectStore,
    config: TrainConfig = TrainConfig(),  # noqa: B008 (frozen: safe to share)
    *,
    resume: bool = False,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> TrainResult:
    """Train on the project's current labels and register a new model version
    (or, with ``resume``, continue the latest unfinished one), holding the
    project's lock."""
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
        _check_enough(examples)
    from linnaeus.engine.training import runs as training_runs
    from linnaeus.engine.training.device import configure_devices

    device = configure_devices()
    import keras

    keras.utils.set_random_seed(config.seed)
    loaded = load_pixels(
        store, examples, config.input_format, on_progress=on_progress, cancel=cancel
    )
    if not resume:
        version = _register_version(store, config, loaded.examples)
    project_lock.doing(store.project_dir, f"training {version.name}")
    versions.update_version(store, version.id, status="training", device=device.description)
    try:
        with device.strategy.scope():
            outcome = training_runs.run(
                store,
                config,
                version,
                loaded,
                device,
                resume=resume,
                on_progress=on_progress,
                cancel=cancel,
            )
    except Cancelled:
        versions.update_version(
            store, version.id, status="cancelled", duration_s=time.monotonic() - started
        )
        raise
    except Exception as error:
        versions.update_version(store, version.id, status="failed", error=str(error)[:500])
        raise
    save_predictions(store, version.id, outcome.image_ids, outcome.probabilities)
    version = versions.update_version(
        store,
        version.id,
        status="done",
        metrics=outcome.metrics,
        curves=outcome.curves,
        duration_s=time.monotonic() - started,
        finished_at=utc_now(),
    )
    # The accuracies the versions table shows, counted at the decisions the version
    # is exported with (threshold and temperature fitted on validation now).
    version = versions.update_version(
        store, version.id, metrics=decided_split_figures(store, version)
    )
    versions.set_active(store, version.id)
    return TrainResult(version, loaded.skipped, loaded.decoded)


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
    if len(examples.split("val")) == 0:
        raise TrainingError("There are no validation images; re-import to assign splits.")


def _resumable_version(store: ProjectStore) -> ModelVersion:
    leftovers.tidy(store)  # a killed training is "training" until settled as interrupted
    version = resumable_version(versions.list_versions(store))
    if version is None:
        raise TrainingError("There is no interrupted training to resume; start a new one.")
    project_lock.doing(store.project_dir, f"training {version.name}")
    return version
