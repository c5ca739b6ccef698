"""The grid's Qt model: one row per shown image of the open project.

`ImageListModel` adapts an `ImageTable` (every image of the project as
arrays, read on a worker thread) to Qt's model/view: ``data`` answers from
the arrays, thumbnails come from the `ThumbnailLoader` and only rows a view
paints ask for one. Filters and sorts replace the list of shown positions
(`image_table.select_images`); a label change takes the classes the store says
it gave the images (`LabelChanges`) and repaints just those rows. Rows are
not re-filtered when a label changes, so an image you just labelled stays
where it was until the filter changes.
"""

from __future__ import annotations

import enum
import logging
from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractListModel
from PySide6.QtCore import QModelIndex
from PySide6.QtCore import QObject
from PySide6.QtCore import QPersistentModelIndex
from PySide6.QtCore import Qt
from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtGui import QImage

from linnaeus.engine.project.label_edits import LabelChanges
from linnaeus.engine.project.store import IMAGE_STATUSES
from linnaeus.engine.project.store import SPLITS
from linnaeus.engine.project.store import ClassInfo
from linnaeus.engine.project.store import ProjectStore
from linnaeus.gui.image_table import NO_CLASS
from linnaeus.gui.image_table import ImageFilter
from linnaeus.gui.image_table import ImageTable
from linnaeus.gui.image_table import Predictions
from linnaeus.gui.image_table import read_image_table
from linnaeus.gui.image_table import read_predictions
from linnaeus.gui.image_table import select_images
from linnaeus.gui.thumbnail_loader import ThumbnailLoader
from linnaeus.gui.workers import Worker

log = logging.getLogger(__name__)

_MAX_WAITING = 2000
FIRST_SCREEN = 400  # images read first, so the first tiles show while the rest loads

ModelIndex = QModelIndex | QPersistentModelIndex


class ImageRole(enum.IntEnum):
    """Data roles of `ImageListModel` beyond Qt's display/tooltip/decoration."""

    ID = Qt.ItemDataRole.UserRole + 1
    PATH = enum.auto()  # relative to the image folder
    LABEL = enum.auto()  # class name or None
    LABEL_COLOUR = enum.auto()  # QColor or None
    SPLIT = enum.auto()  # "train", "val", "test" or None
    STATUS = enum.auto()  # "ok", "unreadable", "missing"
    PREDICTED = enum.auto()  # class name or None
    CONFIDENCE = enum.auto()  # float or None
    DISAGREES = enum.auto()  # label and prediction differ
    TILE = enum.auto()  # a `Tile`: everything the grid paints, in one call


@dataclass(frozen=True)
class Tile:
    """What one grid tile shows."""

    name: str
    label: str | None
    colour: QColor | None
    predicted: str | None
    confidence: float | None
    disagrees: bool
    thumbnail: QImage | None
    problem: str | None  # why there is no picture (unreadable, missing, failed)


def _empty_table() -> ImageTable:
    empty = np.zeros(0, np.int64)
    return ImageTable(empty, [], [], empty.copy(), np.zeros(0, np.int8), np.zeros(0, np.int8), [])


class ImageListModel(QAbstractListModel):
    """The shown images of a project, in the order of the current filter."""

    loaded = Signal()  # a freshly read table is shown (predictions may follow)
    predictions_loaded = Signal()  # the active model's predictions are shown too
    load_failed = Signal(str)
    contents_changed = Signal()  # rows, labels or classes changed: counts may differ

    def __init__(
        self, store: ProjectStore, loader: ThumbnailLoader, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._store = store
        self._loader = loader
        self._root = store.image_root
        self._table = _empty_table()
        self._filter = ImageFilter()
        self._shown = np.zeros(0, np.int64)
        self._row_of = np.zeros(0, np.int64)
        self._classes: dict[int, ClassInfo] = {}
        self._colours: dict[int, QColor] = {}
        self._waiting: OrderedDict[str, list[int]] = OrderedDict()
        self._worker: Worker | None = None
        self._edited_while_loading: dict[int, int] = {}  # image id -> class id
        loader.thumbnail_ready.connect(self._on_loader_thumbnail_ready)
        loader.thumbnail_failed.connect(self._on_loader_thumbnail_ready)
        self._read_classes()

    # -- Qt model interface -------------------------------------------------

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._shown)

    def flags(self, index: ModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (
            Qt.ItemFlag.ItemIsSelectable
            | Qt.ItemFlag.ItemIsEnabled
            | Qt.ItemFlag.ItemNeverHasChildren
        )

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._shown):
            return None
        position = int(self._shown[index.row()])
        if role == ImageRole.TILE:
            return self._tile(position)
        if role == Qt.ItemDataRole.DisplayRole:
            return self._table.paths[position].rsplit("/", 1)[-1]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(position)
        if role == Qt.ItemDataRole.DecorationRole:
            return self._thumbnail(position)
        if role == ImageRole.ID:
            return int(self._table.ids[position])
        if role == ImageRole.PATH:
            return self._table.paths[position]
        if role == ImageRole.LABEL:
            return self._class_name(int(self._table.label[position]))
        if role == ImageRole.LABEL_COLOUR:
            return self._colours.get(int(self._table.label[position]))
        if role == ImageRole.SPLIT:
            split = int(self._table.split[position])
            return SPLITS[split] if split >= 0 else None
        if role == ImageRole.STATUS:
            return IMAGE_STATUSES[int(self._table.status[position])]
        if role == ImageRole.PREDICTED:
            return self._predicted_name(position)
        if role == ImageRole.CONFIDENCE:
            confidence = float(self._table.confidence[position])
            return None if np.isnan(confidence) else confidence
        if role == ImageRole.DISAGREES:
            return self._disagrees(position)
        return None

    # -- loading ------------------------------------------------------------

    def reload(self) -> None:
        """Read every image, then the active model's predictions, on worker threads.

        On the first load, the first screenful of images (by path) is read and
        shown before the rest. The rows shown stay until the new table arrives
        (`loaded`); the predictions follow (`predictions_loaded`). `is_loading`
        until everything is in.
        """
        if self._worker is not None:
            self._worker.cancel()
        self._edited_while_loading.clear()
        if len(self._table) == 0 and self._filter == ImageFilter():
            first = Worker(read_image_table, self._store.project_dir, FIRST_SCREEN)
            self._start(first, self._on_first_screen_read)
        else:
            self._read_all()

    def _read_all(self) -> None:
        self._start(Worker(read_image_table, self._store.project_dir), self._on_table_read)

    def _on_first_screen_read(self, table: ImageTable) -> None:
        self._read_all()
        if len(table) < FIRST_SCREEN or self._filter != ImageFilter():
            return  # a small project (the whole table follows at once), or another order
        self.beginResetModel()
        self._table = table
        self._select()
        self.endResetModel()

    @property
    def is_loading(self) -> bool:
        return self._worker is not None

    def _start(self, worker: Worker, on_result: Callable[[Any], None]) -> None:
        def finished(result: object, worker: Worker = worker) -> None:
            if worker is self._worker:  # else an older load, replaced by a newer one
                on_result(result)

        def failed(message: str, worker: Worker = worker) -> None:
            if worker is self._worker:
                self._worker = None
                self.load_failed.emit(message)

        worker.finished.connect(finished)
        worker.failed.connect(failed)
        self._worker = worker.start(owner=self)

    def _on_table_read(self, table: ImageTable) -> None:
        self._read_classes()
        self.beginResetModel()
        self._table = table
        self._select()
        self.endResetModel()
        if self._edited_while_loading:  # the table may have been read before these edits
            self._set_labels(self._edited_while_loading)
        self._start(Worker(read_predictions, self._store.project_dir), self._on_predictions_read)
        self.loaded.emit()
        self.contents_changed.emit()

    def _on_predictions_read(self, predictions: Predictions | None) -> None:
        self._worker = None
        self._edited_while_loading.clear()
        if predictions is not None:
            self._table.attach_predictions(predictions)
            if self._filter.uses_predictions:
                self.beginResetModel()
                self._select()
                self.endResetModel()
            else:
                self._repaint_all()
        self.predictions_loaded.emit()
        self.contents_changed.emit()

    # -- filtering ----------------------------------------------------------

    @property
    def image_filter(self) -> ImageFilter:
        return self._filter

    def set_filter(self, image_filter: ImageFilter) -> None:
        """Show the images ``image_filter`` selects, in its order."""
        if image_filter == self._filter:
            return
        self.beginResetModel()
        self._filter = image_filter
        self._select()
        self._loader.forget_pending()  # the tiles asked for may be gone from the screen
        self.endResetModel()
        self.contents_changed.emit()

    def _select(self) -> None:
        self._shown = select_images(self._table, self._filter)
        self._row_of = np.full(len(self._table), -1, np.int64)
        self._row_of[self._shown] = np.arange(len(self._shown))
        self._waiting.clear()

    # -- what the rest of the GUI asks --------------------------------------

    @property
    def store(self) -> ProjectStore:
        return self._store

    @property
    def table(self) -> ImageTable:
        return self._table

    def classes(self) -> list[ClassInfo]:
        return list(self._classes.values())

    def image_id(self, row: int) -> int:
        return int(self._table.ids[self._shown[row]])

    def image_ids(self, rows: Iterable[int]) -> list[int]:
        return [int(i) for i in self._table.ids[self._shown[list(rows)]]]

    def row_of(self, image_id: int) -> int:
        """The row showing ``image_id``, or -1."""
        position = int(self._table.positions_of([image_id])[0])
        return int(self._row_of[position]) if position >= 0 else -1

    def image_path(self, image_id: int) -> Path:
        position = int(self._table.positions_of([image_id])[0])
        return self._root / self._table.paths[position]

    def suggestion(self, image_id: int) -> str | None:
        """The class the active model predicts for ``image_id``, if any."""
        position = int(self._table.positions_of([image_id])[0])
        return self._predicted_name(position) if position >= 0 else None

    def probabilities(self, image_id: int) -> dict[str, float]:
        """The active model's probability per class for ``image_id`` (empty if none)."""
        position = int(self._table.positions_of([image_id])[0])
        row = int(self._table.prediction[position]) if position >= 0 else -1
        if row < 0:
            return {}
        values = self._table.probabilities[row]
        return {name: float(p) for name, p in zip(self._table.version_classes, values, strict=True)}

    def class_counts(self) -> dict[int, int]:
        """Readable images per class id (`NO_CLASS` counts the unlabelled)."""
        return self._table.class_counts()

    @property
    def total_count(self) -> int:
        return len(self._table)

    # -- changes made elsewhere ---------------------------------------------

    def refresh_labels(self, changes: LabelChanges) -> None:
        """Show the labels a store edit gave these images, and repaint them."""
        labels = {
            i: NO_CLASS if c is None else c
            for i, c in zip(changes.image_ids, changes.class_ids, strict=True)
        }
        if self._worker is not None:
            self._edited_while_loading.update(labels)
        self._set_labels(labels)
        self.contents_changed.emit()

    def refresh_classes_and_labels(self, changes: LabelChanges) -> None:
        """Re-read the classes and show these label changes (a class was merged or
        deleted, or brought back)."""
        self._read_classes()
        self.refresh_labels(changes)
        self._repaint_all()

    def _set_labels(self, labels: dict[int, int]) -> None:
        self._repaint_positions(self._table.set_labels(labels))

    def refresh_classes(self) -> None:
        """Re-read class names and colours (after a rename or recolour)."""
        self._read_classes()
        self._repaint_all()
        self.contents_changed.emit()

    def _read_classes(self) -> None:
        self._classes = {c.id: c for c in self._store.classes()}
        self._colours = {c.id: QColor(c.colour) for c in self._classes.values()}

    def _repaint_positions(self, positions: np.ndarray) -> None:
        rows = self._row_of[positions] if len(positions) else positions
        rows = rows[rows >= 0]
        if len(rows):
            self.dataChanged.emit(self.index(int(rows.min())), self.index(int(rows.max())))

    def _repaint_all(self) -> None:
        if len(self._shown):
            self.dataChanged.emit(self.index(0), self.index(len(self._shown) - 1))

    # -- helpers for data() -------------------------------------------------

    def _class_name(self, class_id: int) -> str | None:
        info = self._classes.get(class_id)
        return info.name if info else None

    def _predicted_name(self, position: int) -> str | None:
        index = int(self._table.predicted[position])
        if index < 0:
            return None
        return (
            self._class_name(int(self._table.predicted_class[position]))
            or (self._table.version_classes[index])
        )

    def _disagrees(self, position: int) -> bool:
        table = self._table
        label = int(table.label[position])
        return (
            label != NO_CLASS
            and table.prediction[position] >= 0
            and label != int(table.predicted_class[position])
        )

    def _thumbnail(self, position: int) -> QImage | None:
        key = self._table.hashes[position]
        if key is None or self._table.status[position] != 0:
            return None
        image = self._loader.image(key, self._root / self._table.paths[position])
        if image is None and self._loader.error(key) is None:
            waiting = self._waiting.setdefault(key, [])
            if position not in waiting:
                waiting.append(position)
            self._waiting.move_to_end(key)
            while len(self._waiting) > _MAX_WAITING:
                self._waiting.popitem(last=False)
        return image

    def _problem(self, position: int) -> str | None:
        status = IMAGE_STATUSES[int(self._table.status[position])]
        if status != "ok":
            error = self._table.errors[position] or status
            return f"{'Missing' if status == 'missing' else 'Unreadable'}: {error}"
        key = self._table.hashes[position]
        error = self._loader.error(key) if key else None
        return f"No thumbnail: {error}" if error else None

    def _tile(self, position: int) -> Tile:
        confidence = float(self._table.confidence[position])
        label = int(self._table.label[position])
        return Tile(
            name=self._table.paths[position].rsplit("/", 1)[-1],
            label=self._class_name(label),
            colour=self._colours.get(label),
            predicted=self._predicted_name(position),
            confidence=None if np.isnan(confidence) else confidence,
            disagrees=self._disagrees(position),
            thumbnail=self._thumbnail(position),
            problem=self._problem(position),
        )

    def _tooltip(self, position: int) -> str:
        table = self._table
        lines = [table.paths[position]]
        label = self._class_name(int(table.label[position]))
        lines.append(f"Label: {label or 'none'}")
        split = int(table.split[position])
        if split >= 0:
            lines.append(f"Split: {SPLITS[split]}")
        predicted = self._predicted_name(position)
        if predicted is not None:
            confidence = float(table.confidence[position])
            lines.append(f"{table.version_name} predicts {predicted} ({confidence:.0%})")
            if self._disagrees(position):
                lines.append("The model disagrees with the label.")
        rank = float(table.label_next_rank[position])
        if rank == rank:  # not NaN: an unlabelled image the last training ranked
            lines.append(f"Label next: number {int(rank):,} of the unlabelled images")
        problem = self._problem(position)
        if problem:
            lines.append(problem)
        return "\n".join(lines)

    def _on_loader_thumbnail_ready(self, key: str, *_: object) -> None:
        for position in self._waiting.pop(key, ()):
            row = int(self._row_of[position]) if position < len(self._row_of) else -1
            if row >= 0:
                index = self.index(row)
                self.dataChanged.emit(index, index)
