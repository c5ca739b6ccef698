"""The large image viewer: zoom, pan, window/level, heatmap overlay and image details.

Mouse: the wheel zooms, dragging with the left button pans, dragging with
the right button sets window (left/right) and level (up/down) as on a
radiology workstation. Keys (while the grid or the viewer has the focus):
+ and - zoom, 0 fits the image, H shows or hides heatmaps. The sliders
under the image set window and level too; "Auto" goes back to the 0.5-99.5
percentile stretch. 16-bit images keep all their bits for this; DICOM
images arrive already windowed by the file's own centre and width.

The picture is decoded on a worker thread; a newer request wins over an
older one still loading. Heatmaps (class activation maps) are computed
elsewhere: while they are wanted, the viewer asks for one through
``explanation_wanted`` for each image it shows and draws what `set_overlay`
gives it, for the class chosen beside the Heatmap button.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtCore import Qt
from PySide6.QtCore import Signal
from PySide6.QtGui import QAction
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QComboBox
from PySide6.QtWidgets import QHBoxLayout
from PySide6.QtWidgets import QLabel
from PySide6.QtWidgets import QScrollArea
from PySide6.QtWidgets import QSlider
from PySide6.QtWidgets import QSplitter
from PySide6.QtWidgets import QToolButton
from PySide6.QtWidgets import QVBoxLayout
from PySide6.QtWidgets import QWidget

from linnaeus.engine.images.heatmaps import heatmap_alpha
from linnaeus.engine.images.heatmaps import heatmap_colours
from linnaeus.engine.images.heatmaps import resize_heatmap
from linnaeus.engine.images.imageio import DecodedImage
from linnaeus.engine.images.imageio import read_image
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.project.label_edits import HistoryEntry
from linnaeus.engine.project.store import ImageRecord
from linnaeus.gui.image_details import details_html
from linnaeus.gui.widgets.heatmap_legend import HeatmapLegend
from linnaeus.gui.window_level import Window
from linnaeus.gui.window_level import auto_window
from linnaeus.gui.window_level import display_pixels
from linnaeus.gui.workers import Worker

DEFAULT_OPACITY = 0.7
_ZOOM_STEP = 1.25
_OVERLAY_PIXELS = 1024  # the heatmap is drawn at most this many pixels wide or high


def read_for_viewer(
    path: Path, *, on_progress: ProgressCallback, cancel: CancelToken
) -> DecodedImage:
    """Decode one image (run by a `Worker`)."""
    return read_image(path)


class _ImageBox(pg.ViewBox):
    """A ViewBox whose right-button drag reports window/level moves instead of zooming."""

    window_dragged = Signal(float, float)  # dx, dy in screen pixels since the last event

    def mouseDragEvent(
        self, ev: pg.GraphicsScene.mouseEvents.MouseDragEvent, axis: int | None = None
    ) -> None:
        if ev.button() == Qt.MouseButton.RightButton:
            ev.accept()
            delta = ev.screenPos() - ev.lastScreenPos()
            self.window_dragged.emit(delta.x(), delta.y())
            return
        super().mouseDragEvent(ev, axis)


class ImageViewer(QWidget):
    """One image, large; see the module docstring."""

    image_shown = Signal(int)  # image id, once its pixels are on screen
    explanation_wanted = Signal(int)  # image id: heatmaps are on and this image needs one
    load_failed = Signal(int, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image_id: int | None = None
        self._worker: Worker | None = None
        self._pixels: np.ndarray | None = None
        self._range = 255.0  # the largest value the pixel type holds
        self._values = (0.0, 255.0)  # the image's own lowest and highest value
        self._window = Window(0, 255)
        self._overlay: np.ndarray | None = None

        self._box = _ImageBox(lockAspect=True, invertY=True, enableMenu=False)
        self._box.setBackgroundColor("#101010")
        self._view = pg.GraphicsView(background="#101010")
        self._view.setCentralItem(self._box)
        self._view.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._image_item = pg.ImageItem(axisOrder="row-major")
        self._overlay_item = pg.ImageItem(axisOrder="row-major")
        self._overlay_item.setLookupTable(_heatmap_lut())
        self._overlay_item.setZValue(1)
        self._overlay_item.setVisible(False)
        self._box.addItem(self._image_item)
        self._box.addItem(self._overlay_item)
        self._box.window_dragged.connect(self._on_box_window_dragged)
        self._message = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self._message.setStyleSheet("color: #bbb; background: #101010;")
        self._message.setWordWrap(True)
        self.legend = HeatmapLegend()
        self.legend.hide()

        self.window_slider = QSlider(Qt.Orientation.Horizontal)
        self.level_slider = QSlider(Qt.Orientation.Horizontal)
        for slider in (self.window_slider, self.level_slider):
            slider.valueChanged.connect(self._on_sliders_moved)
        self.window_slider.setToolTip("Window (contrast): drag right with the right mouse button")
        self.level_slider.setToolTip("Level (brightness): drag up with the right mouse button")
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100)
        self.opacity_slider.setValue(round(DEFAULT_OPACITY * 100))
        self.opacity_slider.setToolTip("Heatmap opacity")
        self.opacity_slider.valueChanged.connect(self._on_opacity_changed)
        self._window_text = QLabel()

        self.fit_action = _action(self, "Fit", "0", "Fit the image to the viewer (0)", self.fit)
        self.zoom_in_action = _action(self, "+", "+", "Zoom in (+ or the wheel)", self.zoom_in)
        self.zoom_in_action.setShortcuts([QKeySequence("+"), QKeySequence("=")])
        self.zoom_out_action = _action(self, "−", "-", "Zoom out (-)", self.zoom_out)
        self.auto_window_action = _action(
            self, "Auto", None, "Automatic window/level", self.reset_window
        )
        self.heatmap_action = _action(self, "Heatmap", "H", "No model yet", None)
        self.heatmap_action.setCheckable(True)
        self.heatmap_action.setEnabled(False)
        self.heatmap_action.toggled.connect(self._on_heatmap_toggled)
        self.class_choice = QComboBox()
        self.class_choice.setToolTip("The class the heatmap explains")
        self.class_choice.addItem("Predicted class", None)
        self.class_choice.currentIndexChanged.connect(self._ask_for_explanation)

        self.details = QLabel(textFormat=Qt.TextFormat.RichText, wordWrap=True)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setContentsMargins(6, 6, 6, 6)
        self.addActions(self.key_actions)
        self._lay_out()
        self.opacity_slider.hide()
        self.class_choice.hide()
        self._show_message("Select an image to see it here.")

    def _lay_out(self) -> None:
        tools = QHBoxLayout()
        tools.setContentsMargins(4, 2, 4, 2)
        for action in (self.fit_action, self.zoom_out_action, self.zoom_in_action):
            tools.addWidget(_button(action))
        tools.addSpacing(8)
        tools.addWidget(QLabel("Window"))
        tools.addWidget(self.window_slider, 1)
        tools.addWidget(QLabel("Level"))
        tools.addWidget(self.level_slider, 1)
        tools.addWidget(_button(self.auto_window_action))
        tools.addSpacing(8)
        tools.addWidget(_button(self.heatmap_action))
        tools.addWidget(self.class_choice)
        tools.addWidget(self.opacity_slider)
        self.opacity_slider.setMaximumWidth(80)
        picture = QWidget()
        picture_layout = QVBoxLayout(picture)
        picture_layout.setContentsMargins(0, 0, 0, 0)
        picture_layout.setSpacing(0)
        picture_layout.addWidget(self._view, 1)
        picture_layout.addWidget(self._message, 1)
        picture_layout.addWidget(self.legend)
        picture_layout.addLayout(tools)
        picture_layout.addWidget(self._window_text)
        self._window_text.setContentsMargins(6, 0, 6, 0)
        scroll = QScrollArea()
        scroll.setWidget(self.details)
        scroll.setWidgetResizable(True)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(picture)
        self.splitter.addWidget(scroll)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

    @property
    def key_actions(self) -> list[QAction]:
        """Actions with keys that should also work while the grid has the focus."""
        return [self.fit_action, self.zoom_in_action, self.zoom_out_action, self.heatmap_action]

    # -- the image ----------------------------------------------------------

    @property
    def image_id(self) -> int | None:
        return self._image_id

    @property
    def is_loading(self) -> bool:
        return self._worker is not None

    @property
    def pixels(self) -> np.ndarray | None:
        """The pixels on screen (None while nothing is shown)."""
        return self._pixels

    def show_image(self, image_id: int | None, path: Path | None) -> None:
        """Load and show the image (None: show nothing); the overlay is cleared."""
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        self._image_id = image_id
        self.set_overlay(None)
        if image_id is None or path is None:
            self._pixels = None
            self._image_item.clear()
            self._show_message("Select an image to see it here.")
            return
        worker = Worker(read_for_viewer, path)
        worker.finished.connect(lambda decoded, w=worker: self._on_worker_finished(w, decoded))
        worker.failed.connect(lambda message, w=worker: self._on_worker_failed(w, message))
        self._worker = worker.start(owner=self)

    def _on_worker_finished(self, worker: Worker, decoded: DecodedImage) -> None:
        if worker is not self._worker or self._image_id is None:
            return
        self._worker = None
        same_size = self._pixels is not None and self._pixels.shape[:2] == decoded.pixels.shape[:2]
        self._pixels = display_pixels(decoded.pixels)
        self._range = float(np.iinfo(self._pixels.dtype).max)
        self._values = (float(self._pixels.min()), float(self._pixels.max()))
        self._message.hide()
        self._view.show()
        window = auto_window(self._pixels)
        self._image_item.setImage(self._pixels, autoLevels=False, levels=(window.low, window.high))
        self._set_window(window)
        self._place_overlay()
        if not same_size:
            self.fit()
        self.image_shown.emit(self._image_id)
        self._ask_for_explanation()

    def _on_worker_failed(self, worker: Worker, message: str) -> None:
        if worker is self._worker and self._image_id is not None:
            self._worker = None
            self._pixels = None
            self._show_message(f"This image cannot be shown: {message}")
            self.load_failed.emit(self._image_id, message)

    def _show_message(self, text: str) -> None:
        self._message.setText(text)
        self._message.show()
        self._view.hide()

    def displayed_image(self) -> np.ndarray:
        """The pixels as drawn (RGBA, after window/level), for checks and tests."""
        self._image_item.render()
        qimage = self._image_item.qimage
        if qimage is None:
            return np.zeros((0, 0, 4), np.uint8)
        return pg.functions.ndarray_from_qimage(qimage).copy()

    # -- zoom ---------------------------------------------------------------

    def fit(self) -> None:
        if self._pixels is not None:
            height, width = self._pixels.shape[:2]
            self._box.setRange(QRectF(0, 0, width, height), padding=0.02)

    def zoom_in(self) -> None:
        self._box.scaleBy((1 / _ZOOM_STEP, 1 / _ZOOM_STEP))

    def zoom_out(self) -> None:
        self._box.scaleBy((_ZOOM_STEP, _ZOOM_STEP))

    # -- window / level -----------------------------------------------------

    @property
    def window(self) -> Window:
        return self._window

    def set_window(self, low: float, high: float) -> None:
        """Show values ``low``..``high`` from black to white."""
        self._set_window(Window(low, max(high, low + 1e-6)))

    def reset_window(self) -> None:
        if self._pixels is not None:
            self._set_window(auto_window(self._pixels))

    def _set_window(self, window: Window) -> None:
        self._window = window
        self._image_item.setLevels((window.low, window.high))
        top = int(self._range)
        # The sliders span the image's own values, so a 16-bit image using a tenth
        # of 0-65535 still gets the whole slider for it.
        lowest, highest = self._values
        span = max(round(highest - lowest), 1)
        for slider, value, bounds in (
            (self.window_slider, window.width, (1, 2 * span)),
            (self.level_slider, window.centre, (round(lowest), round(lowest) + span)),
        ):
            slider.blockSignals(True)
            slider.setRange(*bounds)
            slider.setValue(round(value))
            slider.blockSignals(False)
        self._window_text.setText(
            f"<small>Window {window.width:,.0f} · level {window.centre:,.0f} "
            f"(values {window.low:,.0f}–{window.high:,.0f} of 0–{top:,})</small>"
        )

    def _on_sliders_moved(self) -> None:
        self._set_window(Window.from_centre(self.level_slider.value(), self.window_slider.value()))

    def _on_box_window_dragged(self, dx: float, dy: float) -> None:
        if self._pixels is not None:
            lowest, highest = self._values
            self._set_window(self._window.dragged(dx, dy, max(highest - lowest, 1.0)))

    # -- heatmap ------------------------------------------------------------

    def set_heatmap_classes(self, classes: Sequence[str] | None, note: str = "") -> None:
        """The classes heatmaps can explain (None: no model, heatmaps are off and
        ``note`` says why in the tooltip)."""
        chosen = self.class_choice.currentText()  # kept while the model's classes have it
        self.class_choice.blockSignals(True)
        self.class_choice.clear()
        self.class_choice.addItem("Predicted class", None)
        for index, name in enumerate(classes or ()):
            self.class_choice.addItem(name, index)
        self.class_choice.setCurrentIndex(max(self.class_choice.findText(chosen), 0))
        self.class_choice.blockSignals(False)
        available = classes is not None
        self.heatmap_action.setEnabled(available)
        about = "Show where the model looked (H)"
        self.heatmap_action.setToolTip(
            (f"{about}\n{note}" if note else about) if available else note or "No model yet"
        )
        if not available:
            self.heatmap_action.setChecked(False)  # hides the overlay and its controls

    @property
    def heatmap_wanted(self) -> bool:
        """Whether the user asked to see heatmaps (H)."""
        return self.heatmap_action.isChecked()

    def explain_class(self, name: str | None) -> None:
        """Let the heatmap explain the class called ``name`` (None: the predicted class)."""
        found = self.class_choice.findText(name) if name is not None else 0
        self.class_choice.setCurrentIndex(max(found, 0))

    @property
    def explained_class(self) -> int | None:
        """The class index the heatmap should explain; None for the predicted class."""
        return self.class_choice.currentData()

    def set_overlay(
        self,
        heatmap: np.ndarray | None,
        opacity: float | None = None,
        *,
        class_name: str | None = None,
    ) -> None:
        """Lay ``heatmap`` (2-D in [0, 1], any size, higher = more evidence for
        ``class_name``) over the image, smoothly stretched to it; None removes it. It
        shows while heatmaps are wanted (H), with its legend (or the sentence saying
        the class has no evidence here). Showing another image removes it, so call
        this after `show_image`."""
        self._overlay = None if heatmap is None else np.asarray(heatmap, dtype=np.float32)
        if opacity is not None:
            self.opacity_slider.setValue(round(opacity * 100))
        if self._overlay is None:
            self._overlay_item.clear()
        self._overlay_item.setVisible(self._overlay is not None and self.heatmap_wanted)
        self.legend.show_class(self._overlay, class_name or "the predicted class")
        self.legend.setVisible(self._overlay is not None and self.heatmap_wanted)
        self._place_overlay()

    def _place_overlay(self) -> None:
        """Scale the heatmap to the shown image, at most `_OVERLAY_PIXELS` a side
        (the picture stretches it the rest of the way)."""
        if self._overlay is None or self._pixels is None:
            return
        height, width = self._pixels.shape[:2]
        scale = min(1.0, _OVERLAY_PIXELS / max(height, width))
        shown = resize_heatmap(
            self._overlay, max(1, round(height * scale)), max(1, round(width * scale))
        )
        self._overlay_item.setImage(shown, autoLevels=False, levels=(0.0, 1.0))
        self._overlay_item.setRect(QRectF(0, 0, width, height))

    @property
    def heatmap_visible(self) -> bool:
        return self._overlay_item.isVisible()

    def _on_heatmap_toggled(self, wanted: bool) -> None:
        self.opacity_slider.setVisible(wanted)
        self.class_choice.setVisible(wanted)
        self._overlay_item.setVisible(wanted and self._overlay is not None)
        self.legend.setVisible(wanted and self._overlay is not None)
        if wanted:
            self._ask_for_explanation()

    def _ask_for_explanation(self) -> None:
        if self.heatmap_wanted and self._image_id is not None and self._pixels is not None:
            self.explanation_wanted.emit(self._image_id)

    def _on_opacity_changed(self, value: int) -> None:
        self._overlay_item.setOpacity(value / 100)

    # -- details ------------------------------------------------------------

    def set_details(
        self,
        record: ImageRecord | None,
        history: Sequence[HistoryEntry] = (),
        probabilities: dict[str, float] | None = None,
        version_name: str | None = None,
        decided: str | None = None,
    ) -> None:
        """Show what is known about the image beside the picture (``decided``: the class
        the model decides for it)."""
        self.details.setText(
            details_html(record, history, probabilities or {}, version_name, decided)
        )


def _heatmap_lut() -> np.ndarray:
    """RGBA lookup table: the heatmap colours, transparent where the heatmap is low
    (as the model card's `overlay` draws it)."""
    lut = np.empty((256, 4), np.uint8)
    lut[:, :3] = heatmap_colours()
    lut[:, 3] = heatmap_alpha()
    return lut


def _action(parent: QWidget, text: str, key: str | None, tip: str, slot: object | None) -> QAction:
    action = QAction(text, parent)
    if key:
        action.setShortcut(QKeySequence(key))
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
    action.setToolTip(tip)
    if slot is not None:
        action.triggered.connect(slot)
    return action


def _button(action: QAction) -> QToolButton:
    button = QToolButton()
    button.setDefaultAction(action)
    button.setAutoRaise(True)
    return button
