"""The heatmap's colour legend under the image: "low [colour scale] high contribution
to “yes”", or, when the class has no positive evidence in the image, the sentence
that says so instead of a blank overlay."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout
from PySide6.QtWidgets import QLabel
from PySide6.QtWidgets import QWidget

from linnaeus.engine.images.heatmaps import LEGEND_TEXT
from linnaeus.engine.images.heatmaps import evidence_note
from linnaeus.engine.images.heatmaps import legend_strip
from linnaeus.gui.widgets.pixmaps import pixmap_from_array

_STRIP = (120, 10)  # width, height in pixels


class HeatmapLegend(QWidget):
    """Colour scale and the class it explains; see the module docstring."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.low = QLabel(LEGEND_TEXT[0], self)
        self.strip = QLabel(self)
        self.strip.setPixmap(pixmap_from_array(np.ascontiguousarray(legend_strip(*_STRIP))))
        self.strip.setToolTip("The heatmap's colours: how much each place adds to the class")
        self.high = QLabel(self)
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        self.note.setTextFormat(Qt.TextFormat.PlainText)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 2)
        for widget in (self.low, self.strip, self.high):
            layout.addWidget(widget)
        layout.addWidget(self.note, 1)
        layout.addStretch(0)
        self.show_class(None, None)

    def show_class(self, heatmap: np.ndarray | None, class_name: str | None) -> None:
        """Explain ``heatmap`` of ``class_name``: the scale, or the no-evidence
        sentence; nothing while there is no heatmap."""
        note = (
            evidence_note(heatmap, class_name)
            if heatmap is not None and class_name is not None
            else None
        )
        scale = heatmap is not None and note is None
        for widget in (self.low, self.strip, self.high):
            widget.setVisible(scale)
        _low, high, title = LEGEND_TEXT
        self.high.setText(f"{high} {title} “{class_name}”" if scale else "")
        self.note.setText(note or "")
        self.note.setVisible(note is not None)

    @property
    def text(self) -> str:
        """What the legend says, for checks."""
        if self.note.isVisibleTo(self):
            return self.note.text()
        if self.strip.isVisibleTo(self):
            return f"{self.low.text()} … {self.high.text()}"
        return ""
