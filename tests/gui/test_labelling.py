"""Labelling: keys, batch relabel, undo/redo through the store, classes."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QItemSelection
from PySide6.QtCore import QItemSelectionModel
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox
from PySide6.QtWidgets import QPushButton

from linnaeus.engine.project.store import ProjectStore
from linnaeus.gui.class_bar import class_key
from linnaeus.gui.image_model import ImageRole
from linnaeus.gui.status_bar import counts_text
from tests.gui.browse_factory import WRONG_IMAGE
from tests.gui.browse_factory import window_factory


@pytest.fixture
def make_window(tmp_path, qtbot):
    with window_factory(tmp_path, qtbot) as make:
        yield make


def _stored_label(window, image_id: int) -> str | None:
    """The label as another program sees it: through a new connection."""
    with ProjectStore.open(window.session.project_dir) as store:
        return store.image(image_id).label


def _press(window, key: Qt.Key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    QTest.keyClick(window.project_view.grid, key, modifier)


def test_key_labels_the_image_moves_on_and_undo_redo_persist(make_window) -> None:
    window = make_window()
    grid = window.project_view.grid
    grid.select_row(0)
    first = grid.current_image_id()
    assert _stored_label(window, first) == "disk"
    _press(window, Qt.Key.Key_2)  # "square" has key 2
    assert _stored_label(window, first) == "square"
    assert grid.currentIndex().row() == 1  # moved to the next image
    assert grid.model().index(0).data(ImageRole.LABEL) == "square"
    _press(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _stored_label(window, first) == "disk"
    assert grid.model().index(0).data(ImageRole.LABEL) == "disk"
    _press(
        window,
        Qt.Key.Key_Z,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    assert _stored_label(window, first) == "square"
    history = window.session.store.history(first)
    assert [h.action for h in history[:3]] == ["redo", "undo", "set"]


def test_relabelling_one_image_twice_is_one_undo_step(make_window) -> None:
    window = make_window()
    grid, stack = window.project_view.grid, window.session.undo_stack
    grid.select_row(0)
    first = grid.current_image_id()
    _press(window, Qt.Key.Key_2)
    _press(window, Qt.Key.Key_Left)
    _press(window, Qt.Key.Key_1)
    _press(window, Qt.Key.Key_Left)
    _press(window, Qt.Key.Key_2)
    assert stack.count() == 1 and _stored_label(window, first) == "square"
    stack.undo()
    assert _stored_label(window, first) == "disk"
    stack.redo()
    assert _stored_label(window, first) == "square"


def test_pressing_the_label_an_image_has_changes_nothing(make_window) -> None:
    window = make_window()
    window.project_view.grid.select_row(0)
    _press(window, Qt.Key.Key_1)  # it is a disk already
    assert window.session.undo_stack.count() == 0


def test_batch_relabel_is_one_undo_step(make_window) -> None:
    window = make_window()
    grid, model, stack = window.project_view.grid, window.session.model, window.session.undo_stack
    selection = QItemSelection(model.index(0), model.index(3))
    grid.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
    ids = grid.selected_image_ids()
    assert len(ids) == 4 and window.status.selection.text() == "4 selected"
    _press(window, Qt.Key.Key_2)
    assert {_stored_label(window, i) for i in ids} == {"square"}
    assert stack.count() == 1
    assert "square 10" in window.status.per_class.text()
    _press(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert {_stored_label(window, i) for i in ids} == {"disk"}
    assert grid.selected_image_ids() == ids  # a batch keeps its selection


def test_backspace_unlabels_and_enter_accepts_the_suggestion(make_window) -> None:
    window = make_window(predictions=True)
    grid, model = window.project_view.grid, window.session.model
    wrong = model.store.image_by_path(WRONG_IMAGE).id
    grid.select_image(wrong)
    _press(window, Qt.Key.Key_Return)
    assert _stored_label(window, wrong) == "square"  # the model's prediction
    assert window.session.store.history(wrong)[0].source == "model-suggestion"
    assert not model.index(model.row_of(wrong)).data(ImageRole.DISAGREES)
    grid.select_image(wrong)
    _press(window, Qt.Key.Key_Backspace)
    assert _stored_label(window, wrong) is None
    assert "unlabelled 1" in window.status.per_class.text()


def test_class_buttons_label_and_classes_change_undoably(make_window) -> None:
    window = make_window()
    session, bar = window.session, window.project_view.class_bar
    store = session.store
    session.add_class("triangle")
    assert [c.name for c in store.classes()] == ["disk", "square", "triangle"]
    assert len(bar.class_actions) == 3 and class_key(store.class_named("triangle")) == "3"
    window.project_view.grid.select_row(0)
    first = window.project_view.grid.current_image_id()
    bar.class_actions[2].trigger()  # the "triangle" button
    assert _stored_label(window, first) == "triangle"

    session.rename_class("triangle", "tri")
    assert store.image(first).label == "tri"
    session.recolour_class("tri", "#123456")
    assert store.class_named("tri").colour == "#123456"
    session.merge_classes("tri", "square")
    assert store.image(first).label == "square" and "tri" not in [c.name for c in store.classes()]
    session.delete_class("disk")
    assert store.image_count() == 12 and len(store.images(label="square")) == 7
    assert "unlabelled 5" in window.status.per_class.text()
    assert [a.text() for a in bar.class_actions] == ["square"]

    stack = session.undo_stack
    stack.undo()  # delete
    assert len(store.images(label="disk")) == 5 and store.class_named("disk")
    stack.undo()  # merge
    assert store.image(first).label == "tri" and store.class_named("tri").colour == "#123456"
    stack.undo()  # recolour
    stack.undo()  # rename
    assert store.image(first).label == "triangle"
    stack.undo()  # label
    stack.undo()  # add
    assert {c.name for c in store.classes()} == {"disk", "square"}
    assert _stored_label(window, first) == "disk"


def test_refused_class_change_is_reported_not_raised(make_window, qtbot) -> None:
    window = make_window()
    with qtbot.waitSignal(window.session.error) as error:
        window.session.add_class("square")
    assert "already" in error.args[0]
    box = window.project_view.findChild(QMessageBox)
    assert box is not None and box.isVisible() and "already" in box.text()
    box.close()


def test_counts_text() -> None:
    from linnaeus.engine.project.store import ClassInfo

    classes = [ClassInfo(1, "cat", 0, "#000000", "1"), ClassInfo(2, "dog", 1, "#ffffff", "2")]
    assert counts_text(5, 1200, classes, {1: 1000, -1: 3}, 0) == (
        "Showing 5 of 1,200 images",
        "cat 1,000 · dog 0 · unlabelled 3",
        "",
    )


def test_long_class_names_leave_room_for_the_counts(qtbot) -> None:
    """With folder names like "Potato___Early_blight" the counts were pushed out of the
    class bar at 1366 x 768 (seen in the screenshots, issue 16)."""
    from linnaeus.engine.project.store import ClassInfo
    from linnaeus.gui.class_bar import ClassBar

    bar = ClassBar()
    qtbot.addWidget(bar)
    names = ["Potato___Early_blight", "Potato___Late_blight", "Potato___healthy"]
    classes = [ClassInfo(i + 1, n, i, "#0072B2", None) for i, n in enumerate(names)]
    bar.set_classes(classes, {1: 999, 2: 1000, 3: 151})
    bar.resize(200, 300)
    bar.show()
    qtbot.wait(20)
    for label in bar._count_labels:
        assert label.isVisible() and label.width() >= label.sizeHint().width()
        assert label.geometry().right() <= bar.width()
    early = bar.findChild(QPushButton, "class-Potato___Early_blight")
    assert early.text().strip().startswith("Early") and "Potato" not in early.text()
    assert "Potato___Early_blight" in early.toolTip()
