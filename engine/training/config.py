"""What a training run is asked to do, without TensorFlow: the one place for its names.

The model choices, the class-imbalance methods, the per-model defaults, the
files a run leaves in its version folder and `TrainConfig` itself live here,
so the command line, the GUI and the trainer share them; nothing here imports
TensorFlow, Keras or tf2onnx, even indirectly (an import-linter contract checks it).

Model choices, in the words the application uses:
- ``quick``: ImageNet backbone embeddings computed once per image and cached,
  a small head trained on them in seconds (the one-click retrain);
- ``accurate``: the quick head, then fine-tuning of the whole backbone (its
  BatchNormalization frozen) with augmentation at a lower learning rate, after a
  one-epoch warm-up (bench/bench_recipe.py measured it against the top 30%);
- ``seed-cnn`` / ``small-resnet``: from scratch, with augmentation;
- ``pretrain``: a denoising autoencoder trained on all the project's images
  (labelled or not) initialises a from-scratch net: the offline answer when
  no ImageNet weights exist.
``auto`` picks ``quick`` when backbone weights are on disk, else ``small-resnet``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from typing import Any

from linnaeus.engine.errors import TrainingError
from linnaeus.engine.evaluation.decision import positive_class
from linnaeus.engine.images.augment import PRESETS
from linnaeus.engine.images.augment import Augmentation
from linnaeus.engine.images.preprocess import InputFormat
from linnaeus.engine.project.versions import ModelVersion
from linnaeus.engine.training.backbones import available_backbones
from linnaeus.engine.training.backbones import find_weights

MODEL_CHOICES = ("auto", "quick", "accurate", "seed-cnn", "small-resnet", "pretrain")
BACKBONE_MODELS = ("quick", "accurate")  # the choices built on an ImageNet backbone
PREFERRED_BACKBONES = (
    "mobilenet_v2_0.5",
    "mobilenet_v2_0.35",
    "mobilenet_v2_1.0",
    "efficientnet_b0",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "inception_v3",
)
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "quick": {"image_size": 160, "epochs": 200, "learning_rate": 1e-3, "patience": 15},
    "accurate": {"image_size": 160, "epochs": 10, "learning_rate": 1e-4, "patience": 4},
    "seed-cnn": {"image_size": 128, "epochs": 30, "learning_rate": 1e-3, "patience": 6},
    "small-resnet": {"image_size": 128, "epochs": 30, "learning_rate": 1e-3, "patience": 6},
    "pretrain": {"image_size": 128, "epochs": 30, "learning_rate": 1e-3, "patience": 6},
}
IMBALANCE_METHODS = ("class-weights", "oversample", "undersample", "none")
DEFAULT_AUGMENTATION = "gentle"  # a preset of engine.images.augment
RESUMABLE_STATUSES = ("cancelled", "interrupted", "failed")  # of engine.project.versions

# Files of an unfinished run in its model version's folder: the resumable
# checkpoint (model with optimizer state; named in engine.project.versions, which
# tells a resumable version from a dead one), the best weights so far, where
# training stood.
BEST_WEIGHTS_FILE = "best.weights.npz"
STATE_FILE = "train_state.json"

# The anytime default (`engine.training.anytime`): the quick model first, then
# fine-tuning within this time budget ("0" or "0m": the quick model only).
DEFAULT_BUDGET = "10m"
_BUDGET_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
_BUDGET_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(h|min|m|sec|s)")


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
    augmentation: Augmentation = field(default_factory=lambda: PRESETS[DEFAULT_AUGMENTATION])
    imbalance: str = "class-weights"
    l1: float = 0.0
    l2: float = 0.0
    dropout: float = 0.2
    activation: str = "elu"
    patience: int | None = None
    fine_tune_fraction: float = 1.0  # of the backbone's layers, from the top (accurate)
    pretrain_epochs: int = 10
    normalize: bool = True
    seed: int = 0
    # Two classes: the class the decision threshold must find (its sensitivity is
    # reported); None: `for_classes` picks it from the class names.
    positive: str | None = None

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
        if model in BACKBONE_MODELS:
            backbone = _pick_backbone(backbone)
            if backbone is None:  # names the missing file and where to put it
                find_weights(self.backbone or PREFERRED_BACKBONES[0])
        defaults = MODEL_DEFAULTS[model]
        return replace(
            self,
            model=model,
            backbone=backbone if model in BACKBONE_MODELS else None,
            epochs=self.epochs or defaults["epochs"],
            image_size=self.image_size or defaults["image_size"],
            channels=3 if model in BACKBONE_MODELS else self.channels,
            learning_rate=self.learning_rate or defaults["learning_rate"],
            patience=self.patience or defaults["patience"],
        )

    def for_classes(self, classes: Sequence[str]) -> TrainConfig:
        """This config with ``positive`` checked against ``classes`` and, for two
        classes, chosen by `positive_class` when not given (None for more classes)."""
        if self.positive is not None and self.positive not in classes:
            raise TrainingError(
                f"The positive class {self.positive!r} is not one of the classes: "
                f"{', '.join(classes)}."
            )
        if len(classes) != 2:
            if self.positive is not None:
                raise TrainingError(
                    f"A positive class is for two-class projects; this one has {len(classes)} "
                    f"classes ({', '.join(classes)})."
                )
            return self
        return replace(self, positive=self.positive or classes[positive_class(classes)])

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


def parse_budget(text: str) -> float:
    """Seconds of a time budget written like ``90s``, ``10m``, ``1h`` or ``1h30m``
    ("0" is no time: the quick model only)."""
    cleaned = str(text).strip().lower().replace(" ", "")
    if re.fullmatch(r"0+(\.0*)?", cleaned):
        return 0.0
    parts = _BUDGET_PART.findall(cleaned)
    if not cleaned or "".join(number + unit for number, unit in parts) != cleaned:
        raise TrainingError(
            f"Cannot read the time budget {text!r}: give a number with a unit, "
            "e.g. 90s, 10m, 1h or 1h30m (0 trains the quick model only)."
        )
    return float(sum(float(number) * _BUDGET_UNITS[unit] for number, unit in parts))


def budget_text(seconds: float) -> str:
    """A budget in seconds as `parse_budget` reads it back: ``10m``, ``90s``, ``1h``."""
    whole = round(seconds)
    if whole and whole % 3600 == 0:
        return f"{whole // 3600}h"
    if whole % 60 == 0:
        return f"{whole // 60}m"
    return f"{whole}s"


def resumable_version(listed: Iterable[ModelVersion]) -> ModelVersion | None:
    """The version ``train(resume=True)`` continues: of ``listed`` (newest first),
    the newest that stopped before it finished (cancelled, interrupted, failed)
    and left a checkpoint, even if a newer one finished since."""
    for version in listed:
        if version.status in RESUMABLE_STATUSES and version.checkpoint_file.exists():
            return version
    return None
