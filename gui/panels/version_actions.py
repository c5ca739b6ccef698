"""Naming, annotating and deleting model versions: the actions of the Train tab's list.

`VersionActions` owns four actions on the version selected in the list (or,
with nothing selected, the active one): make active, rename, edit note,
delete; `hint`, a line that says so, and `note_label`, that version's note,
for the panel to show beside and under the list. The actions appear in the
list's context menu and, through `actions`, in the window's Model menu. The
store is changed through `engine.project.versions`; the list and whoever shows
versions hear `versions_changed`, and a deletion that changed the active model
says so with `active_changed`.

Deleting asks first and says what it removes (the version's folder in the
project; never an image, never an exported model) and, for the active
version, which version becomes active instead (`delete_question`).
"""

from __future__ import annotations

import html
from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtCore import QPoint
from PySide6.QtCore import Qt
from PySide6.QtCore import Signal
from PySide6.QtGui import QAction
from PySide6.QtGui import QKeySequence
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QHeaderView
from PySide6.QtWidgets import QInputDialog
from PySide6.QtWidgets import QLabel
from PySide6.QtWidgets import QMenu
from PySide6.QtWidgets import QMessageBox
from PySide6.QtWidgets import QTableView
from PySide6.QtWidgets import QWidget

from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.project import lock as project_lock
from linnaeus.engine.project import versions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.versions import ModelVersion
from linnaeus.gui.panels.model_versions import NOTE_COLUMN
from linnaeus.gui.panels.model_versions import ModelVersionsModel


def delete_question(version: ModelVersion, *, active: bool, successor: ModelVersion | None) -> str:
    """What the user is asked before ``version`` is deleted."""
    kept = (
        f"Its files in the project (models/{version.id}) are removed; your images and any "
        "model you exported are kept. This cannot be undone."
    )
    if not active:
        return f"Delete {version.display_name}?\n\n{kept}"
    if successor is not None:
        instead = (
            f"{successor.display_name} becomes the active model: the grid's predictions, "
            "the heatmaps and the evaluation will use it."
        )
    else:
        instead = (
            "No other version finished training, so no model will be active: the grid shows "
            "no predictions until you train again."
        )
    return f"{version.display_name} is the active model. Delete it?\n\n{instead}\n\n{kept}"


class VersionActions(QObject):
    """Make active, rename, note and delete for a list of model versions."""

    versions_changed = Signal()  # a name, a note or the list of versions changed
    active_changed = Signal(str)  # a deletion made this version active ("" for none)
    make_active_requested = Signal()
    message = Signal(str, str)  # kind ("success", "error"), text for the user

    def __init__(
        self,
        view: QTableView,
        model: ModelVersionsModel,
        *,
        is_training: Callable[[], bool],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._view = view
        self._model = model
        self._is_training = is_training
        self._store: ProjectStore | None = None
        self.make_active_action = QAction("Make active", self)
        self.make_active_action.triggered.connect(self.make_active_requested)
        self.rename_action = QAction("Rename model version…", self)
        self.rename_action.triggered.connect(self.rename)
        self.note_action = QAction("Edit note on model version…", self)
        self.note_action.triggered.connect(self.edit_note)
        self.delete_action = QAction("Delete model version…", self)
        self.delete_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Delete))
        self.delete_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.delete_action.triggered.connect(self.delete)
        view.addAction(self.delete_action)  # the Delete key in the list
        # A long note stays one line, in the width left (`note_label` shows all of it).
        view.setWordWrap(False)
        view.horizontalHeader().setSectionResizeMode(NOTE_COLUMN, QHeaderView.ResizeMode.Stretch)
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        view.customContextMenuRequested.connect(self._on_view_context_menu_requested)
        self.hint = QLabel("Right-click a version to name it, keep a note or delete it.", view)
        self.hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.note_label = QLabel(view)  # the chosen version's note, under the list
        self.note_label.setWordWrap(True)
        self.note_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.note_label.hide()
        view.selectionModel().selectionChanged.connect(self.update_actions)
        model.modelReset.connect(self.update_actions)
        self.update_actions()

    @property
    def actions(self) -> list[QAction]:
        """The actions for a menu: rename, note, delete."""
        return [self.rename_action, self.note_action, self.delete_action]

    def set_store(self, store: ProjectStore | None) -> None:
        self._store = store
        self.update_actions()

    def chosen(self) -> ModelVersion | None:
        """The version selected in the list, else the active one."""
        rows = self._view.selectionModel().selectedRows()
        if rows:
            return self._model.version_at(rows[0].row())
        return next((v for v in self._model.versions if self._model.is_active(v)), None)

    def update_actions(self) -> None:
        """Name the chosen version in the actions; enable what can be done to it."""
        version = self.chosen() if self._store is not None else None
        self.note_label.setVisible(bool(version and version.note))
        if version is not None and version.note:
            self.note_label.setText(
                f"<b>Note on {html.escape(version.display_name)}:</b> {html.escape(version.note)}"
            )
        name = version.name if version else "model version"
        self.rename_action.setText(f"Rename {name}…")
        self.note_action.setText(f"Edit note on {name}…")
        self.delete_action.setText(f"Delete {name}…")
        for action in (self.rename_action, self.note_action):
            action.setEnabled(version is not None)
        deletable = version is not None and version.status != "training"
        self.delete_action.setEnabled(deletable and not self._is_training())
        self.make_active_action.setEnabled(
            version is not None and version.status == "done" and not self._model.is_active(version)
        )

    # -- the actions --------------------------------------------------------

    def rename(self) -> None:
        version = self.chosen()
        if self._store is None or version is None:
            return
        title, ok = QInputDialog.getText(
            self._view, "Rename model version",
            f"A name for {version.name}, shown beside its number (empty: none):",
            text=version.title,
        )  # fmt: skip
        if ok:
            self._change(lambda store: versions.rename_version(store, version.id, title))

    def edit_note(self) -> None:
        version = self.chosen()
        if self._store is None or version is None:
            return
        note, ok = QInputDialog.getMultiLineText(
            self._view, "Note on a model version",
            f"What to remember about {version.display_name} (shown in the list and the "
            "model card):",
            version.note,
        )  # fmt: skip
        if ok:
            self._change(lambda store: versions.set_note(store, version.id, note))

    def delete(self) -> None:
        version, store = self.chosen(), self._store
        if store is None or version is None or self._is_training():
            return
        busy = project_lock.busy_message(store.project_dir)
        if busy is not None:
            self.message.emit("error", busy)
            return
        active = self._model.is_active(version)
        successor = versions.successor(store, version.id) if active else None
        answer = QMessageBox.question(
            self._view, "Delete model version",
            delete_question(version, active=active, successor=successor),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )  # fmt: skip
        if answer != QMessageBox.StandardButton.Yes:
            return
        try:
            now = versions.delete_version(store, version.id, replace_active=active)
        except LinnaeusError as error:
            self.message.emit("error", str(error))
            return
        self.versions_changed.emit()
        after = f"{now.display_name} is the active model." if now else "No model is active."
        self.message.emit("success", f"Deleted {version.display_name}. {after}")
        if active:
            self.active_changed.emit(now.name if now else "")

    def _change(self, change: Callable[[ProjectStore], object]) -> None:
        if self._store is None:
            return
        try:
            change(self._store)
        except LinnaeusError as error:
            self.message.emit("error", str(error))
            return
        self.versions_changed.emit()

    def _on_view_context_menu_requested(self, at: QPoint) -> None:
        index = self._view.indexAt(at)
        if index.isValid():
            self._view.selectRow(index.row())
        self.context_menu().exec(self._view.viewport().mapToGlobal(at))

    def context_menu(self) -> QMenu:
        """The list's context menu for the chosen version."""
        self.update_actions()
        menu = QMenu(self._view)
        menu.addAction(self.make_active_action)
        menu.addSeparator()
        menu.addActions(self.actions)
        return menu
