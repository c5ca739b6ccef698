"""What the grid showed when a project was closed: its sort order and selected images.

Kept per project in QSettings (under the project's id, so a moved project
keeps it) and given back when the project opens again: the sort at once, the
selection once the images and predictions are read. Filters are not kept: a
project that opens showing only some of its images would look as if the
others were lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QItemSelection
from PySide6.QtCore import QItemSelectionModel
from PySide6.QtCore import QSettings

from linnaeus.gui.image_table import DEFAULT_DESCENDING
from linnaeus.gui.image_table import SORT_KEYS
from linnaeus.gui.thumbnail_grid import ThumbnailGrid

MAX_REMEMBERED = 20_000  # selected images kept; a larger selection is kept in part


@dataclass(frozen=True)
class ViewMemory:
    """The grid's sort and selection when the project was last closed."""

    sort: str = "name"
    descending: bool = False
    current: int | None = None  # image id
    selected: tuple[int, ...] = ()  # image ids


def _group(project_id: str) -> str:
    return f"projects/{project_id}"


def save_view(settings: QSettings, project_id: str, memory: ViewMemory) -> None:
    settings.beginGroup(_group(project_id))
    settings.setValue("sort", memory.sort)
    settings.setValue("descending", memory.descending)
    settings.setValue("current_image", -1 if memory.current is None else memory.current)
    settings.setValue("selected_images", ",".join(map(str, memory.selected[:MAX_REMEMBERED])))
    settings.endGroup()
    settings.sync()


def load_view(settings: QSettings, project_id: str) -> ViewMemory | None:
    """The memory saved for this project, or None (never opened here, or unreadable)."""
    settings.beginGroup(_group(project_id))
    try:
        sort = str(settings.value("sort", ""))
        if sort not in SORT_KEYS:
            return None
        descending = settings.value("descending", DEFAULT_DESCENDING[sort], type=bool)
        current = int(settings.value("current_image", -1))
        text = str(settings.value("selected_images", "") or "")
        selected = tuple(int(part) for part in text.split(",") if part.strip())
    except (TypeError, ValueError):
        return None
    finally:
        settings.endGroup()
    return ViewMemory(sort, bool(descending), current if current >= 0 else None, selected)


def select_images(grid: ThumbnailGrid, image_ids: Sequence[int], current: int | None) -> bool:
    """Select those of ``image_ids`` the grid shows, ``current`` as its current tile;
    False if none of them is shown."""
    model = grid.image_model()
    if model is None:
        return False
    rows = sorted(row for row in (model.row_of(i) for i in image_ids) if row >= 0)
    current_row = model.row_of(current) if current is not None else -1
    if current_row < 0:
        current_row = rows[0] if rows else -1
    if current_row < 0:
        return False
    grid.select_row(current_row)  # current, selected and scrolled to
    selection = QItemSelection()
    start = previous = None
    for row in [*rows, None]:  # contiguous runs of rows as ranges
        if row is not None and previous is not None and row == previous + 1:
            previous = row
            continue
        if start is not None and previous is not None:
            selection.select(model.index(start, 0), model.index(previous, 0))
        start = previous = row
    grid.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.Select)
    return True
