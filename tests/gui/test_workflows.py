"""The workflow panels inside the main window, with the fake trainer: what a user does
from the window itself (train, evaluate, open queued images, classify, export)."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QMessageBox

from linnaeus.engine.project import versions
from linnaeus.engine.project.versions import exported_model_path
from linnaeus.gui.image_model import ImageRole
from linnaeus.gui.main_window import MainWindow
from linnaeus.gui.panels.classify_dialog import ClassifyDialog
from linnaeus.gui.panels.export_dialog import ExportDialog
from linnaeus.gui.workflows import install_workflows
from tests.gui.browse_factory import WRONG_IMAGE
from tests.gui.browse_factory import window_factory
from tests.gui.fake_trainer import fake_command

RUN_TIMEOUT_MS = 20_000


@pytest.fixture
def make_window(tmp_path, qtbot):
    with window_factory(tmp_path, qtbot) as make:
        yield make


def grid_ids(window) -> list[int]:
    model = window.session.model
    return [model.image_id(row) for row in range(model.rowCount())]


def wait_for_evaluation(qtbot, window) -> None:
    qtbot.waitUntil(
        lambda: window.workflows.evaluation.evaluation_data() is not None, timeout=10_000
    )


def test_panels_are_tabs_and_the_model_menu_holds_the_dialogs(make_window) -> None:
    window = make_window(workflows=True)
    assert window.project_view.tab_titles() == [
        "Image",
        "Feature maps",
        "Train",
        "Evaluate",
        "Augment",
    ]
    menus = [a.text() for a in window.menuBar().actions()]
    assert menus[-2:] == ["&Model", "&Help"]
    workflows = window.workflows
    assert workflows.classify_action.shortcut().toString() == "Ctrl+K"
    window.close_project()
    assert not workflows.classify_action.isEnabled()
    assert "Open a project" in workflows.evaluation.empty.text()


def test_the_train_tabs_class_to_find_follows_the_classes_edited(make_window) -> None:
    window = make_window(workflows=True)
    field = window.workflows.training.positive
    assert not field.isHidden() and field.combo.itemText(0) == "Automatic (square)"
    window.session.add_class("triangle")  # three classes: no class to find
    assert field.isHidden()
    window.session.undo_stack.undo()
    assert not field.isHidden() and field.combo.count() == 3


def test_training_from_the_window_refreshes_predictions_in_the_grid(make_window, qtbot) -> None:
    window = make_window(workflows=True)
    model = window.session.model
    assert model.index(0, 0).data(ImageRole.PREDICTED) is None  # no model yet
    training = window.workflows.training
    window.project_view.panels.setCurrentWidget(training)
    with qtbot.waitSignal(training.training_finished, timeout=RUN_TIMEOUT_MS) as finished:
        training.train_button.click()
    assert finished.args == ["v1"]
    assert versions.active_version(window.session.store).name == "v1"
    qtbot.waitUntil(lambda: model.index(0, 0).data(ImageRole.PREDICTED) is not None)
    wait_for_evaluation(qtbot, window)
    assert window.workflows.evaluation.evaluation_data().version_name == "v1"


def test_closing_during_training_asks_first(make_window, qtbot, monkeypatch) -> None:
    window = make_window(workflows=True)
    training = window.workflows.training
    training.runner._command = fake_command("--behaviour", "slow")
    training.start_training()
    assert training.is_training()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    assert not window.close() and window.isVisible() and training.is_training()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    assert window.close()
    qtbot.waitUntil(lambda: not training.is_training(), timeout=RUN_TIMEOUT_MS)


def test_a_confusion_matrix_cell_filters_the_grid(make_window, qtbot) -> None:
    window = make_window(workflows=True, predictions=True, per_class=12)
    evaluation = window.workflows.evaluation
    wait_for_evaluation(qtbot, window)
    data = evaluation.evaluation_data()
    cell = evaluation.confusion_model.index(0, 0)
    expected = data.cell_images(data.evaluation, 0, 0)
    assert expected
    evaluation.confusion_view.clicked.emit(cell)
    qtbot.waitUntil(lambda: sorted(grid_ids(window)) == sorted(expected))
    window.show_images(None)
    qtbot.waitUntil(lambda: len(grid_ids(window)) == 24)


def test_use_this_threshold_saves_it_undoably_and_the_views_follow(make_window, qtbot) -> None:
    window = make_window(workflows=True, predictions=True, per_class=12)
    evaluation, model = window.workflows.evaluation, window.session.model
    wait_for_evaluation(qtbot, window)
    saved = evaluation.evaluation_data().evaluation.operating_point.threshold
    qtbot.waitUntil(lambda: model.table.has_predictions)
    decided_before = model.table.predicted.copy()
    evaluation.threshold_slider.setValue(1)  # 0.001: every image is the positive class
    evaluation.use_threshold.click()
    store = window.session.store
    calibration = versions.active_version(store).metrics["calibration"]
    assert (calibration["threshold"], calibration["chosen_on"]) == (0.001, "user")
    qtbot.waitUntil(lambda: shown_threshold(evaluation) == 0.001, timeout=10_000)
    positive = evaluation.evaluation_data().evaluation.decision.positive_index
    predicted = model.table.predicted
    qtbot.waitUntil(lambda: (model.table.predicted[model.table.prediction >= 0] == positive).all())
    assert "set by hand" in evaluation.decision.text()
    window.session.undo_stack.undo()
    calibration = versions.active_version(store).metrics["calibration"]
    assert (calibration["threshold"], calibration["chosen_on"]) == (saved, "validation")
    qtbot.waitUntil(lambda: model.table.predicted is not predicted)
    qtbot.waitUntil(lambda: (model.table.predicted == decided_before).all())
    qtbot.waitUntil(lambda: shown_threshold(evaluation) == saved, timeout=10_000)


def shown_threshold(evaluation) -> float | None:
    data = evaluation.evaluation_data()
    return None if data is None else data.evaluation.operating_point.threshold


def test_the_relabel_queue_opens_its_images_in_the_viewer(make_window, qtbot) -> None:
    window = make_window(workflows=True, predictions=True)
    evaluation = window.workflows.evaluation
    wait_for_evaluation(qtbot, window)
    queue = evaluation.queue_model
    qtbot.waitUntil(lambda: queue.rowCount() > 0)
    first = queue.entries[0].image_id
    assert window.session.store.image(first).path == WRONG_IMAGE  # the disagreement first
    window.show_images([], "nothing")  # a filter hides it: the grid shows everything again
    evaluation.queue_view.activated.emit(queue.index(0, 0))
    assert window.project_view.grid.current_image_id() == first
    qtbot.waitUntil(lambda: window.project_view.viewer.image_id == first)


def test_the_augmentation_preview_follows_the_viewer(make_window, qtbot) -> None:
    window = make_window(workflows=True)
    viewer, augment = window.project_view.viewer, window.workflows.augment
    qtbot.waitUntil(lambda: viewer.pixels is not None, timeout=10_000)
    assert augment._pixels is not None and augment._pixels.shape == viewer.pixels.shape


def test_classify_and_export_dialogs_open_from_the_menu(make_window, qtbot) -> None:
    window = make_window(workflows=True, predictions=True)
    workflows = window.workflows
    workflows.classify_action.trigger()
    assert isinstance(workflows.dialog, ClassifyDialog) and workflows.dialog.isVisible()
    assert workflows.dialog.use_active.isEnabled()  # it knows the project's active model
    workflows.export_action.trigger()
    assert isinstance(workflows.dialog, ExportDialog)
    with qtbot.waitSignal(workflows.dialog.model_exported, timeout=RUN_TIMEOUT_MS):
        workflows.dialog.export_button.click()
    workflows.classify_action.trigger()
    dialog = workflows.dialog
    qtbot.waitUntil(lambda: dialog.model_info.kind == "success", timeout=10_000)
    assert dialog.chosen_model() is not None and dialog.chosen_model().is_file()
    dialog.close()
    assert dialog.isHidden()


def test_heatmaps_export_the_model_once_then_follow_the_viewer(make_window, qtbot) -> None:
    window = make_window(workflows=True, predictions=True)
    viewer, heatmaps = window.project_view.viewer, window.workflows.heatmaps
    qtbot.waitUntil(lambda: viewer.pixels is not None, timeout=10_000)
    assert viewer.heatmap_action.isEnabled() and not viewer.heatmap_visible
    assert "exported when you first ask" in viewer.heatmap_action.toolTip()
    viewer.heatmap_action.trigger()  # H: the first request exports v1 (the fake trainer)
    qtbot.waitUntil(lambda: viewer.heatmap_visible, timeout=RUN_TIMEOUT_MS)
    project = window.session.project_dir
    assert heatmaps.model_file() == exported_model_path(project, "v1")
    assert heatmaps.status.startswith("Heatmaps from") and "CPU" in heatmaps.status
    grid = window.project_view.grid
    other = grid_ids(window)[3]
    grid.select_image(other)
    qtbot.waitUntil(lambda: viewer.image_id == other and viewer.heatmap_visible, timeout=10_000)
    viewer.class_choice.setCurrentIndex(2)  # explain "square" whatever the prediction
    features = window.workflows.features
    window.project_view.panels.setCurrentWidget(features)
    qtbot.waitUntil(
        lambda: features.explanation is not None and features.explanation.explained == 1,
        timeout=10_000,
    )
    assert features.block_choice.count() == 1
    assert features.shown_grid() is not None and not features.picture.pixmap().isNull()
    assert features.prediction.text().startswith("Model decides ")


def test_without_a_model_heatmaps_say_what_to_do(make_window) -> None:
    window = make_window(workflows=True)
    viewer = window.project_view.viewer
    assert not viewer.heatmap_action.isEnabled()
    assert "Train a model" in viewer.heatmap_action.toolTip()
    assert "Train a model" in window.workflows.features.status.text()


def test_a_failed_export_is_explained_and_the_window_lives_on(make_window, qtbot) -> None:
    window = make_window(workflows=True, predictions=True)
    heatmaps = window.workflows.heatmaps
    heatmaps._command = fake_command("--behaviour", "crash")
    heatmaps.export_model()
    qtbot.waitUntil(lambda: not heatmaps.process.is_running, timeout=RUN_TIMEOUT_MS)
    assert heatmaps.status == "No heatmaps: Exporting needs TensorFlow, which is not installed."
    assert not heatmaps.is_ready and window.isVisible()


def test_panel_choices_and_the_last_project_persist(make_window, tmp_path, qtbot) -> None:
    window = make_window(workflows=True, predictions=True)
    project, settings = window.session.project_dir, window.settings
    workflows = window.workflows
    training, evaluation, augment = workflows.training, workflows.evaluation, workflows.augment
    training.model_choice.setCurrentIndex(training.model_choice.findData("seed-cnn"))
    training.advanced.epochs.setValue(7)
    evaluation.split_choice.setCurrentIndex(evaluation.split_choice.findData("val"))
    augment.set_augmentation({**augment.augmentation().to_dict(), "rotation_range": 33.0})
    window.project_view.panels.setCurrentWidget(evaluation)
    assert window.close()

    again = MainWindow(settings=settings)
    qtbot.addWidget(again)
    restored = install_workflows(again, command=fake_command())
    assert restored.training.model_choice.currentData() == "seed-cnn"
    assert restored.training.advanced.epochs.value() == 7
    assert restored.evaluation.split_choice.currentData() == "val"
    assert restored.augment.augmentation().rotation_range == 33.0
    assert again.project_view.panels.currentWidget() is restored.evaluation
    assert again.reopen_last_project() and again.session.project_dir == project
    qtbot.waitUntil(lambda: not again.session.model.is_loading)
    again.close_project_action.trigger()  # closed on purpose: the next start begins fresh
    assert not again.reopen_last_project() and again.session is None


def test_turning_heatmaps_off_stops_preparing_them(make_window, qtbot) -> None:
    window = make_window(workflows=True, predictions=True)
    viewer, heatmaps = window.project_view.viewer, window.workflows.heatmaps
    heatmaps._command = fake_command("--behaviour", "slow-export")
    qtbot.waitUntil(lambda: viewer.pixels is not None, timeout=10_000)
    viewer.heatmap_action.trigger()
    assert heatmaps.process.is_running and "Preparing heatmaps" in heatmaps.status
    viewer.heatmap_action.trigger()  # H again: the user changed their mind
    qtbot.waitUntil(lambda: not heatmaps.process.is_running, timeout=RUN_TIMEOUT_MS)
    assert "stopped" in heatmaps.status and heatmaps.model_file() is None
