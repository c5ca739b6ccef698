"""The augmentation panel: the settings, the presets, and live samples of the selected image."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PySide6.QtCore import QSettings
from PySide6.QtCore import Qt
from PySide6.QtCore import QTimer
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox
from PySide6.QtWidgets import QComboBox
from PySide6.QtWidgets import QDoubleSpinBox
from PySide6.QtWidgets import QFileDialog
from PySide6.QtWidgets import QFormLayout
from PySide6.QtWidgets import QHBoxLayout
from PySide6.QtWidgets import QLabel
from PySide6.QtWidgets import QPushButton
from PySide6.QtWidgets import QScrollArea
from PySide6.QtWidgets import QSpinBox
from PySide6.QtWidgets import QVBoxLayout
from PySide6.QtWidgets import QWidget

from linnaeus.engine.atomic import atomic_write_bytes
from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.images.augment import PRESETS
from linnaeus.engine.images.augment import Augmentation
from linnaeus.engine.images.augment import load_augmentation
from linnaeus.engine.images.augment import preview_samples
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import ProgressCallback
from linnaeus.gui.widgets.augment_controls import SampleGrid
from linnaeus.gui.widgets.augment_controls import SliderSpin
from linnaeus.gui.widgets.message_line import MessageLine
from linnaeus.gui.widgets.pixmaps import qimage_from_array
from linnaeus.gui.workers import Worker

GRID = 3  # samples per row and column
PREVIEW_SIDE = 384  # larger images are shrunk first (training sees them smaller still)
DEBOUNCE_MS = 100
# (field, label, largest value shown, decimals, shown per unit of the field, suffix, tip)
RANGES = (
    (
        "rotation_range",
        "Rotation",
        180.0,
        0,
        1.0,
        "°",
        "Turn each image by a random angle of up to this many degrees, either way.",
    ),
    (
        "width_shift_range",
        "Shift left–right",
        95.0,
        1,
        100.0,
        " %",
        "Move each image sideways by up to this share of its width.",
    ),
    (
        "height_shift_range",
        "Shift up–down",
        95.0,
        1,
        100.0,
        " %",
        "Move each image up or down by up to this share of its height.",
    ),
    (
        "shear_range",
        "Shear",
        89.9,
        1,
        1.0,
        "°",
        "Slant each image by up to this angle. The notebooks' 0.1–0.2° are barely visible.",
    ),
    (
        "zoom_range",
        "Zoom",
        95.0,
        1,
        100.0,
        " %",
        "Zoom in or out by up to this share, across and down independently.",
    ),
)
FILL_MODES = (
    ("nearest", "Repeat the edge pixels"),
    ("reflect", "Mirror the image"),
    ("wrap", "Wrap around"),
    ("constant", "One grey level"),
)
CUSTOM = "custom"


def preview_images(
    pixels: np.ndarray,
    settings: Augmentation,
    seed: int,
    *,
    on_progress: ProgressCallback,
    cancel: CancelToken,
) -> list[np.ndarray]:
    """`GRID`² augmented samples of ``pixels`` (shrunk to `PREVIEW_SIDE` first if larger),
    exactly as training draws them (engine.augment.preview_samples)."""
    height, width = pixels.shape[:2]
    if max(height, width) > PREVIEW_SIDE:
        scale = PREVIEW_SIDE / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    return preview_samples(pixels, settings, GRID * GRID, seed)


class AugmentPanel(QWidget):
    """Augmentation settings with their presets and a live grid of samples.

    The main window calls `set_image(pixels)` when the selected image changes and
    connects ``augmentation_changed(dict)`` (``Augmentation.to_dict()``, emitted
    once the settings stop changing) to the training panel's ``set_augmentation``.
    Samples are computed in a `Worker` by the engine's own preview function, so
    they are the ones training draws; a newer request drops older results.
    """

    augmentation_changed = Signal(dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pixels: np.ndarray | None = None
        self._seed = 0
        self._request = 0
        self._running: set[Worker] = set()
        self._updating = False
        self.samples: list[np.ndarray] = []
        self.preset = QComboBox(self)
        for name in PRESETS:
            self.preset.addItem(name.capitalize(), name)
        self.preset.addItem("Custom", CUSTOM)
        self.preset.setToolTip("Gentle and Strong are the settings of the original notebooks.")
        self.ranges = {
            field: SliderSpin(maximum, decimals, scale, suffix, self)
            for field, _, maximum, decimals, scale, suffix, _ in RANGES
        }
        self.horizontal_flip = QCheckBox("Mirror left–right", self)
        self.vertical_flip = QCheckBox("Mirror up–down", self)
        self.vary_brightness = QCheckBox("Vary", self)
        self.brightness_low = QDoubleSpinBox(self)
        self.brightness_high = QDoubleSpinBox(self)
        for spin, value in ((self.brightness_low, 0.8), (self.brightness_high, 1.2)):
            spin.setRange(0.0, 3.0)
            spin.setSingleStep(0.05)
            spin.setValue(value)
            spin.setPrefix("× ")
        self.fill_mode = QComboBox(self)
        for name, label in FILL_MODES:
            self.fill_mode.addItem(label, name)
        self.fill_mode.setToolTip("What fills the corners that rotating or shifting uncovers.")
        self.cval = QSpinBox(self)
        self.cval.setRange(0, 255)
        self.cval.setToolTip("The grey level (0 black, 255 white) of the filled corners.")
        self.featurewise_center = QCheckBox("Subtract the training images' mean", self)
        self.featurewise_std = QCheckBox("Divide by their standard deviation", self)
        self.new_samples = QPushButton("New samples", self)
        self.new_samples.setToolTip("Draw nine other random variants.")
        self.open_button = QPushButton("Open…", self)
        self.save_button = QPushButton("Save as JSON…", self)
        self.save_button.setToolTip(
            "Save these settings; `linnaeus train --augment FILE` uses them."
        )
        self.grid = SampleGrid(GRID, self)
        self.message = MessageLine(self)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self._on_debounce_timeout)
        self._layout()
        self._connect()
        self.set_augmentation(PRESETS["gentle"].to_dict())

    def _layout(self) -> None:
        form = QFormLayout()
        form.addRow("Preset", self.preset)
        for field, label, *_, tip in RANGES:
            form.addRow(label, self.ranges[field])
            self.ranges[field].setToolTip(tip)
        flips = QHBoxLayout()
        flips.addWidget(self.horizontal_flip)
        flips.addWidget(self.vertical_flip)
        flips.addStretch(1)
        form.addRow("Flips", flips)
        brightness = QHBoxLayout()
        brightness.addWidget(self.vary_brightness)
        brightness.addWidget(self.brightness_low)
        brightness.addWidget(QLabel("to", self))
        brightness.addWidget(self.brightness_high)
        brightness.addStretch(1)
        form.addRow("Brightness", brightness)
        fill = QHBoxLayout()
        fill.addWidget(self.fill_mode, 1)
        fill.addWidget(self.cval)
        form.addRow("Fill corners", fill)
        form.addRow("Normalise", self.featurewise_center)
        form.addRow("", self.featurewise_std)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.save_button)
        buttons.addStretch(1)
        settings = QWidget(self)
        column = QVBoxLayout(settings)
        column.addLayout(form)
        column.addLayout(buttons)
        column.addWidget(self.message)
        column.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidget(settings)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setMinimumWidth(settings.sizeHint().width() + 16)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        preview = QVBoxLayout()
        caption = QLabel(
            "Nine random variants of the selected image, drawn as training draws them.", self
        )
        caption.setWordWrap(True)
        preview.addWidget(caption)
        preview.addWidget(self.grid, 1)
        preview.addWidget(self.new_samples, 0, Qt.AlignmentFlag.AlignRight)
        layout = QHBoxLayout(self)
        layout.addWidget(scroll)
        layout.addLayout(preview, 1)

    def _connect(self) -> None:
        self.preset.currentIndexChanged.connect(self._on_preset_changed)
        for control in self.ranges.values():
            control.value_changed.connect(self._on_setting_changed)
        for box in (
            self.horizontal_flip,
            self.vertical_flip,
            self.vary_brightness,
            self.featurewise_center,
            self.featurewise_std,
        ):
            box.toggled.connect(self._on_setting_changed)
        self.brightness_low.valueChanged.connect(self._on_brightness_low_changed)
        self.brightness_high.valueChanged.connect(self._on_brightness_high_changed)
        self.fill_mode.currentIndexChanged.connect(self._on_setting_changed)
        self.cval.valueChanged.connect(self._on_setting_changed)
        self.new_samples.clicked.connect(self._on_new_samples_clicked)
        self.open_button.clicked.connect(self._on_open_button_clicked)
        self.save_button.clicked.connect(self._on_save_button_clicked)

    # -- public -------------------------------------------------------------

    def set_image(self, pixels: np.ndarray | None) -> None:
        """Preview this image (H x W or H x W x C, 8 or 16 bit); None clears the grid."""
        self._pixels = None if pixels is None else np.asarray(pixels)
        self._schedule()

    def augmentation(self) -> Augmentation:
        """The settings as shown."""
        brightness = None
        if self.vary_brightness.isChecked():
            brightness = (self.brightness_low.value(), self.brightness_high.value())
        return Augmentation(
            **{field: control.value() for field, control in self.ranges.items()},
            horizontal_flip=self.horizontal_flip.isChecked(),
            vertical_flip=self.vertical_flip.isChecked(),
            brightness_range=brightness,
            fill_mode=self.fill_mode.currentData(),
            cval=float(self.cval.value()),
            featurewise_center=self.featurewise_center.isChecked(),
            featurewise_std_normalization=self.featurewise_std.isChecked(),
        )

    def set_augmentation(self, settings: dict[str, Any]) -> None:
        """Show these settings (``Augmentation.to_dict()``); refused settings leave the
        panel as it was and say why."""
        try:
            params = Augmentation.from_dict(settings)
        except LinnaeusError as error:
            self.message.show_message("error", str(error))
            return
        self._updating = True
        for field, control in self.ranges.items():
            control.set_value(getattr(params, field))
        self.horizontal_flip.setChecked(params.horizontal_flip)
        self.vertical_flip.setChecked(params.vertical_flip)
        self.vary_brightness.setChecked(params.brightness_range is not None)
        low, high = params.brightness_range or (0.8, 1.2)
        self.brightness_low.setValue(low)
        self.brightness_high.setValue(high)
        self.fill_mode.setCurrentIndex(self.fill_mode.findData(params.fill_mode))
        self.cval.setValue(round(params.cval))
        self.featurewise_center.setChecked(params.featurewise_center)
        self.featurewise_std.setChecked(params.featurewise_std_normalization)
        self._updating = False
        self._on_setting_changed()

    def save_state(self, settings: QSettings) -> None:
        """Remember the augmentation settings between sessions."""
        settings.setValue("augmentation", json.dumps(self.augmentation().to_dict()))

    def restore_state(self, settings: QSettings) -> None:
        try:
            saved = Augmentation.from_dict(json.loads(str(settings.value("augmentation", ""))))
        except (ValueError, TypeError, LinnaeusError):
            return  # none saved, or from another version: keep the defaults
        self.set_augmentation(saved.to_dict())

    def save_settings(self, path: Path) -> None:
        """Write the settings to a JSON file that `linnaeus train --augment` reads."""
        text = json.dumps(self.augmentation().to_dict(), indent=2) + "\n"
        atomic_write_bytes(Path(path), text.encode("utf-8"))

    def load_settings(self, path: Path) -> None:
        """Show the settings saved in a JSON file (or a preset's name)."""
        try:
            self.set_augmentation(load_augmentation(str(path)).to_dict())
        except LinnaeusError as error:
            self.message.show_message("error", str(error))

    # -- slots --------------------------------------------------------------

    def _on_preset_changed(self) -> None:
        name = self.preset.currentData()
        if name in PRESETS and not self._updating:
            self.set_augmentation(PRESETS[name].to_dict())

    def _on_brightness_low_changed(self, value: float) -> None:
        if value > self.brightness_high.value():
            self.brightness_high.setValue(value)
        self._on_setting_changed()

    def _on_brightness_high_changed(self, value: float) -> None:
        if value < self.brightness_low.value():
            self.brightness_low.setValue(value)
        self._on_setting_changed()

    def _on_setting_changed(self) -> None:
        if self._updating:
            return
        self.message.clear()
        for spin in (self.brightness_low, self.brightness_high):
            spin.setEnabled(self.vary_brightness.isChecked())
        self.cval.setEnabled(self.fill_mode.currentData() == "constant")
        current = self.augmentation().to_dict()
        preset = next((n for n, p in PRESETS.items() if p.to_dict() == current), CUSTOM)
        self.preset.blockSignals(True)
        self.preset.setCurrentIndex(self.preset.findData(preset))
        self.preset.blockSignals(False)
        self._schedule()

    def _on_new_samples_clicked(self) -> None:
        self._seed += 1
        self._schedule()

    def _schedule(self) -> None:
        self._debounce.start()

    def _on_debounce_timeout(self) -> None:
        settings = self.augmentation()
        self.augmentation_changed.emit(settings.to_dict())
        self._request += 1
        if self._pixels is None:
            self.samples = []
            self.grid.set_images([])
            return
        worker = Worker(preview_images, self._pixels, settings, self._seed)
        request = self._request
        worker.finished.connect(
            lambda samples, w=worker: self._on_preview_ended(w, request, samples)
        )
        worker.failed.connect(lambda text, w=worker: self._on_preview_failed(w, request, text))
        worker.cancelled.connect(lambda w=worker: self._running.discard(w))
        self._running.add(worker)
        worker.start(owner=self)

    def _on_preview_ended(self, worker: Worker, request: int, samples: list[np.ndarray]) -> None:
        self._running.discard(worker)
        if request != self._request:
            return  # the settings or the image changed since: a newer preview follows
        self.samples = samples
        self.grid.set_images([qimage_from_array(sample) for sample in samples])

    def _on_preview_failed(self, worker: Worker, request: int, text: str) -> None:
        self._running.discard(worker)
        if request == self._request:
            self.samples = []
            self.grid.set_images([])
            self.message.show_message("error", text)

    def _on_open_button_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open augmentation settings", "", "Augmentation settings (*.json)"
        )
        if path:
            self.load_settings(Path(path))

    def _on_save_button_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Save augmentation settings",
            "augmentation.json",
            "Augmentation settings (*.json)",
        )
        if not path:
            return
        try:
            self.save_settings(Path(path))
        except OSError as error:
            self.message.show_message("error", f"Cannot save {path}: {error.strerror or error}")
        else:
            self.message.show_message("success", f"Saved to {path}.")
