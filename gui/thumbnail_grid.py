"""The thumbnail grid: a virtualised list view of tiles, and the delegate that paints them.

A tile shows the thumbnail (a placeholder while it loads), a bar in the
colour of the image's label, the label's name (with "✓ 97%" where the model
agrees), the file name, always, and the model's other opinion where it has
one (`tile_texts`).
Where model and label disagree the tile gets
a vermillion frame and a corner mark with "≠" (shape and colour, so it reads
without colour vision too).

The view is a QListView in IconMode with one uniform tile size and a fixed
grid: Qt measures one item, only the tiles on screen ask for data or
thumbnails, and a changed tile (a thumbnail arrived, a label changed) is
repainted alone. (ListMode with wrapping draws the same picture but lays
out all rows again on every dataChanged: 160-300 ms per arriving thumbnail
at 100,000 images; IconMode takes 0.2 ms.)
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QItemSelection
from PySide6.QtCore import QItemSelectionModel
from PySide6.QtCore import QModelIndex
from PySide6.QtCore import QPersistentModelIndex
from PySide6.QtCore import QPoint
from PySide6.QtCore import QRect
from PySide6.QtCore import QSize
from PySide6.QtCore import Qt
from PySide6.QtCore import Signal
from PySide6.QtGui import QBrush
from PySide6.QtGui import QColor
from PySide6.QtGui import QFont
from PySide6.QtGui import QFontMetrics
from PySide6.QtGui import QPainter
from PySide6.QtGui import QPaintEvent
from PySide6.QtGui import QPalette
from PySide6.QtGui import QPen
from PySide6.QtGui import QPolygon
from PySide6.QtGui import QResizeEvent
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QAbstractItemView
from PySide6.QtWidgets import QListView
from PySide6.QtWidgets import QStyle
from PySide6.QtWidgets import QStyledItemDelegate
from PySide6.QtWidgets import QStyleOptionViewItem
from PySide6.QtWidgets import QWidget

from linnaeus.gui.image_model import ImageListModel
from linnaeus.gui.image_model import ImageRole
from linnaeus.gui.image_model import Tile

DISAGREE_COLOUR = QColor("#D55E00")  # Okabe-Ito vermillion
DEFAULT_TILE = 136
MIN_TILE, MAX_TILE = 72, 256
_PAD = 4
_BAR = 5
_TEXT_LINES = 3  # label (and "✓ 97%"), file name, the model's other opinion


class TileDelegate(QStyledItemDelegate):
    """Paints one `Tile`; see the module docstring."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image_size = DEFAULT_TILE

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        line = QFontMetrics(option.font).height()
        height = self.image_size + _BAR + _TEXT_LINES * line + 3 * _PAD
        return QSize(self.image_size + 2 * _PAD, height)

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        tile: Tile | None = index.data(ImageRole.TILE)
        if tile is None:
            return
        palette = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        width = self.image_size + 2 * _PAD
        left = option.rect.left() + max(0, (option.rect.width() - width) // 2)
        cell = QRect(left, option.rect.top(), width, option.rect.height()).adjusted(1, 1, -1, -1)
        if selected:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(palette.color(QPalette.ColorRole.Highlight))
            painter.drawRoundedRect(cell, 4, 4)
        size = self.image_size
        well = QRect(cell.left() + _PAD - 1, cell.top() + _PAD - 1, size, size)
        self._paint_picture(painter, well, tile, palette)
        bar = QRect(well.left(), well.bottom() + 1, size, _BAR)
        if tile.colour is not None:
            painter.fillRect(bar, tile.colour)
        else:
            painter.fillRect(
                bar, QBrush(palette.color(QPalette.ColorRole.Mid), Qt.BrushStyle.BDiagPattern)
            )
        if tile.disagrees:
            self._paint_disagreement(painter, well.adjusted(0, 0, 0, _BAR))
        self._paint_text(
            painter,
            option,
            QRect(well.left(), bar.bottom() + _PAD, size, cell.bottom() - bar.bottom() - _PAD),
            tile,
            selected,
        )
        if option.state & QStyle.StateFlag.State_HasFocus:
            painter.setPen(
                QPen(
                    palette.color(QPalette.ColorRole.Highlight).lighter(130), 1, Qt.PenStyle.DotLine
                )
            )
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(cell.adjusted(0, 0, -1, -1), 4, 4)
        painter.restore()

    def _paint_picture(self, painter: QPainter, well: QRect, tile: Tile, palette: QPalette) -> None:
        painter.fillRect(well, QColor(24, 24, 24))
        image = tile.thumbnail
        if image is not None and not image.isNull():
            scale = min(well.width() / image.width(), well.height() / image.height())
            target = QSize(round(image.width() * scale), round(image.height() * scale))
            at = well.center() - QPoint(target.width() // 2, target.height() // 2) + QPoint(1, 1)
            painter.drawImage(QRect(at, target), image)
            return
        painter.setPen(QColor(150, 150, 150))
        font = QFont(painter.font())
        font.setPointSizeF(font.pointSizeF() * 0.9)
        painter.setFont(font)
        if tile.problem:
            painter.setPen(QPen(QColor(120, 120, 120), 2))
            centre, arm = well.center(), well.width() // 8
            painter.drawLine(centre - QPoint(arm, arm), centre + QPoint(arm, arm))
            painter.drawLine(centre - QPoint(arm, -arm), centre + QPoint(arm, -arm))
            text = tile.problem.split(":", 1)[0]
            painter.setPen(QColor(170, 170, 170))
            painter.drawText(
                well.adjusted(4, 0, -4, -6),
                Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom,
                text,
            )
        else:
            painter.drawText(well, Qt.AlignmentFlag.AlignCenter, "…")

    def _paint_disagreement(self, painter: QPainter, frame: QRect) -> None:
        painter.setPen(QPen(DISAGREE_COLOUR, 3))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(frame.adjusted(1, 1, -1, -1))
        side = max(24, frame.width() // 4)
        corner = frame.topRight() + QPoint(1, 0)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(DISAGREE_COLOUR)
        painter.drawPolygon(QPolygon([corner, corner - QPoint(side, 0), corner + QPoint(0, side)]))
        font = QFont(painter.font())
        font.setBold(True)
        font.setPixelSize(max(10, side // 2 - 1))
        painter.setFont(font)
        painter.setPen(QColor("white"))
        mark = QRect(0, 0, side // 2, side // 2)
        mark.moveCenter(corner + QPoint(-side // 3 + 1, side // 3 - 1))
        painter.drawText(mark, Qt.AlignmentFlag.AlignCenter, "≠")

    def _paint_text(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        area: QRect,
        tile: Tile,
        selected: bool,
    ) -> None:
        """Line 1: the label, and "✓ 97%" on its right where the model agrees; line 2:
        the file name, always; line 3: the model's other opinion ("≠ no 54%", or
        "no? 61%" for an unlabelled image), each line the tile's whole width."""
        texts = tile_texts(tile)
        palette = option.palette
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        normal = palette.color(role)
        dim = QColor(normal)
        dim.setAlphaF(0.65)
        plain, bold, italic = QFont(option.font), QFont(option.font), QFont(option.font)
        bold.setBold(True)
        italic.setItalic(True)
        line = QFontMetrics(plain).height()
        first = QRect(area.left(), area.top(), area.width(), line)
        left, right = Qt.AlignmentFlag.AlignLeft, Qt.AlignmentFlag.AlignRight
        centre = Qt.AlignmentFlag.AlignVCenter
        room = area.width()
        if texts.opinion_kind == "agrees":
            agreement = "".join(texts.opinion or ())
            painter.setFont(plain)
            painter.setPen(dim)
            painter.drawText(first, right | centre, agreement)
            room -= QFontMetrics(plain).horizontalAdvance(agreement) + 6
        label_font = bold if tile.label else italic
        _draw_elided(painter, first, label_font, normal if tile.label else dim, texts.label, room)
        name = first.translated(0, line)
        _draw_elided(
            painter, name, plain, dim, texts.name, area.width(), Qt.TextElideMode.ElideMiddle
        )
        if texts.opinion is None or texts.opinion_kind == "agrees":
            return
        font, colour = {
            "disagrees": (bold, normal if selected else DISAGREE_COLOUR),
            "suggests": (italic, dim),
        }[texts.opinion_kind]
        before, predicted, after = texts.opinion
        metrics = QFontMetrics(font)
        room = area.width() - metrics.horizontalAdvance(before + after)
        short = metrics.elidedText(predicted, Qt.TextElideMode.ElideRight, max(0, room))
        painter.setFont(font)
        painter.setPen(colour)
        painter.drawText(name.translated(0, line), left | centre, before + short + after)


def _draw_elided(
    painter: QPainter,
    rect: QRect,
    font: QFont,
    colour: QColor,
    text: str,
    room: int,
    mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight,
) -> None:
    """``text`` on the left of ``rect``, shortened with "…" to fit ``room`` pixels."""
    painter.setFont(font)
    painter.setPen(colour)
    shown = QFontMetrics(font).elidedText(text, mode, room)
    painter.drawText(rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, shown)


@dataclass(frozen=True)
class TileTexts:
    """The words on a tile: its label, the model's opinion as (before, class, after),
    so that only the class name is shortened, and the file name."""

    label: str
    opinion: tuple[str, str, str] | None
    opinion_kind: str  # "agrees", "disagrees", "suggests" or "" (no opinion)
    name: str


def tile_texts(tile: Tile) -> TileTexts:
    """What a tile says: "✓ 97%" where the model agrees with the label, "≠ no 54%"
    where it disagrees, "no? 54%" as a suggestion for an unlabelled image; the file
    name is always there."""
    label = tile.label or "unlabelled"
    if tile.predicted is None or tile.confidence is None:
        return TileTexts(label, None, "", tile.name)
    percent = f"{tile.confidence:.0%}"
    if tile.label is not None and not tile.disagrees:
        return TileTexts(label, ("✓ ", "", percent), "agrees", tile.name)
    if tile.disagrees:
        return TileTexts(label, ("≠ ", tile.predicted, f" {percent}"), "disagrees", tile.name)
    return TileTexts(label, ("", tile.predicted, f"? {percent}"), "suggests", tile.name)


class ThumbnailGrid(QListView):
    """The grid of image tiles; multi-select with Shift, Ctrl and a rubber band."""

    current_image_changed = Signal(object)  # image id or None
    selection_count_changed = Signal(int)
    tile_size_changed = Signal(int)  # image side in logical pixels

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._delegate = TileDelegate(self)
        self.setItemDelegate(self._delegate)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setDragEnabled(False)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setSelectionRectVisible(True)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.setSpacing(0)
        self._update_grid_size()
        self.setMouseTracking(True)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self._empty_text = ""
        self._kept_image: int | None = None

    # -- model --------------------------------------------------------------

    def setModel(self, model: ImageListModel | None) -> None:  # type: ignore[override]
        old = self.model()
        if old is not None:
            old.modelAboutToBeReset.disconnect(self._on_model_about_to_be_reset)
            old.modelReset.disconnect(self._on_model_reset)
        super().setModel(model)
        if model is None:
            return
        model.modelAboutToBeReset.connect(self._on_model_about_to_be_reset)
        model.modelReset.connect(self._on_model_reset)
        self.selectionModel().currentChanged.connect(self._on_current_changed)
        self.selectionModel().selectionChanged.connect(self._on_selection_changed)

    def image_model(self) -> ImageListModel | None:
        model = self.model()
        return model if isinstance(model, ImageListModel) else None

    def _on_model_about_to_be_reset(self) -> None:
        # The current image stays current through a reset (a new filter, sort or
        # reload), unless it was the first tile: then the first tile stays current.
        at_top = self.currentIndex().row() <= 0
        self._kept_image = None if at_top else self.current_image_id()

    def _on_model_reset(self) -> None:
        model = self.image_model()
        row = model.row_of(self._kept_image) if model and self._kept_image is not None else -1
        if row < 0 and model is not None and model.rowCount() > 0:
            row = 0
        if row >= 0:
            self.select_row(row)
        else:
            self.current_image_changed.emit(None)
        self.selection_count_changed.emit(self.selection_count())

    # -- selection ----------------------------------------------------------

    def current_image_id(self) -> int | None:
        index = self.currentIndex()
        return index.data(ImageRole.ID) if index.isValid() else None

    def selected_image_ids(self) -> list[int]:
        """Selected images in grid order (the current image if nothing is selected)."""
        model = self.image_model()
        if model is None:
            return []
        rows = sorted(
            row
            for block in self.selectionModel().selection()
            for row in range(block.top(), block.bottom() + 1)
        )
        if not rows and self.currentIndex().isValid():
            rows = [self.currentIndex().row()]
        return model.image_ids(rows)

    def selection_count(self) -> int:
        selection = self.selectionModel()
        return sum(block.height() for block in selection.selection()) if selection else 0

    def select_row(self, row: int) -> None:
        """Make ``row`` the current and only selected tile, and scroll to it."""
        model = self.model()
        if model is None or not 0 <= row < model.rowCount():
            return
        index = model.index(row, 0)
        self.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect
        )
        self.scrollTo(index)

    def select_image(self, image_id: int) -> bool:
        model = self.image_model()
        row = model.row_of(image_id) if model else -1
        self.select_row(row)
        return row >= 0

    def advance(self) -> None:
        """Move to the next tile (after labelling one)."""
        self.select_row(self.currentIndex().row() + 1)

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.current_image_changed.emit(current.data(ImageRole.ID) if current.isValid() else None)

    def _on_selection_changed(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        self.selection_count_changed.emit(self.selection_count())

    # -- tile size ----------------------------------------------------------

    @property
    def tile_size(self) -> int:
        return self._delegate.image_size

    def set_tile_size(self, pixels: int) -> None:
        pixels = max(MIN_TILE, min(MAX_TILE, pixels))
        if pixels == self._delegate.image_size:
            return
        current = self.currentIndex()
        self._delegate.image_size = pixels
        self._update_grid_size()
        if current.isValid():
            self.scrollTo(current)
        self.tile_size_changed.emit(pixels)

    def _update_grid_size(self) -> None:
        """Cells as wide as the columns that fit, so the spare width is shared out."""
        line = QFontMetrics(self.font()).height()
        size = self._delegate.image_size
        tile = QSize(size + 2 * _PAD + 4, size + _BAR + _TEXT_LINES * line + 3 * _PAD + 4)
        width = self.viewport().width() - 1  # the scroll bar is always there: no feedback
        columns = max(1, width // tile.width())
        cell = QSize(max(tile.width(), width // columns), tile.height())
        if cell != self.gridSize():
            self.setGridSize(cell)
        self.verticalScrollBar().setSingleStep(size // 3)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._update_grid_size()

    def wheelEvent(self, event: QWheelEvent) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            step = 16 if event.angleDelta().y() > 0 else -16
            self.set_tile_size(self.tile_size + step)
            event.accept()
            return
        super().wheelEvent(event)

    # -- empty state --------------------------------------------------------

    def set_empty_text(self, text: str) -> None:
        """What the grid says when it shows no image (loading, nothing matches...)."""
        self._empty_text = text
        self.viewport().update()

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        model = self.model()
        if self._empty_text and (model is None or model.rowCount() == 0):
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(
                self.viewport().rect().adjusted(24, 24, -24, -24),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self._empty_text,
            )
            painter.end()
