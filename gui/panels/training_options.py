"""The training choices in the user's words, and the "Advanced" settings form.

The choices themselves (model names, class-imbalance methods, defaults) are
the engine's (`engine.training.config`, `engine.cli.protocol`); this module only
gives each one a label and an explanation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtCore import Qt
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox
from PySide6.QtWidgets import QDoubleSpinBox
from PySide6.QtWidgets import QFormLayout
from PySide6.QtWidgets import QSpinBox
from PySide6.QtWidgets import QWidget

from linnaeus.engine.cli.protocol import TrainOptions
from linnaeus.engine.images.augment import PRESETS
from linnaeus.engine.training.config import IMBALANCE_METHODS
from linnaeus.gui import app_settings

# engine model name -> (label, explanation)
MODEL_WORDS: dict[str, tuple[str, str]] = {
    "auto": (
        "Automatic",
        "The quick model first (ready in seconds), then fine-tuning within the time budget, "
        "kept only if it is better on the validation images. Without the ImageNet networks, "
        "a small network trained from scratch.",
    ),
    "quick": (
        "Quick (seconds)",
        "Reuses a network trained on millions of photos (ImageNet) and fits only its last "
        "layer. Retraining after a few label fixes takes seconds.",
    ),
    "accurate": (
        "Accurate (fine-tune)",
        "Quick, then also adjusts the top of the ImageNet network to your images. "
        "A few percent more accurate; takes minutes to hours.",
    ),
    "seed-cnn": (
        "From scratch (seed CNN)",
        "The small network of the original notebooks, trained from scratch with augmentation. "
        "Needs no ImageNet network; best with thousands of images.",
    ),
    "small-resnet": (
        "From scratch (small ResNet)",
        "A stronger small network trained from scratch with augmentation. Needs no ImageNet "
        "network.",
    ),
    "pretrain": (
        "Pretrain on my images",
        "First learns what your images look like (labelled or not), then trains from there. "
        "For many unlabelled images and no ImageNet network.",
    ),
}
# engine class-imbalance method -> (label, explanation)
IMBALANCE_WORDS: dict[str, tuple[str, str]] = {
    "class-weights": (
        "Weigh rare classes more",
        "Class weights: mistakes on a rare class count more in the loss.",
    ),
    "oversample": (
        "Repeat rare-class images",
        "Oversample: rare-class images are shown more often in each epoch.",
    ),
    "undersample": (
        "Fewer common-class images",
        "Undersample: each epoch uses only as many "
        "images of a common class as the rarest class has.",
    ),
    "none": ("Do nothing", "Train on the images as they are."),
}
AUGMENT_CUSTOM = "custom"
DEFAULTS = TrainOptions()  # the trainer's
BUDGET_EXPLANATION = (
    "Automatic trains the quick model first (ready in seconds), then fine-tunes the "
    "ImageNet network within this time and keeps the fine-tuned model only if it is better "
    "on the validation images. 0: the quick model only."
)


def model_label(name: str) -> str:
    """The label of the engine's model choice ``name`` (the name itself if unknown)."""
    return MODEL_WORDS.get(name, (name, ""))[0]


def add_choices(
    combo: QComboBox, names: tuple[str, ...], words: dict[str, tuple[str, str]]
) -> None:
    """Fill ``combo`` with the engine's ``names``, shown by label, explained in tooltips."""
    for name in names:
        label, explanation = words[name]
        combo.addItem(label, name)
        combo.setItemData(combo.count() - 1, explanation, Qt.ItemDataRole.ToolTipRole)


@contextmanager
def _at_root(settings: QSettings) -> Iterator[QSettings]:
    """``settings`` outside the group it is in (a panel's), for application-wide keys."""
    group = settings.group()
    while settings.group():
        settings.endGroup()
    try:
        yield settings
    finally:
        if group:
            settings.beginGroup(group)


def saved_budget_minutes(settings: QSettings) -> int:
    """The time budget saved under `app_settings.BUDGET_MINUTES_KEY` (application-wide,
    whatever group ``settings`` is in: the Settings dialog's default is this value)."""
    with _at_root(settings) as root:
        return app_settings.budget_minutes(root)


def save_budget_minutes(settings: QSettings, minutes: int) -> None:
    with _at_root(settings) as root:
        root.setValue(app_settings.BUDGET_MINUTES_KEY, int(minutes))


class BudgetField(QSpinBox):
    """The time budget of the default training, in minutes (0: the quick model only)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setRange(*app_settings.BUDGET_RANGE)
        self.setSingleStep(5)
        self.setSuffix(" min")
        self.setSpecialValueText("quick model only")
        self.setValue(app_settings.DEFAULT_BUDGET_MINUTES)
        self.setToolTip(BUDGET_EXPLANATION)

    def budget(self) -> str:
        """As `TrainOptions.budget` takes it, e.g. "10m"."""
        return f"{self.value()}m"


class TrainingOptionsForm(QWidget):
    """The "Advanced" settings: epochs, image size, class imbalance, regularisation,
    augmentation. ``options()`` gives them as `TrainRunner` options.

    Signal ``options_changed()`` when any setting changes.
    """

    options_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.epochs = QSpinBox(self)
        self.epochs.setRange(0, 1000)
        self.epochs.setSpecialValueText("model's default")
        self.epochs.setToolTip(
            "The most epochs to train; training stops earlier once the "
            "validation loss stops improving."
        )
        self.image_size = QSpinBox(self)
        self.image_size.setRange(0, 1024)
        self.image_size.setSingleStep(16)
        self.image_size.setSpecialValueText("model's default")
        self.image_size.setSuffix(" px")
        self.image_size.setToolTip(
            "Images are resized to this square size before training. "
            "Larger sees finer detail but trains slower."
        )
        self.imbalance = QComboBox(self)
        add_choices(self.imbalance, IMBALANCE_METHODS, IMBALANCE_WORDS)
        self.imbalance.setCurrentIndex(self.imbalance.findData(DEFAULTS.imbalance))
        self.imbalance.setToolTip("What to do when some classes have many more images than others.")
        self.l2 = QDoubleSpinBox(self)
        self.l2.setRange(0.0, 1.0)
        self.l2.setDecimals(4)
        self.l2.setSingleStep(0.0005)
        self.l2.setSpecialValueText("off")
        self.l2.setToolTip(
            "L2 penalty on the last layer's weights: larger values fight "
            "over-fitting on few images."
        )
        self.dropout = QDoubleSpinBox(self)
        self.dropout.setRange(0.0, 0.9)
        self.dropout.setSingleStep(0.05)
        self.dropout.setValue(DEFAULTS.dropout)
        self.dropout.setToolTip(
            "Share of features dropped at random while training, "
            "another guard against over-fitting."
        )
        self.augment = QComboBox(self)
        for name in PRESETS:
            self.augment.addItem(name.capitalize(), name)
        self.augment.setCurrentIndex(self.augment.findData(DEFAULTS.augment))
        self.augment.setToolTip(
            "Random rotations, shifts, zooms and flips of the training "
            "images; tune them in the Augmentation panel."
        )
        self._custom_augmentation: dict[str, Any] | None = None

        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Epochs at most", self.epochs)
        form.addRow("Image size", self.image_size)
        form.addRow("Class imbalance", self.imbalance)
        form.addRow("L2 penalty", self.l2)
        form.addRow("Dropout", self.dropout)
        form.addRow("Augmentation", self.augment)
        for spin in (self.epochs, self.image_size):
            spin.valueChanged.connect(self.options_changed)
        for double in (self.l2, self.dropout):
            double.valueChanged.connect(self.options_changed)
        for combo in (self.imbalance, self.augment):
            combo.currentIndexChanged.connect(self.options_changed)

    def set_augmentation(self, settings: dict[str, Any]) -> None:
        """Use these `Augmentation` settings (from the Augmentation panel); a preset's
        settings select the preset."""
        preset = next((n for n, p in PRESETS.items() if p.to_dict() == settings), None)
        if preset is not None:
            self.augment.setCurrentIndex(self.augment.findData(preset))
            return
        self._custom_augmentation = dict(settings)
        if self.augment.findData(AUGMENT_CUSTOM) < 0:
            self.augment.addItem("Custom (from the Augmentation panel)", AUGMENT_CUSTOM)
        self.augment.setCurrentIndex(self.augment.findData(AUGMENT_CUSTOM))

    def save_state(self, settings: QSettings) -> None:
        """Remember the settings (the augmentation is the Augmentation panel's)."""
        settings.setValue("epochs", self.epochs.value())
        settings.setValue("image_size", self.image_size.value())
        settings.setValue("imbalance", self.imbalance.currentData())
        settings.setValue("l2", self.l2.value())
        settings.setValue("dropout", self.dropout.value())

    def restore_state(self, settings: QSettings) -> None:
        self.epochs.setValue(int(settings.value("epochs", self.epochs.value())))
        self.image_size.setValue(int(settings.value("image_size", self.image_size.value())))
        index = self.imbalance.findData(settings.value("imbalance"))
        if index >= 0:
            self.imbalance.setCurrentIndex(index)
        self.l2.setValue(float(settings.value("l2", self.l2.value())))
        self.dropout.setValue(float(settings.value("dropout", self.dropout.value())))

    def options(self) -> TrainOptions:
        """The settings as `TrainOptions` (epochs and image size None: the model's
        default); custom augmentation settings come with `custom_augmentation`."""
        augment = self.augment.currentData()
        return replace(
            DEFAULTS,
            epochs=self.epochs.value() or None,
            image_size=self.image_size.value() or None,
            imbalance=self.imbalance.currentData(),
            l2=self.l2.value(),
            dropout=self.dropout.value(),
            augment=DEFAULTS.augment if augment == AUGMENT_CUSTOM else augment,
        )

    def custom_augmentation(self) -> dict[str, Any] | None:
        """The Augmentation panel's settings when they are no preset, else None."""
        if self.augment.currentData() == AUGMENT_CUSTOM:
            return self._custom_augmentation
        return None
