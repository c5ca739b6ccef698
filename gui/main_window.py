"""The main window: composition only.

It builds the start page and the project workspace, the menus and their
actions, and connects them; it remembers window geometry, splitter sizes,
tile size, the current tab, recent projects and the last open project in
QSettings, and per project the grid's sort and selection (`view_memory`).
Work happens in the widgets and the `ProjectSession` they share; the File,
Classes and Help menus open the dialogs of their own modules (export labels,
rescan, settings, user guide).

Panels made elsewhere (gui/workflows.py: training, evaluation, augmentation,
feature maps) join through `add_panel`; `project_changed` tells them which
project is open, `show_images` lets them filter the grid (a confusion-matrix
cell), `refresh_project` shows new predictions after a training, a panel
with a ``confirm_close() -> bool`` method is asked before the window closes
(a training still running), and one with ``save_state``/``restore_state``
keeps its choices in its own settings group.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtCore import Qt
from PySide6.QtCore import Signal
from PySide6.QtGui import QAction
from PySide6.QtGui import QCloseEvent
from PySide6.QtGui import QKeySequence
from PySide6.QtGui import QUndoGroup
from PySide6.QtWidgets import QFileDialog
from PySide6.QtWidgets import QMainWindow
from PySide6.QtWidgets import QMessageBox
from PySide6.QtWidgets import QStackedWidget
from PySide6.QtWidgets import QWidget

from linnaeus.engine import __version__
from linnaeus.engine.dataset.importer import interrupted_import
from linnaeus.engine.errors import LinnaeusError
from linnaeus.gui import app_settings
from linnaeus.gui.open_folder_dialog import OpenFolderDialog
from linnaeus.gui.panels.export_labels_dialog import ExportLabelsDialog
from linnaeus.gui.panels.rescan_dialog import RescanDialog
from linnaeus.gui.project_session import ProjectSession
from linnaeus.gui.project_view import ProjectView
from linnaeus.gui.settings_dialog import show_settings
from linnaeus.gui.start_page import StartPage
from linnaeus.gui.status_bar import StatusBar
from linnaeus.gui.thumbnail_grid import DEFAULT_TILE
from linnaeus.gui.user_guide import show_user_guide
from linnaeus.gui.view_memory import load_view
from linnaeus.gui.view_memory import save_view

MAX_RECENT = 8
SHORTCUTS = (
    ("1 … 9, then letters", "label the selected images with that class (H excepted)"),
    ("Enter", "accept the model's suggestion for the selected images"),
    ("Backspace", "remove the label of the selected images"),
    ("Arrows, Page Up/Down, Home/End", "move through the grid"),
    ("Shift / Ctrl + click, drag", "select several images"),
    ("Ctrl+Z / Ctrl+Shift+Z", "undo / redo a label change"),
    ("H", "show or hide the heatmap"),
    ("+ / - / 0", "zoom the viewer in, out, fit"),
    ("Right-button drag in the viewer", "window (left/right) and level (up/down)"),
    ("Ctrl+wheel or Ctrl++ / Ctrl+-", "bigger or smaller tiles"),
    ("Ctrl+F", "search file names"),
)


class MainWindow(QMainWindow):
    """The Linnaeus window; see the module docstring."""

    project_changed = Signal(object)  # the ProjectSession now open, or None
    settings_changed = Signal()  # the Settings dialog stored new choices

    def __init__(self, settings: QSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Linnaeus")
        self.settings = settings or QSettings()
        self.session: ProjectSession | None = None
        self.status = StatusBar(self)
        self.setStatusBar(self.status)
        self.start_page = StartPage()
        self.project_view = ProjectView(self.status)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.start_page)
        self.pages.addWidget(self.project_view)
        self.setCentralWidget(self.pages)
        self.undo_group = QUndoGroup(self)
        self._build_actions()
        self._build_menus()
        self._connect()
        self._restore_settings()

    # -- building -----------------------------------------------------------

    def _action(self, text: str, slot: object, *keys: QKeySequence | str) -> QAction:
        action = QAction(text, self)
        action.setShortcuts([QKeySequence(k) for k in keys])
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        view, grid = self.project_view, self.project_view.grid
        self.open_folder_action = self._action(
            "Open &folder of images…", self.choose_folder, "Ctrl+Shift+O"
        )
        self.open_project_action = self._action(
            "&Open project…", self.choose_project, QKeySequence.StandardKey.Open
        )
        self.demo_action = self._action("Try the &demo project", self.start_page.try_demo.click)
        self.export_labels_action = self._action("&Export labels…", self.export_labels)
        self.rescan_action = self._action("Re&scan folder", self.rescan_folder, "F5")
        self.settings_action = self._action(
            "Se&ttings…", self.open_settings,
            QKeySequence.StandardKey.Preferences, "Ctrl+,",
        )  # fmt: skip
        self.close_project_action = self._action(
            "&Close project", self._on_close_project_action_triggered, "Ctrl+W"
        )
        self.quit_action = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.undo_action = self.undo_group.createUndoAction(self, "&Undo")
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.redo_action = self.undo_group.createRedoAction(self, "&Redo")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.find_action = self._action(
            "&Find images…", view.filter_bar.focus_search, QKeySequence.StandardKey.Find
        )
        self.show_all_action = self._action("Show &all images", view.filter_bar.clear)
        self.bigger_action = self._action(
            "&Bigger tiles", lambda: grid.set_tile_size(grid.tile_size + 16), "Ctrl++", "Ctrl+="
        )
        self.smaller_action = self._action(
            "&Smaller tiles", lambda: grid.set_tile_size(grid.tile_size - 16), "Ctrl+-"
        )
        self.guide_action = self._action(
            "&User guide", lambda: show_user_guide(self), QKeySequence.StandardKey.HelpContents
        )
        self.shortcuts_action = self._action("&Keyboard shortcuts", self.show_shortcuts, "Ctrl+/")
        self.about_action = self._action("&About Linnaeus", self.show_about)
        self._project_actions = (self.close_project_action, self.find_action, self.show_all_action,
                                 self.bigger_action, self.smaller_action,
                                 self.export_labels_action, self.rescan_action)  # fmt: skip

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        file.addActions([self.open_folder_action, self.open_project_action])
        self.recent_menu = file.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file.addAction(self.demo_action)
        file.addSeparator()
        file.addActions([self.export_labels_action, self.rescan_action])
        file.addSeparator()
        file.addActions([self.settings_action, self.close_project_action, self.quit_action])
        edit = bar.addMenu("&Edit")
        edit.addActions([self.undo_action, self.redo_action])
        edit.addSeparator()
        edit.addActions([self.find_action, self.show_all_action])
        label = bar.addMenu("&Label")
        label.addActions(
            [self.project_view.class_bar.accept_action, self.project_view.class_bar.unlabel_action]
        )
        self.classes_menu = bar.addMenu("&Classes")  # add, rename, recolour, merge, delete
        self.classes_menu.aboutToShow.connect(
            lambda: self.project_view.class_bar.fill_classes_menu(self.classes_menu)
        )
        self.project_view.class_bar.fill_classes_menu(self.classes_menu)
        view = bar.addMenu("&View")
        view.addActions(self.project_view.viewer.key_actions)
        view.addSeparator()
        view.addActions([self.bigger_action, self.smaller_action])
        help_menu = bar.addMenu("&Help")
        help_menu.addActions([self.guide_action, self.shortcuts_action, self.about_action])

    def _connect(self) -> None:
        self.start_page.open_folder_requested.connect(self.choose_folder)
        self.start_page.open_project_requested.connect(self.choose_project)
        self.start_page.project_chosen.connect(self.open_project)
        self.start_page.guide_requested.connect(self.guide_action.trigger)
        self.project_view.message.connect(lambda text: self.status.showMessage(text, 6000))
        self.project_view.grid.tile_size_changed.connect(self._on_grid_tile_size_changed)

    # -- projects -----------------------------------------------------------

    def open_project(self, folder: Path) -> bool:
        """Open the project in ``folder``; False (and a message) if it cannot be opened."""
        pixels = round(self.project_view.grid.tile_size * self.devicePixelRatioF())
        try:
            session = ProjectSession.open(Path(folder), thumbnail_pixels=pixels, parent=self)
        except LinnaeusError as error:
            self.warn(str(error))
            return False
        self.close_project()
        self.session = session
        self.undo_group.addStack(session.undo_stack)
        self.undo_group.setActiveStack(session.undo_stack)
        self.project_view.set_session(session)
        memory = load_view(self.settings, session.store.project_id)
        if memory is not None:  # the sort and selection of the last time
            self.project_view.restore_view_memory(memory)
        self.pages.setCurrentWidget(self.project_view)
        self._remember_project(session.project_dir)
        self.setWindowTitle(f"{session.project_dir.name} — Linnaeus")
        self._update_actions()
        self.project_changed.emit(session)
        interrupted = interrupted_import(session.store)
        if interrupted is not None:
            self.warn(interrupted.message)
        return True

    def close_project(self) -> None:
        """Close the open project (if any) and show the start page."""
        if self.session is None:
            return
        session, self.session = self.session, None
        save_view(self.settings, session.store.project_id, self.project_view.view_memory())
        self.project_view.set_session(None)
        self.undo_group.removeStack(session.undo_stack)
        session.close()
        session.deleteLater()
        self.setWindowTitle("Linnaeus")
        self.start_page.set_recent_projects(self.recent_projects())
        self.pages.setCurrentWidget(self.start_page)
        self._update_actions()
        self.project_changed.emit(None)

    def _on_close_project_action_triggered(self) -> None:
        self.settings.setValue("last_project", "")  # the next start shows the start page
        self.close_project()

    def reopen_last_project(self) -> bool:
        """Open the project that was open when the window last closed, if any (a
        project closed with File > Close is not reopened)."""
        last = self.settings.value("last_project", "")
        if not last or not Path(str(last)).is_dir():
            return False
        return self.open_project(Path(str(last)))

    def choose_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a Linnaeus project")
        if folder:
            self.open_project(Path(folder))

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of images for a new project")
        if not folder:
            return
        dialog = OpenFolderDialog(
            Path(folder), self, projects=app_settings.projects_folder(self.settings)
        )
        if dialog.exec() and dialog.project_dir is not None:
            self.open_project(dialog.project_dir)

    def open_settings(self) -> None:
        """The Settings dialog; ``settings_changed`` once it stores new choices."""
        show_settings(self.settings, self).accepted.connect(self.settings_changed)

    def export_labels(self) -> None:
        """File > Export labels…: a CSV or a folder tree of copies."""
        if self.session is not None:
            self._open_dialog(ExportLabelsDialog(self.session.project_dir, self))

    def rescan_folder(self) -> None:
        """File > Rescan folder: new, changed, moved and removed images, then the grid anew."""
        if self.session is None:
            return
        dialog = RescanDialog(self.session.project_dir, self.session.store.image_root, self)
        dialog.succeeded.connect(self._on_rescan_dialog_succeeded)
        self._open_dialog(dialog)
        dialog.start()

    def _on_rescan_dialog_succeeded(self, _report: object) -> None:
        if self.session is not None:
            self.session.reload_after_import()

    def _open_dialog(self, dialog: QWidget) -> None:
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()

    # -- for panels ---------------------------------------------------------

    def add_panel(self, title: str, widget: QWidget) -> None:
        """Add a panel as a tab beside the image viewer. A panel with a
        ``restore_state(settings)`` method gets its saved choices back (from its own
        settings group), and ``save_state(settings)`` is called when the window closes."""
        self.project_view.add_panel(title, widget)
        restore = getattr(widget, "restore_state", None)
        if restore is not None:
            self.settings.beginGroup(f"panels/{title}")
            try:
                restore(self.settings)
            finally:
                self.settings.endGroup()
        if self.settings.value("panels/current") == title:
            self.project_view.panels.setCurrentWidget(widget)

    def show_images(self, image_ids: Iterable[int] | None, title: str = "") -> None:
        """Limit the grid to these images (None: show all again)."""
        self.project_view.show_images(image_ids, title)

    def refresh_project(self) -> None:
        """Read images and predictions again (after a training or an import)."""
        if self.session is not None:
            self.session.model.reload()

    # -- settings -----------------------------------------------------------

    def recent_projects(self) -> list[Path]:
        value = self.settings.value("recent_projects", [])
        folders = [value] if isinstance(value, str) else list(value or [])
        return [Path(f) for f in folders if f]

    def _remember_project(self, folder: Path) -> None:
        folders = [folder, *(f for f in self.recent_projects() if f != folder)][:MAX_RECENT]
        self.settings.setValue("recent_projects", [str(f) for f in folders])
        self.settings.setValue("last_project", str(folder))

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for folder in self.recent_projects():
            self.recent_menu.addAction(str(folder), lambda f=folder: self.open_project(f))
        self.recent_menu.setEnabled(bool(self.recent_projects()))

    def _restore_settings(self) -> None:
        s = self.settings
        if not self.restoreGeometry(s.value("window/geometry", b"")):
            self.resize(1280, 800)
        self.restoreState(s.value("window/state", b""))
        layout = (s.value("project/splitter", b""), s.value("viewer/splitter", b""))
        if layout[0]:
            self.project_view.restore_layout(*layout)
        self.project_view.grid.set_tile_size(int(s.value("grid/tile_size", DEFAULT_TILE)))
        self.start_page.set_recent_projects(self.recent_projects())
        self._update_actions()

    def save_settings(self) -> None:
        s = self.settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        splitter, viewer_splitter = self.project_view.layout_state()
        s.setValue("project/splitter", splitter)
        s.setValue("viewer/splitter", viewer_splitter)
        s.setValue("grid/tile_size", self.project_view.grid.tile_size)
        panels = self.project_view.panels
        s.setValue("panels/current", panels.tabText(panels.currentIndex()))
        for index in range(panels.count()):
            save = getattr(panels.widget(index), "save_state", None)
            if save is not None:
                s.beginGroup(f"panels/{panels.tabText(index)}")
                save(s)
                s.endGroup()
        s.sync()

    def _update_actions(self) -> None:
        for action in self._project_actions:
            action.setEnabled(self.session is not None)
        self.classes_menu.setEnabled(self.session is not None)

    def _on_grid_tile_size_changed(self, pixels: int) -> None:
        if self.session is not None:
            self.session.loader.set_pixel_size(round(pixels * self.devicePixelRatioF()))

    # -- closing and small dialogs ------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        panels = self.project_view.panels
        for index in range(panels.count()):
            confirm = getattr(panels.widget(index), "confirm_close", None)
            if confirm is not None and not confirm():
                event.ignore()
                return
        self.save_settings()
        self.close_project()
        super().closeEvent(event)

    def warn(self, text: str) -> None:
        """Show a message without blocking (tests and scripts keep running)."""
        box = QMessageBox(QMessageBox.Icon.Warning, "Linnaeus", text, parent=self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)  # gone once read
        box.open()

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in SHORTCUTS)
        box = QMessageBox(
            QMessageBox.Icon.NoIcon,
            "Keyboard shortcuts",
            f"<table cellspacing=6>{rows}</table>",
            parent=self,
        )
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            "About Linnaeus",
            f"<b>Linnaeus {__version__}</b><p>Sort folders of "
            "images into classes, offline: label, train, explain, classify.</p>",
        )
