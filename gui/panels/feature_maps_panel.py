"""The "What the model sees" panel: each convolutional block's feature maps for the
image in the viewer, as a grid, with the model's probabilities for that image.

Early blocks respond to edges and colours at full detail; later ones to larger
patterns at coarse resolution. Each map is stretched to its own range, so a
weak map is as visible as a strong one: brightness compares places within a
map, not maps with each other.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent
from PySide6.QtCore import QObject
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QComboBox
from PySide6.QtWidgets import QHBoxLayout
from PySide6.QtWidgets import QLabel
from PySide6.QtWidgets import QSizePolicy
from PySide6.QtWidgets import QVBoxLayout
from PySide6.QtWidgets import QWidget

from linnaeus.engine.onnx.explanation import MAX_GRID_MAPS
from linnaeus.engine.onnx.explanation import ImageExplanation
from linnaeus.engine.onnx.explanation import block_depths
from linnaeus.engine.onnx.explanation import feature_grid
from linnaeus.gui.widgets.pixmaps import pixmap_from_array

COLOURS = "viridis"


class FeatureMapsPanel(QWidget):
    """Feature maps of one image, block by block; see the module docstring."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._explanation: ImageExplanation | None = None
        self._lut = pg.colormap.get(COLOURS).getLookupTable(0.0, 1.0, 256, alpha=False)
        self._pixmap: QPixmap | None = None
        self.block_choice = QComboBox(self)
        self.block_choice.setToolTip(
            "The part of the model whose maps are shown, from the input (early) to the "
            "decision (late)"
        )
        self.block_choice.currentIndexChanged.connect(self._draw)
        self.status = QLabel("Select an image to see what the model sees in it.", self)
        self.status.setWordWrap(True)
        self.caption = QLabel(self)
        self.caption.setWordWrap(True)
        self.prediction = QLabel(self)
        self.prediction.setWordWrap(True)
        self.picture = QLabel(self)
        self.picture.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.picture.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.picture.setMinimumSize(1, 1)
        self.picture.installEventFilter(self)
        top = QHBoxLayout()
        top.addWidget(QLabel("Depth"))
        top.addWidget(self.block_choice, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addLayout(top)
        layout.addWidget(self.prediction)
        layout.addWidget(self.caption)
        layout.addWidget(self.picture, 1)
        self._show_controls(False)

    @property
    def explanation(self) -> ImageExplanation | None:
        return self._explanation

    def set_status(self, text: str) -> None:
        """Why nothing is shown, or where the maps come from."""
        self.status.setText(text)

    def set_explanation(self, explanation: ImageExplanation | None) -> None:
        """Show this image's maps (None: clear), keeping the chosen block."""
        self._explanation = explanation
        keep = self.block_choice.currentIndex()
        self.block_choice.blockSignals(True)
        self.block_choice.clear()
        if explanation is not None:
            depths = block_depths(len(explanation.feature_maps))
            for number, (name, maps, depth) in enumerate(
                zip(explanation.feature_layers, explanation.feature_maps, depths, strict=True), 1
            ):
                height, width, channels = maps.shape
                self.block_choice.addItem(
                    f"{number} · {depth} ({channels} maps of {height} × {width})", number - 1
                )
                self.block_choice.setItemData(
                    number - 1, f"layer {name}", Qt.ItemDataRole.ToolTipRole
                )
            self.block_choice.setCurrentIndex(max(0, min(keep, self.block_choice.count() - 1)))
        self.block_choice.blockSignals(False)
        self._show_controls(explanation is not None and bool(explanation.feature_maps))
        self.prediction.setText(_prediction_text(explanation) if explanation else "")
        self._draw()

    def shown_grid(self) -> np.ndarray | None:
        """The grid of the chosen block as drawn (RGB; the gaps between maps in the
        window's background colour), for checks."""
        index = self.block_choice.currentData()
        if self._explanation is None or index is None:
            return None
        tiled = feature_grid(self._explanation.feature_maps[index])
        rgb = self._lut[tiled.pixels]
        background = self.palette().color(QPalette.ColorRole.Window)
        rgb[tiled.gaps] = (background.red(), background.green(), background.blue())
        return rgb

    def _show_controls(self, visible: bool) -> None:
        for widget in (self.block_choice, self.caption, self.picture, self.prediction):
            widget.setVisible(visible)

    def _draw(self) -> None:
        grid = self.shown_grid()
        if grid is None:
            self._pixmap = None
            self.picture.clear()
            return
        maps = self._explanation.feature_maps[self.block_choice.currentData()]
        shown = min(maps.shape[2], MAX_GRID_MAPS)
        more = f" (the first {shown} of {maps.shape[2]})" if shown < maps.shape[2] else ""
        self.caption.setText(
            f"{shown} feature maps{more}, each one kind of pattern the model looks for; "
            "bright = strong response at that place."
        )
        self._pixmap = pixmap_from_array(np.ascontiguousarray(grid))
        self._fit()

    def _fit(self) -> None:
        if self._pixmap is None:
            return
        size = self.picture.size() * self.devicePixelRatioF()
        scaled = self._pixmap.scaled(
            size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation
        )  # sharp cells: each value of a map is one block of pixels
        scaled.setDevicePixelRatio(self.devicePixelRatioF())
        self.picture.setPixmap(scaled)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """The picture was resized (after this panel's own resize, once the layout
        placed it): fit the grid to its new size, never wider than it."""
        if watched is self.picture and event.type() == QEvent.Type.Resize:
            self._fit()
        return super().eventFilter(watched, event)


def _prediction_text(explanation: ImageExplanation) -> str:
    """The class the model decides for the image, then its top probabilities."""
    ranked = np.argsort(-explanation.probabilities, kind="stable")[:3]
    parts = [f"{explanation.classes[i]} {explanation.probabilities[i]:.0%}" for i in ranked]
    return f"Model decides {explanation.classes[explanation.predicted]}: " + ", ".join(parts)
