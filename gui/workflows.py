"""The workflow panels (train, evaluate, augment, classify, export) joined to the
main window: composition only, no domain logic.

`Workflows` adds the panels as tabs beside the image viewer, a Model menu with
the classify and export dialogs and the model versions' rename, note and
delete, and connects them: the open project goes to every panel (and its
classes, as they change, to the Train tab's class to find), a finished training
refreshes the grid's predictions, a confusion-matrix cell filters the grid, the
Check labels list opens images in the Image view and accepts suggestions as
undoable label edits, a threshold chosen in the Evaluate tab is saved undoably
and every view follows, the augmentation settings go to the next training and
its preview follows the image in the viewer, and the viewer's heatmap and the
feature-map tab show the `HeatmapSource`'s view of the image on screen.
"""

from __future__ import annotations

from typing import Any

import shiboken6
from PySide6.QtCore import QObject
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QMenu

from linnaeus.engine.onnx.explanation import ImageExplanation
from linnaeus.gui import app_settings
from linnaeus.gui.heatmap_source import HeatmapSource
from linnaeus.gui.main_window import MainWindow
from linnaeus.gui.panels.augment_panel import AugmentPanel
from linnaeus.gui.panels.classify_dialog import ClassifyDialog
from linnaeus.gui.panels.evaluation_panel import EvaluationPanel
from linnaeus.gui.panels.export_dialog import ExportDialog
from linnaeus.gui.panels.feature_maps_panel import FeatureMapsPanel
from linnaeus.gui.panels.training_panel import TrainingPanel
from linnaeus.gui.processes.child_process import CommandFactory
from linnaeus.gui.processes.child_process import linnaeus_command
from linnaeus.gui.processes.train_runner import TrainRunner
from linnaeus.gui.project_session import ProjectSession


class Workflows(QObject):
    """The panels of one main window and the connections between them.

    ``command`` turns ``linnaeus`` arguments into the program the child
    processes run (training, export, report); tests pass a fake trainer.
    """

    def __init__(self, window: MainWindow, *, command: CommandFactory = linnaeus_command) -> None:
        super().__init__(window)
        self.window = window
        self._command = command
        self.training = TrainingPanel(runner=TrainRunner(command=command))
        self.evaluation = EvaluationPanel()
        self.augment = AugmentPanel()
        self.features = FeatureMapsPanel()
        self.heatmaps = HeatmapSource(self, command=command)
        window.add_panel("Feature maps", self.features)
        window.add_panel("Train", self.training)
        window.add_panel("Evaluate", self.evaluation)
        window.add_panel("Augment", self.augment)
        self.classify_action = QAction("&Classify a folder…", window)
        self.classify_action.setShortcut(QKeySequence("Ctrl+K"))
        self.export_action = QAction("&Export model and report…", window)
        self.export_action.setShortcut(QKeySequence("Ctrl+E"))
        menu = QMenu("&Model", window)
        menu.addActions([self.classify_action, self.export_action])
        menu.addSeparator()
        menu.addActions(self.training.version_actions.actions)  # the Train tab's selection
        window.menuBar().insertMenu(window.menuBar().actions()[-1], menu)  # before Help
        self.dialog: ClassifyDialog | ExportDialog | None = None
        self._connect()
        self._on_project_changed(window.session)

    def _connect(self) -> None:
        window, viewer = self.window, self.window.project_view.viewer
        window.project_changed.connect(self._on_project_changed)
        window.settings_changed.connect(self._on_window_settings_changed)
        self.training.training_finished.connect(self._on_model_changed)
        self.training.active_model_changed.connect(self._on_model_changed)
        self.training.version_actions.versions_changed.connect(self.evaluation.refresh)
        self.evaluation.filter_requested.connect(self._on_evaluation_filter_requested)
        self.evaluation.open_image_requested.connect(self._on_evaluation_open_image_requested)
        self.evaluation.suggestion_accepted.connect(self._on_evaluation_suggestion_accepted)
        self.evaluation.threshold_chosen.connect(self._on_evaluation_threshold_chosen)
        self.augment.augmentation_changed.connect(self.training.set_augmentation)
        viewer.image_shown.connect(self._on_viewer_image_shown)
        viewer.explanation_wanted.connect(self.explain_current_image)
        viewer.heatmap_action.toggled.connect(self._on_heatmap_toggled)
        window.project_view.panels.currentChanged.connect(self._on_panels_current_changed)
        self.heatmaps.state_changed.connect(self._on_heatmaps_state_changed)
        self.heatmaps.explained.connect(self._on_heatmaps_explained)
        self.heatmaps.failed.connect(self._on_heatmaps_failed)
        self.classify_action.triggered.connect(self.classify_folder)
        self.export_action.triggered.connect(self.export_model)

    # -- reactions ----------------------------------------------------------

    def _on_project_changed(self, session: ProjectSession | None) -> None:
        store = session.store if session is not None else None
        if session is not None:
            session.decision_changed.connect(self._on_session_decision_changed)
            session.labels_changed.connect(self._on_session_labels_changed)
            session.classes_changed.connect(self.training.refresh_classes)
        self.training.set_project(store)
        self.evaluation.set_project(store)
        if store is None:
            self.heatmaps.stop()
        self.heatmaps.set_project(store)
        self.classify_action.setEnabled(store is not None)
        self.export_action.setEnabled(store is not None)

    def _on_window_settings_changed(self) -> None:
        """A new default time budget in Settings is the Train tab's budget from now on."""
        self.training.set_budget_minutes(app_settings.budget_minutes(self.window.settings))

    def _on_model_changed(self, _version: str) -> None:
        self.window.refresh_project()
        self.evaluation.refresh()
        self.heatmaps.refresh()

    def _on_evaluation_threshold_chosen(self, version_id: int, threshold: float) -> None:
        if self.window.session is not None:
            self.window.session.set_threshold(version_id, threshold)

    def _on_session_decision_changed(self, _version_id: int) -> None:
        """A saved threshold: the evaluation and the heatmaps' model decide anew (the
        grid was told by the session)."""
        self.evaluation.refresh()
        self.heatmaps.reload()

    def _on_evaluation_suggestion_accepted(self, image_id: int, class_name: str) -> None:
        if self.window.session is not None:
            self.window.session.label_images([image_id], class_name, source="model-suggestion")

    def _on_session_labels_changed(self, image_ids: list[int]) -> None:
        """Labels edited (or undone): the Check labels list follows; after a class change
        (any image may have changed) the evaluation is read again."""
        session = self.window.session
        if session is None:
            return
        if not image_ids:
            self.evaluation.refresh()
            return
        self.evaluation.labels_changed({i: session.store.image(i).label for i in image_ids})

    def _on_evaluation_open_image_requested(self, image_id: int) -> None:
        self.open_image(image_id, explain=self.evaluation.suggested_class(image_id))

    def _on_evaluation_filter_requested(self, request: dict[str, Any]) -> None:
        self.window.show_images(request["image_ids"], request["title"])

    def _on_viewer_image_shown(self, _image_id: int) -> None:
        self.augment.set_image(self.window.project_view.viewer.pixels)
        self.features.set_explanation(None)
        if self.features.isVisible():
            self.explain_current_image()

    def _on_heatmap_toggled(self, wanted: bool) -> None:
        """Turning heatmaps off stops preparing them (the export), unless the feature
        maps are on screen and still need the model."""
        if not wanted and not self.features.isVisible():
            self.heatmaps.stop()

    def _on_panels_current_changed(self, _index: int) -> None:
        if self.features.isVisible() and self.features.explanation is None:
            self.explain_current_image()

    def explain_current_image(self) -> None:
        """Ask for the heatmap and feature maps of the image in the viewer."""
        viewer, session = self.window.project_view.viewer, self.window.session
        if session is None or viewer.image_id is None or self.heatmaps.classes is None:
            return
        path = session.model.image_path(viewer.image_id)
        self.heatmaps.explain(viewer.image_id, path, viewer.explained_class)

    def _on_heatmaps_state_changed(self) -> None:
        heatmaps = self.heatmaps
        self.window.project_view.viewer.set_heatmap_classes(heatmaps.classes, heatmaps.status)
        self.features.set_status(heatmaps.status)
        if heatmaps.process.is_running:
            self.window.status.showMessage(heatmaps.status, 10_000)

    def _on_heatmaps_explained(self, image_id: int, explanation: ImageExplanation) -> None:
        viewer = self.window.project_view.viewer
        if image_id == viewer.image_id:
            explained = explanation.classes[explanation.explained]
            viewer.set_overlay(explanation.heatmap, class_name=explained)
            self.features.set_explanation(explanation)

    def _on_heatmaps_failed(self, image_id: int, message: str) -> None:
        if image_id == self.window.project_view.viewer.image_id:
            self.window.status.showMessage(message, 10_000)

    def open_image(self, image_id: int, *, explain: str | None = None) -> None:
        """Show the image in the Image view and select it in the grid (showing all
        images if a filter hides it), with the heatmap of the class ``explain`` (None:
        the predicted one): the Check labels list is walked looking at where the
        model looked."""
        viewer = self.window.project_view.viewer
        self.window.project_view.panels.setCurrentWidget(viewer)
        if viewer.heatmap_action.isEnabled():
            viewer.explain_class(explain)
            viewer.heatmap_action.setChecked(True)
        grid = self.window.project_view.grid
        if not grid.select_image(image_id):
            self.window.show_images(None)
            grid.select_image(image_id)

    # -- dialogs ------------------------------------------------------------

    def classify_folder(self) -> None:
        session = self.window.session
        self._show_dialog(ClassifyDialog(session.store if session else None, parent=self.window))

    def export_model(self) -> None:
        session = self.window.session
        if session is None:
            self.window.warn("Open a project first.")
            return
        self._show_dialog(ExportDialog(session.store, parent=self.window, command=self._command))

    def _show_dialog(self, dialog: ClassifyDialog | ExportDialog) -> None:
        """Show ``dialog``, closing the previous one unless it is still working."""
        previous = self.dialog
        if previous is not None and shiboken6.isValid(previous) and previous.isVisible():
            if previous.is_running():
                dialog.deleteLater()
                previous.raise_()
                previous.activateWindow()
                return
            previous.close()
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.dialog = dialog
        dialog.show()


def install_workflows(
    window: MainWindow, *, command: CommandFactory = linnaeus_command
) -> Workflows:
    """Add the workflow panels and the Model menu to ``window``."""
    return Workflows(window, command=command)
