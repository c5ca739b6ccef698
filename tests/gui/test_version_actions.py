"""Model versions renamed, annotated and deleted from the Train tab (list and Model menu)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from PySide6.QtWidgets import QInputDialog
from PySide6.QtWidgets import QMessageBox

from linnaeus.engine.project import versions
from linnaeus.gui.panels.model_versions import NOTE_COLUMN
from linnaeus.gui.panels.training_panel import TrainingPanel
from linnaeus.gui.panels.version_actions import delete_question
from linnaeus.gui.version_commands import SetThresholdCommand
from tests.gui.browse_factory import add_predictions
from tests.gui.browse_factory import window_factory
from tests.training_factory import make_shapes_project


@pytest.fixture
def store(tmp_path):
    project = make_shapes_project(tmp_path, {"disk": 3, "square": 3})
    yield project
    project.close()


def add_version(store, *, active: bool = False) -> int:
    version = versions.create_version(
        store, kind="quick", config={}, augmentation={}, classes=["disk", "square"], labels={}
    )
    versions.update_version(store, version.id, status="done")
    if active:
        versions.set_active(store, version.id)
    return version.id


def make_panel(qtbot, store) -> TrainingPanel:
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.set_project(store)
    return panel


def answer(monkeypatch, *, text=None, note=None, confirm=None) -> list[str]:
    """Answer the dialogs the actions open; returns the questions asked."""
    asked: list[str] = []
    if text is not None:
        monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: (text, True))
    if note is not None:
        monkeypatch.setattr(QInputDialog, "getMultiLineText", lambda *a, **k: (note, True))
    if confirm is not None:

        def question(_parent, _title, body, *_args):
            asked.append(body)
            return QMessageBox.StandardButton.Yes if confirm else QMessageBox.StandardButton.Cancel

        monkeypatch.setattr(QMessageBox, "question", question)
    return asked


def test_the_context_menu_renames_and_annotates_a_version(qtbot, store, monkeypatch) -> None:
    v1 = add_version(store, active=True)
    panel = make_panel(qtbot, store)
    panel.versions_view.selectRow(0)
    menu = panel.version_actions.context_menu()
    titles = [a.text() for a in menu.actions() if a.text()]
    assert titles == ["Make active", "Rename v1…", "Edit note on v1…", "Delete v1…"]
    answer(monkeypatch, text="baseline", note="Before ward B was relabelled.")
    panel.version_actions.rename_action.trigger()
    panel.version_actions.note_action.trigger()
    model = panel.versions_model
    assert model.index(0, 0).data() == "v1 · baseline"
    assert model.index(0, NOTE_COLUMN).data() == "Before ward B was relabelled."
    assert versions.get_version(store, v1).note == "Before ward B was relabelled."


def test_deleting_a_version_asks_and_keeps_the_active_one(qtbot, store, monkeypatch) -> None:
    v1, v2 = add_version(store), add_version(store, active=True)
    panel = make_panel(qtbot, store)
    panel.versions_view.selectRow(1)  # newest first: v1
    asked = answer(monkeypatch, confirm=False)
    panel.version_actions.delete_action.trigger()
    assert len(asked) == 1 and "Delete v1?" in asked[0]
    assert panel.versions_model.rowCount() == 2  # refused: nothing happened
    answer(monkeypatch, confirm=True)
    with qtbot.assertNotEmitted(panel.active_model_changed):
        panel.version_actions.delete_action.trigger()
    assert [v.id for v in panel.versions_model.versions] == [v2]
    assert "Deleted v1" in panel.result.text()
    assert not (store.project_dir / "models" / str(v1)).exists()


def test_deleting_the_active_version_says_which_becomes_active(qtbot, store, monkeypatch) -> None:
    v1 = add_version(store)
    versions.rename_version(store, v1, "older")
    add_version(store, active=True)
    panel = make_panel(qtbot, store)
    assert panel.version_actions.chosen().name == "v2"  # nothing selected: the active one
    asked = answer(monkeypatch, confirm=True)
    with qtbot.waitSignal(panel.active_model_changed) as changed:
        panel.version_actions.delete_action.trigger()
    assert (
        "v2 is the active model" in asked[0] and "v1 · older becomes the active model" in asked[0]
    )
    assert changed.args == ["v1"] and versions.active_version(store).id == v1
    assert panel.versions_model.index(0, 7).data() == "● active"


def test_delete_question_for_the_last_version_says_none_will_be_active(store) -> None:
    version = versions.get_version(store, add_version(store, active=True))
    text = delete_question(version, active=True, successor=None)
    assert "no model will be active" in text and "your images" in text


def test_the_model_menu_offers_the_same_actions(tmp_path, qtbot, monkeypatch) -> None:
    with window_factory(tmp_path, qtbot) as make:
        window = make(workflows=True, predictions=True)
        model_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Model")
        texts = [a.text() for a in model_menu.actions()]
        assert {"Rename v1…", "Edit note on v1…", "Delete v1…"} <= set(texts)
        answer(monkeypatch, confirm=True)
        grid_predicted = window.session.model.table.has_predictions
        assert grid_predicted
        actions = window.workflows.training.version_actions
        actions.delete_action.trigger()  # the only version, and active: none is after
        qtbot.waitUntil(lambda: not window.session.model.is_loading)
        assert not window.session.model.table.has_predictions
        assert window.workflows.training.versions_model.rowCount() == 0


def test_no_delete_while_a_training_runs(qtbot, store, monkeypatch) -> None:
    add_version(store, active=True)
    panel = make_panel(qtbot, store)
    monkeypatch.setattr(type(panel.runner), "is_running", property(lambda _runner: True))
    panel.version_actions.update_actions()
    assert not panel.version_actions.delete_action.isEnabled()


def test_undoing_a_threshold_of_a_deleted_version_says_why_it_cannot(store) -> None:
    version_id = add_predictions(store)
    failures: list[str] = []
    command = SetThresholdCommand(store, version_id, 0.3, lambda _id: None, failures.append)
    command.redo()
    versions.delete_version(store, version_id, replace_active=True)
    command.undo()  # no exception escapes into Qt's event loop
    assert failures == [f"This project has no model version v{version_id}. Its threshold "
                        "cannot be changed any more."]  # fmt: skip


def test_the_delete_key_in_the_list_deletes_the_selected_version(qtbot, store, monkeypatch) -> None:
    add_version(store)
    add_version(store, active=True)
    panel = make_panel(qtbot, store)
    panel.show()
    panel.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is panel)
    panel.versions_view.selectRow(1)
    panel.versions_view.setFocus()
    asked = answer(monkeypatch, confirm=True)
    qtbot.keyClick(panel.versions_view, Qt.Key.Key_Delete)
    assert "Delete v1?" in asked[0] and panel.versions_model.rowCount() == 1
