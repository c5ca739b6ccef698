"""Training a classifier on a project's current labels: one call, one new model version.

Model choices, in the words the application uses:
- ``quick``: ImageNet backbone embeddings computed once per image and cached,
  a small head trained on them in seconds (the one-click retrain);
- ``accurate``: the quick head, then fine-tuning of the backbone's top layers
  with augmentation at a lower learning rate;
- ``seed-cnn`` / ``small-resnet``: from scratch, with augmentation;
- ``pretrain``: a denoising autoencoder trained on all the project's images
  (labelled or not) initialises a from-scratch net: the offline answer when
  no ImageNet weights exist.
``auto`` picks ``quick`` when backbone weights are on disk, else ``small-resnet``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from typing import Any

import numpy as np

from linnaeus.engine.errors import Cancelled
from linnaeus.engine.errors import TrainingError
from linnaeus.engine.images.augment import PRESETS
from linnaeus.engine.images.augment import Augmentation
from linnaeus.engine.images.preprocess import InputFormat
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import ignore_progress
from linnaeus.engine.project import versions
from linnaeus.engine.project.predictions import save_predictions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.store import utc_now
from linnaeus.engine.project.versions import ModelVersion
from linnaeus.engine.training.backbones import available_backbones
from linnaeus.engine.training.backbones import find_weights
from linnaeus.engine.training.data import IMBALANCE_METHODS
from linnaeus.engine.training.data import Examples
from linnaeus.engine.training.data import collect_examples
from linnaeus.engine.training.data import load_pixels

log = logging.getLogger(__name__)

MODEL_CHOICES = ("auto", "quick", "accurate", "seed-cnn", "small-resnet", "pretrain")
PREFERRED_BACKBONES = (
    "mobilenet_v2_0.5",
    "mobilenet_v2_0.35",
    "mobilenet_v2_1.0",
    "efficientnet_b0",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "inception_v3",
)
_DEFAULTS: dict[str, dict[str, Any]] = {
    "quick": {"image_size": 160, "epochs": 200, "learning_rate": 1e-3, "patience": 15},
    "accurate": {"image_size": 160, "epochs": 10, "learning_rate": 1e-4, "patience": 4},
    "seed-cnn": {"image_size": 128, "epochs": 30, "learning_rate": 1e-3, "patience": 6},
    "small-resnet": {"image_size": 128, "epochs": 30, "learning_rate": 1e-3, "patience": 6},
    "pretrain": {"image_size": 128, "epochs": 30, "learning_rate": 1e-3, "patience": 6},
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; stored with the model version.

    None means "the model's default" (see `resolved`).
    """

    model: str = "auto"
    backbone: str | None = None
    epochs: int | None = None
    image_size: int | None = None
    channels: int = 3
    resize: str = "stretch"
    binarize: bool = False
    batch_size: int = 32
    learning_rate: float | None = None
    augmentation: Augmentation = field(default_factory=lambda: PRESETS["gentle"])
    imbalance: str = "class-weights"
    l1: float = 0.0
    l2: float = 0.0
    dropout: float = 0.2
    activation: str = "elu"
    patience: int | None = None
    fine_tune_fraction: float = 0.3
    pretrain_epochs: int = 10
    normalize: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.model not in MODEL_CHOICES:
            raise TrainingError(
                f"Unknown model {self.model!r}; choose one of {', '.join(MODEL_CHOICES)}."
            )
        if self.imbalance not in IMBALANCE_METHODS:
            raise TrainingError(f"Class imbalance must be one of {', '.join(IMBALANCE_METHODS)}.")
        if self.epochs is not None and self.epochs < 1:
            raise TrainingError("Train for at least one epoch.")
        if self.batch_size < 1:
            raise TrainingError("The batch size must be at least 1.")

    def resolved(self) -> TrainConfig:
        """This config with ``auto`` and every None replaced by a concrete choice."""
        model, backbone = self.model, self.backbone
        if model == "auto":
            model = "quick" if _pick_backbone(backbone) else "small-resnet"
        if model in ("quick", "accurate"):
            backbone = _pick_backbone(backbone)
            if backbone is None:  # names the missing file and where to put it
                find_weights(self.backbone or PREFERRED_BACKBONES[0])
        defaults = _DEFAULTS[model]
        return replace(
            self,
            model=model,
            backbone=backbone if model in ("quick", "accurate") else None,
            epochs=self.epochs or defaults["epochs"],
            image_size=self.image_size or defaults["image_size"],
            channels=3 if model in ("quick", "accurate") else self.channels,
            learning_rate=self.learning_rate or defaults["learning_rate"],
            patience=self.patience or defaults["patience"],
        )

    @property
    def input_format(self) -> InputFormat:
        return InputFormat(self.image_size or 128, self.channels, self.resize, self.binarize)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["augmentation"] = self.augmentation.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        values = dict(data)
        values["augmentation"] = Augmentation.from_dict(values.get("augmentation", {}))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})


def _pick_backbone(requested: str | None) -> str | None:
    found = available_backbones()
    if requested:
        return requested if requested in found else None
    return next((key for key in PREFERRED_BACKBONES if key in found), None)


@dataclass(frozen=True)
class TrainResult:
    """A finished (or cancelled) training run."""

    version: ModelVersion
    skipped: list[tuple[str, str]]  # images that turned out unreadable: (path, reason)
    decoded: int  # images decoded this run (the rest came from the cache)


def train(
    store: ProjectStore,
    config: TrainConfig = TrainConfig(),
    *,
    resume: bool = False,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> TrainResult:
    """Train on the project's current labels and register a new model version
    (or, with ``resume``, continue the latest unfinished one)."""
    from linnaeus.engine.training import runs as training_runs
    from linnaeus.engine.training.device import configure_devices

    started = time.monotonic()
    if resume:
        version = _resumable_version(store)
        config = TrainConfig.from_dict(version.config)
        examples = collect_examples(store, version.classes)
        snapshot = versions.label_snapshot(store, version.id)
        examples = examples.subset(np.isin(examples.image_ids, list(snapshot)))
    else:
        config = config.resolved()
        examples = collect_examples(store)
        _check_enough(examples)
    device = configure_devices()
    import keras

    keras.utils.set_random_seed(config.seed)
    loaded = load_pixels(
        store, examples, config.input_format, on_progress=on_progress, cancel=cancel
    )
    if not resume:
        labels = {
            int(i): (int(c), str(s))
            for i, c, s in zip(
                loaded.examples.image_ids,
                loaded.examples.labels,
                loaded.examples.splits,
                strict=True,
            )
        }
        version = versions.create_version(
            store,
            kind=config.model,
            config=config.to_dict(),
            augmentation=config.augmentation.to_dict(),
            classes=examples.classes,
            labels=labels,
        )
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
    versions.set_active(store, version.id)
    return TrainResult(version, loaded.skipped, loaded.decoded)


def _check_enough(examples: Examples) -> None:
    train_labels = examples.labels[examples.split("train")]
    counts = np.bincount(train_labels, minlength=len(examples.classes))
    empty = [examples.classes[i] for i, n in enumerate(counts) if n == 0]
    if empty:
        raise TrainingError(f"These classes have no training images: {', '.join(empty)}.")
    if len(examples.split("val")) == 0:
        raise TrainingError("There are no validation images; re-import to assign splits.")


def _resumable_version(store: ProjectStore) -> ModelVersion:
    from linnaeus.engine.training.callbacks import CHECKPOINT_FILE

    for version in versions.list_versions(store):
        if version.status == "done":
            break
        if (version.folder / CHECKPOINT_FILE).exists():
            return version
    raise TrainingError("There is no interrupted training to resume; start a new one.")
