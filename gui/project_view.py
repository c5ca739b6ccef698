"""The workspace of an open project: filters, thumbnail grid, class bar, viewer, panels.

Layout, left to right: a side bar with the filters above the class bar; the
grid; a tab widget whose first tab is the image viewer and where `add_panel` puts
the other panels (training, evaluation, augmentation, classify folder).
This module wires those widgets to the `ProjectSession`: the selection goes
to the class bar's commands, the current image to the viewer, counts to the
status bar. It holds no domain logic.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence

from PySide6.QtCore import QByteArray
from PySide6.QtCore import QPoint
from PySide6.QtCore import Qt
from PySide6.QtCore import QTimer
from PySide6.QtCore import Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QFrame
from PySide6.QtWidgets import QMenu
from PySide6.QtWidgets import QMessageBox
from PySide6.QtWidgets import QScrollArea
from PySide6.QtWidgets import QSplitter
from PySide6.QtWidgets import QTabWidget
from PySide6.QtWidgets import QVBoxLayout
from PySide6.QtWidgets import QWidget

from linnaeus.gui.class_bar import ClassBar
from linnaeus.gui.filter_bar import FilterBar
from linnaeus.gui.image_table import ImageFilter
from linnaeus.gui.image_viewer import ImageViewer
from linnaeus.gui.project_session import ProjectSession
from linnaeus.gui.status_bar import StatusBar
from linnaeus.gui.thumbnail_grid import ThumbnailGrid
from linnaeus.gui.view_memory import ViewMemory
from linnaeus.gui.view_memory import select_images

VIEWER_DELAY_MS = 40  # holding an arrow key decodes only the image it stops on


class ProjectView(QWidget):
    """Everything shown while a project is open; see the module docstring."""

    message = Signal(str)  # a short note for the status bar

    def __init__(self, status_bar: StatusBar, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session: ProjectSession | None = None
        self._status_bar = status_bar
        self._pending_layout: tuple[QByteArray, QByteArray] | None = None
        self._laid_out = False
        self._pending_selection: ViewMemory | None = None  # given back once images are read
        self.filter_bar = FilterBar()
        self.grid = ThumbnailGrid()
        self.class_bar = ClassBar()
        self.viewer = ImageViewer()
        self.panels = QTabWidget()
        self.panels.setDocumentMode(True)
        self.panels.addTab(self.viewer, "Image")
        # Panels (training, evaluation, augmentation, classify folder) are added
        # after the viewer by MainWindow.add_panel.

        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(8, 8, 8, 8)
        side_layout.addWidget(self.filter_bar)
        side_layout.addSpacing(12)
        side_layout.addWidget(self.class_bar)
        side_layout.addStretch(1)
        sidebar = QScrollArea()
        sidebar.setWidget(side)
        sidebar.setWidgetResizable(True)
        sidebar.setFrameShape(QFrame.Shape.NoFrame)
        sidebar.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        sidebar.setMinimumWidth(side.minimumSizeHint().width() + 12)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        for widget in (sidebar, self.grid, self.panels):
            self.splitter.addWidget(widget)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setStretchFactor(2, 2)
        self.splitter.setCollapsible(1, False)
        self.splitter.setSizes([250, 620, 500])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

        self.class_bar.set_shortcut_targets([self.grid, self.viewer])
        self.grid.addActions(self.viewer.key_actions)
        self._viewer_timer = QTimer(self, singleShot=True, interval=VIEWER_DELAY_MS)
        self._viewer_timer.timeout.connect(self._show_current_image)
        self._connect()

    def _connect(self) -> None:
        self.filter_bar.filter_changed.connect(self._on_filter_bar_filter_changed)
        self.grid.current_image_changed.connect(lambda _id: self._viewer_timer.start())
        self.grid.selection_count_changed.connect(self._status_bar.set_selection)
        self.grid.customContextMenuRequested.connect(self._on_grid_context_menu_requested)
        bar = self.class_bar
        bar.label_chosen.connect(self._on_class_bar_label_chosen)
        bar.accept_suggestion_requested.connect(self._on_class_bar_accept_suggestion_requested)
        bar.unlabel_requested.connect(lambda: self._label_selection(None))
        bar.add_requested.connect(lambda name: self._session_call("add_class", name))
        bar.rename_requested.connect(lambda old, new: self._session_call("rename_class", old, new))
        bar.recolour_requested.connect(
            lambda name, c: self._session_call("recolour_class", name, c)
        )
        bar.merge_requested.connect(lambda s, t: self._session_call("merge_classes", s, t))
        bar.delete_requested.connect(self._on_class_bar_delete_requested)

    # -- the session --------------------------------------------------------

    def set_session(self, session: ProjectSession | None) -> None:
        """Show ``session``'s project (None: nothing)."""
        self.session = session
        self._pending_selection = None
        self.grid.setModel(session.model if session else None)
        self.viewer.show_image(None, None)
        if session is None:
            self._status_bar.clear_counts()
            return
        self.grid.set_empty_text("Reading the project's images…")
        session.model.loaded.connect(self._on_model_loaded)
        session.model.predictions_loaded.connect(self._on_model_predictions_loaded)
        session.model.load_failed.connect(self._on_model_load_failed)
        session.model.contents_changed.connect(self._update_counts)
        session.classes_changed.connect(self._on_session_classes_changed)
        session.labels_changed.connect(self._on_session_labels_changed)
        session.error.connect(self._on_session_error)
        self._on_session_classes_changed()
        self.filter_bar.clear()

    def _on_model_loaded(self) -> None:
        assert self.session is not None
        model = self.session.model
        self.filter_bar.set_classes(model.classes(), has_predictions=model.table.has_predictions)
        self.grid.set_empty_text(
            "No images match these filters."
            if model.total_count
            else "This project has no images yet."
        )
        self.grid.setFocus()
        if model.rowCount() and not self.grid.currentIndex().isValid():
            self.grid.select_row(0)

    def _on_model_predictions_loaded(self) -> None:
        assert self.session is not None
        model = self.session.model
        self.filter_bar.set_classes(model.classes(), has_predictions=model.table.has_predictions)
        if self._pending_selection is not None:
            memory, self._pending_selection = self._pending_selection, None
            select_images(self.grid, memory.selected, memory.current)
        self._show_details()

    def _on_model_load_failed(self, message: str) -> None:
        self.grid.set_empty_text(f"The project's images could not be read: {message}")

    def _on_session_classes_changed(self) -> None:
        if self.session is None:
            return
        model = self.session.model
        self.class_bar.set_classes(model.classes(), model.class_counts())
        self.filter_bar.set_classes(model.classes(), has_predictions=model.table.has_predictions)
        self._update_counts()
        self._show_details()

    def _on_session_labels_changed(self, image_ids: list[int]) -> None:
        if not image_ids or self.viewer.image_id in image_ids:
            self._show_details()

    def _on_session_error(self, message: str) -> None:
        QMessageBox(QMessageBox.Icon.Warning, "Linnaeus", message, parent=self).open()

    def _session_call(self, method: str, *args: object) -> None:
        if self.session is not None:
            getattr(self.session, method)(*args)

    # -- labelling ----------------------------------------------------------

    def _label_selection(self, class_name: str | None) -> None:
        if self.session is None:
            return
        ids = self.grid.selected_image_ids()
        self.session.label_images(ids, class_name)
        if len(ids) == 1:
            self.grid.advance()
        elif ids:
            self.message.emit(f"Labelled {len(ids):,} images; Ctrl+Z undoes it.")

    def _on_class_bar_label_chosen(self, class_name: str) -> None:
        self._label_selection(class_name)

    def _on_class_bar_accept_suggestion_requested(self) -> None:
        if self.session is None:
            return
        ids = self.grid.selected_image_ids()
        accepted = self.session.accept_suggestions(ids)
        if not accepted:
            self.message.emit("No suggestion: train a model first.")
        elif len(ids) == 1:
            self.grid.advance()

    def _on_class_bar_delete_requested(self, name: str) -> None:
        self._session_call("delete_class", name)
        self.message.emit(f"Deleted class {name}; its images are unlabelled. Ctrl+Z undoes it.")

    def _on_grid_context_menu_requested(self, at: QPoint) -> None:
        menu = QMenu(self)
        label_as = menu.addMenu("Label as")
        label_as.addActions(self.class_bar.class_actions)
        menu.addAction(self.class_bar.accept_action)
        menu.addAction(self.class_bar.unlabel_action)
        menu.exec(self.grid.viewport().mapToGlobal(at))

    # -- filters, viewer, counts --------------------------------------------

    def _on_filter_bar_filter_changed(self, image_filter: ImageFilter) -> None:
        if self.session is not None:
            self.session.model.set_filter(image_filter)

    def show_images(self, image_ids: Iterable[int] | None, title: str = "") -> None:
        """Limit the grid to these images (None: lift the limit)."""
        self.filter_bar.show_only(None if image_ids is None else frozenset(image_ids), title)

    def _show_current_image(self) -> None:
        if self.session is None:
            return
        image_id = self.grid.current_image_id()
        path = self.session.model.image_path(image_id) if image_id is not None else None
        self.viewer.show_image(image_id, path)
        self._show_details()

    def _show_details(self) -> None:
        image_id = self.viewer.image_id
        if self.session is None or image_id is None:
            self.viewer.set_details(None)
            return
        store, model = self.session.store, self.session.model
        self.viewer.set_details(
            store.image(image_id),
            store.history(image_id, limit=50),
            model.probabilities(image_id),
            model.table.version_name,
            model.suggestion(image_id),
        )

    def _update_counts(self) -> None:
        if self.session is None:
            return
        model = self.session.model
        counts = model.class_counts()
        selected = self.grid.selection_count()
        self._status_bar.set_counts(
            model.rowCount(), model.total_count, model.classes(), counts, selected
        )
        self.class_bar.set_counts(counts)

    # -- what the grid showed -----------------------------------------------

    def view_memory(self) -> ViewMemory:
        """The grid's sort and selection now (kept per project by the main window)."""
        image_filter = self.filter_bar.current_filter()
        selected = self.grid.selected_image_ids() if self.session is not None else []
        return ViewMemory(
            image_filter.sort, image_filter.descending, self.grid.current_image_id(),
            tuple(selected),
        )  # fmt: skip

    def restore_view_memory(self, memory: ViewMemory) -> None:
        """Sort as ``memory`` says now; select its images once they are read."""
        self.filter_bar.apply(ImageFilter(sort=memory.sort, descending=memory.descending))
        self._pending_selection = memory

    # -- layout memory ------------------------------------------------------

    def restore_layout(self, splitter: QByteArray, viewer_splitter: QByteArray) -> None:
        """Splitter sizes saved by `layout_state`; applied when the view is first shown
        (a splitter not laid out yet would spread them by its stretch factors)."""
        self._pending_layout = (splitter, viewer_splitter)
        if self.isVisible():
            self._apply_pending_layout()

    def layout_state(self) -> tuple[QByteArray, QByteArray]:
        if self._pending_layout is not None:
            return self._pending_layout
        return self.splitter.saveState(), self.viewer.splitter.saveState()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._pending_layout is not None:  # once the stacked page has its real size
            QTimer.singleShot(0, self._apply_pending_layout)
        elif not self._laid_out:
            QTimer.singleShot(0, self._share_width)
        self._laid_out = True

    def _share_width(self) -> None:
        """The first layout without a saved one: the side bar as narrow as it can be,
        the grid and the panels half of the rest each."""
        side = self.splitter.widget(0).minimumWidth()
        rest = max(0, self.splitter.width() - side - 2 * self.splitter.handleWidth())
        self.splitter.setSizes([side, rest // 2, rest - rest // 2])

    def _apply_pending_layout(self) -> None:
        if self._pending_layout is not None:
            splitter, viewer_splitter = self._pending_layout
            self._pending_layout = None
            self.splitter.restoreState(splitter)
            self.viewer.splitter.restoreState(viewer_splitter)

    def add_panel(self, title: str, widget: QWidget) -> None:
        self.panels.addTab(widget, title)

    def tab_titles(self) -> Sequence[str]:
        return [self.panels.tabText(i) for i in range(self.panels.count())]
