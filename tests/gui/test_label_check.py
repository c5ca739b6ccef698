"""The Check labels list in the window: double-click opens the image in the Image
view with the heatmap of the suggested class; A accepts the suggestion, undoably."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from linnaeus.engine.project import versions
from linnaeus.engine.project.predictions import save_out_of_fold_predictions
from linnaeus.gui.panels.evaluation_data import QueueEntry
from linnaeus.gui.panels.label_check import LabelCheckView
from linnaeus.gui.panels.label_check import entry_tooltip
from tests.gui.browse_factory import CLASSES
from tests.gui.browse_factory import WRONG_IMAGE
from tests.gui.browse_factory import window_factory


@pytest.fixture
def make_window(tmp_path, qtbot):
    with window_factory(tmp_path, qtbot) as make:
        yield make


def judged_window(make_window, qtbot):
    """A window whose active version kept held-out predictions that call
    `WRONG_IMAGE` (labelled disk) a square; its Evaluate tab on screen."""
    window = make_window(workflows=True, predictions=True)
    store = window.session.store
    version = versions.active_version(store)
    images = store.images(status="ok")
    labels = np.array([CLASSES.index(i.label) for i in images])
    wrong = np.array([i.path == WRONG_IMAGE for i in images])
    believed = np.where(wrong, 1 - labels, labels)
    probabilities = np.where(np.eye(2)[believed] > 0, 0.9, 0.1)
    save_out_of_fold_predictions(version, [i.id for i in images], labels, probabilities)
    evaluation = window.workflows.evaluation
    window.project_view.panels.setCurrentWidget(evaluation)
    evaluation.refresh()

    def judged() -> None:
        data = evaluation.evaluation_data()
        assert data is not None and data.held_out, evaluation.message.label.text()

    qtbot.waitUntil(judged, timeout=20_000)
    qtbot.waitUntil(lambda: evaluation.queue_model.rowCount() > 0)
    return window, store.image_by_path(WRONG_IMAGE).id


def test_double_click_opens_the_image_with_the_suggested_class_heatmap(make_window, qtbot) -> None:
    window, wrong = judged_window(make_window, qtbot)
    evaluation, viewer = window.workflows.evaluation, window.project_view.viewer
    assert evaluation.evaluation_data().held_out
    assert "never saw the image" in evaluation.label_check.note.text()
    assert evaluation.tabs.tabText(0) == "Check labels (1)"
    first = evaluation.queue_model.entries[0]
    assert (first.image_id, first.label, first.suggested) == (wrong, "disk", "square")
    view = evaluation.queue_view
    position = view.visualRect(evaluation.queue_model.index(0, 1)).center()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=position)
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=position)
    assert window.project_view.panels.currentWidget() is viewer  # the Image view
    qtbot.waitUntil(lambda: viewer.image_id == wrong, timeout=10_000)
    assert window.project_view.grid.current_image_id() == wrong
    assert viewer.heatmap_wanted and viewer.class_choice.currentText() == "square"


def test_the_accept_key_relabels_as_suggested_and_undo_brings_the_row_back(
    make_window, qtbot
) -> None:
    window, wrong = judged_window(make_window, qtbot)
    evaluation, store = window.workflows.evaluation, window.session.store
    view = evaluation.queue_view
    view.setFocus()
    view.selectRow(0)
    qtbot.keyClick(view, Qt.Key.Key_A)
    assert store.image(wrong).label == "square"
    assert store.history(wrong, limit=1)[0].source == "model-suggestion"
    assert wrong not in [e.image_id for e in evaluation.queue_model.entries]
    assert evaluation.tabs.tabText(0) == "Check labels"
    assert view.currentIndex().row() == 0  # the next row is selected, for the next A
    window.session.undo_stack.undo()
    assert store.image(wrong).label == "disk"
    assert evaluation.queue_model.entries[0].image_id == wrong
    assert evaluation.tabs.tabText(0) == "Check labels (1)"


def test_accepting_a_label_the_model_agrees_with_changes_nothing(qtbot) -> None:
    view = LabelCheckView()
    qtbot.addWidget(view)
    agree = QueueEntry(7, "disk/a.png", "disk", "disk", 0.05, False, 0.95)
    view.set_entries([agree], held_out=True)
    view.table.selectRow(0)
    with qtbot.assertNotEmitted(view.suggestion_accepted):
        view.accept_current()
    assert "agree with disk (95%)" in entry_tooltip(agree, True)


def test_the_selected_row_is_said_in_words_below_the_list(qtbot) -> None:
    view = LabelCheckView()
    qtbot.addWidget(view)
    wrong = QueueEntry(3, "disk/b.png", "disk", "square", 0.9, True, 0.9)
    view.set_entries([wrong], held_out=True)
    assert view.table.currentIndex().row() == 0  # selected at once: A works
    assert view.details.text().startswith("disk/b.png: Labelled disk; models that never saw")
    assert view.model.index(0, 3).data() == "square"
