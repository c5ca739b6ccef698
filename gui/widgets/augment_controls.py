"""The augmentation panel's building blocks: a slider with its number, a grid of samples."""

from __future__ import annotations

from PySide6.QtCore import QRect
from PySide6.QtCore import Qt
from PySide6.QtCore import Signal
from PySide6.QtGui import QImage
from PySide6.QtGui import QPainter
from PySide6.QtGui import QPaintEvent
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QDoubleSpinBox
from PySide6.QtWidgets import QHBoxLayout
from PySide6.QtWidgets import QSizePolicy
from PySide6.QtWidgets import QSlider
from PySide6.QtWidgets import QWidget


class SliderSpin(QWidget):
    """A slider and a spin box showing one number; ``value`` is in the field's units."""

    value_changed = Signal()

    def __init__(
        self,
        maximum: float,
        decimals: int,
        scale: float,
        suffix: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._steps = 10**decimals
        self._scale = scale
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(0, round(maximum * self._steps))
        self.spin = QDoubleSpinBox(self)
        self.spin.setRange(0.0, maximum)
        self.spin.setDecimals(decimals)
        self.spin.setSuffix(suffix)
        # One width for every such box, so that the sliders line up.
        self.spin.setFixedWidth(self.fontMetrics().horizontalAdvance("000.0 %") + 36)
        self.slider.valueChanged.connect(self._on_slider_value_changed)
        self.spin.valueChanged.connect(self._on_spin_value_changed)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.spin)

    def value(self) -> float:
        return self.spin.value() / self._scale

    def set_value(self, value: float) -> None:
        self.spin.setValue(value * self._scale)

    def _on_slider_value_changed(self, position: int) -> None:
        if round(self.spin.value() * self._steps) != position:
            self.spin.setValue(position / self._steps)

    def _on_spin_value_changed(self, shown: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(round(shown * self._steps))
        self.slider.blockSignals(False)
        self.value_changed.emit()


class SampleGrid(QWidget):
    """Images in a square grid, each scaled to fit its cell; a hint while there are none."""

    def __init__(self, columns: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.columns = columns
        self._images: list[QImage] = []
        self.hint = "Select an image to see how augmentation varies it."
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(240, 240)

    def set_images(self, images: list[QImage]) -> None:
        self._images = images
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().color(QPalette.ColorRole.Base))
        if not self._images:
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(
                self.rect().adjusted(12, 12, -12, -12),
                int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap),
                self.hint,
            )
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        gap, columns = 6, self.columns
        side = (min(self.width(), self.height()) - gap * (columns + 1)) // columns
        left = (self.width() - (side * columns + gap * (columns - 1))) // 2
        top = (self.height() - (side * columns + gap * (columns - 1))) // 2
        for n, image in enumerate(self._images[: columns * columns]):
            row, column = divmod(n, columns)
            cell = QRect(left + column * (side + gap), top + row * (side + gap), side, side)
            scaled = image.size().scaled(cell.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, scaled.width(), scaled.height())
            target.moveCenter(cell.center())
            painter.drawImage(target, image)
