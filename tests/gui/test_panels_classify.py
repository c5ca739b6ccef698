"""The classify-folder and export dialogs: a tiny real ONNX model, a fake ``linnaeus``."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt

from linnaeus.engine.project import lock as project_lock
from linnaeus.engine.project.versions import exported_model_path
from linnaeus.gui.panels.classify_dialog import ClassifyDialog
from linnaeus.gui.panels.export_dialog import ExportDialog
from tests.gui.fake_trainer import add_trained_version
from tests.gui.fake_trainer import fake_command
from tests.onnx_factory import make_model
from tests.process_factory import held_by_another_process
from tests.training_factory import make_shapes_project

TIMEOUT_MS = 20_000
COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}


@pytest.fixture
def folder(tmp_path):
    """Two images of each colour (in sub-folders), and one file that is not an image."""
    root = tmp_path / "to-classify"
    for name, rgb in COLOURS.items():
        (root / name).mkdir(parents=True)
        for n in range(2):
            image = np.zeros((20 + n, 24, 3), np.uint8)
            image[:] = rgb
            cv2.imwrite(str(root / name / f"{name}{n}.png"), image[..., ::-1])
    (root / "broken.png").write_bytes(b"not an image at all")
    return root


def ready_dialog(qtbot, dialog: ClassifyDialog) -> ClassifyDialog:
    """The dialog, once it has read the model it starts with (if any)."""
    qtbot.addWidget(dialog)
    if dialog.chosen_model() is not None:
        qtbot.waitUntil(lambda: dialog.model_info.kind in ("success", "error"), timeout=TIMEOUT_MS)
    return dialog


def choose_file(qtbot, dialog: ClassifyDialog, path) -> None:
    dialog.use_file.setChecked(True)
    dialog.model_path.setText(str(path))
    dialog.model_path.editingFinished.emit()
    qtbot.waitUntil(lambda: dialog.model_info.kind in ("success", "error"), timeout=TIMEOUT_MS)


def test_classify_writes_the_csv_sorts_copies_and_lists_results(qtbot, tmp_path, folder):
    model = make_model(tmp_path / "colours.onnx")
    dialog = ready_dialog(qtbot, ClassifyDialog())
    choose_file(qtbot, dialog, model)
    assert dialog.model_info.kind == "success" and "red, green, blue" in dialog.model_info.text()
    dialog.folder.setText(str(folder))
    assert dialog.csv_path.text() == str(tmp_path / "to-classify_predictions.csv")
    dialog.sort.setChecked(True)
    with qtbot.waitSignal(dialog.classification_finished, timeout=TIMEOUT_MS) as finished:
        dialog.classify_button.click()
    assert finished.args == [str(tmp_path / "to-classify_predictions.csv")]
    with open(finished.args[0], encoding="utf-8", newline="") as handle:
        rows = {row["path"]: row for row in csv.DictReader(handle)}
    assert len(rows) == 7
    for name in COLOURS:
        assert rows[f"{name}/{name}0.png"]["label"] == name
    assert rows["broken.png"]["label"] == "" and rows["broken.png"]["error"]
    sorted_folder = tmp_path / "to-classify_sorted"
    assert sorted(p.name for p in (sorted_folder / "red").iterdir()) == ["red0.png", "red1.png"]
    assert dialog.results_model.rowCount() == 7
    assert "Classified 6 images" in dialog.message.text() and "1 could not be read" in (
        dialog.message.text()
    )
    dialog.results.sortByColumn(2, Qt.SortOrder.DescendingOrder)
    top = dialog.sorted_results.index(0, 2).data()
    bottom = dialog.sorted_results.index(6, 2).data()
    assert top != "—" and bottom == "—"  # the unreadable file sorts last


def test_a_model_from_another_tool_is_refused_with_the_reason(qtbot, tmp_path, folder):
    import onnx
    from onnx import TensorProto
    from onnx import helper

    tensor = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "other-tool",
        [tensor("x", TensorProto.FLOAT, [1])],
        [tensor("y", TensorProto.FLOAT, [1])],
    )
    model = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph), model)
    dialog = ready_dialog(qtbot, ClassifyDialog())
    choose_file(qtbot, dialog, model)
    dialog.folder.setText(str(folder))
    assert dialog.model_info.kind == "error"
    assert "not a Linnaeus model" in dialog.model_info.text()
    assert not dialog.classify_button.isEnabled()


def test_results_are_never_written_into_the_image_folder(qtbot, tmp_path, folder):
    dialog = ready_dialog(qtbot, ClassifyDialog())
    choose_file(qtbot, dialog, make_model(tmp_path / "colours.onnx"))
    dialog.folder.setText(str(folder))
    dialog.csv_path.setText(str(folder / "inside.csv"))
    dialog.classify_button.click()
    qtbot.waitUntil(lambda: dialog.message.kind == "error", timeout=TIMEOUT_MS)
    assert "never writes into your image folder" in dialog.message.text()
    assert not (folder / "inside.csv").exists()


@pytest.fixture
def store(tmp_path):
    project = make_shapes_project(tmp_path, {"disk": 10, "square": 10})
    add_trained_version(project)
    yield project
    project.close()


def test_export_then_classify_with_the_active_model(qtbot, store, folder):
    dialog = ExportDialog(store, command=fake_command())
    qtbot.addWidget(dialog)
    expected = exported_model_path(store.project_dir, "v1")
    assert dialog.onnx_path.text() == str(expected)
    with qtbot.waitSignal(dialog.model_exported, timeout=TIMEOUT_MS) as exported:
        dialog.export_button.click()
        assert dialog.is_running() and not dialog.export_button.isEnabled()
    assert exported.args == [str(expected)] and expected.is_file()
    assert "Exported v1" in dialog.result.text() and "2.4e-07" in dialog.result.text()

    classify = ready_dialog(qtbot, ClassifyDialog(store))
    assert classify.use_active.isChecked() and classify.chosen_model() == expected
    assert classify.model_info.kind == "success" and "disk, square" in classify.model_info.text()


def test_the_active_model_must_be_exported_first(qtbot, store):
    dialog = ClassifyDialog(store)
    qtbot.addWidget(dialog)
    assert dialog.use_active.isChecked() and not dialog.export_button.isHidden()
    assert "not been exported" in dialog.model_info.text()


def test_an_export_while_another_process_writes_says_who(qtbot, store, monkeypatch):
    dialog = ExportDialog(store, command=fake_command())
    qtbot.addWidget(dialog)
    with held_by_another_process(store.project_dir, "training v2") as holder:
        dialog.export_button.click()  # checked before it starts
        assert not dialog.is_running() and dialog.result.kind == "error"
        assert dialog.result.text().startswith("This project is busy: training v2 since ")
        monkeypatch.setattr(project_lock, "busy_message", lambda project: None)
        dialog.export_button.click()  # the other process started in between: the child says
        qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT_MS)
    text = dialog.result.text()
    assert dialog.result.kind == "error" and text.startswith("This project is busy: training v2")
    assert f"(process {holder.pid} on this computer). Wait for it to finish" in text
    assert not Path(dialog.onnx_path.text()).exists()


def test_report_and_export_errors_are_shown(qtbot, store, tmp_path):
    dialog = ExportDialog(store, command=fake_command())
    qtbot.addWidget(dialog)
    dialog.report_path.setText(str(tmp_path / "card.html"))
    dialog.write_report()
    qtbot.waitUntil(lambda: dialog.result.kind == "success", timeout=TIMEOUT_MS)
    assert (tmp_path / "card.html").is_file() and "Wrote the report of v1" in dialog.result.text()

    failing = (
        "import sys; print('linnaeus: error: v1 has no saved model.', file=sys.stderr); sys.exit(1)"
    )
    dialog._command = lambda arguments: (sys.executable, ["-c", failing])
    dialog.export_model()
    qtbot.waitUntil(lambda: dialog.result.kind == "error", timeout=TIMEOUT_MS)
    assert dialog.result.text() == "v1 has no saved model."


def test_a_running_export_can_be_cancelled(qtbot, store):
    dialog = ExportDialog(
        store, command=lambda a: (sys.executable, ["-c", "import time; time.sleep(60)"])
    )
    qtbot.addWidget(dialog)
    dialog.export_model()
    assert dialog.cancel_button.isVisible() or dialog.is_running()
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT_MS)
    assert "cancelled" in dialog.result.text()


def test_typing_a_folder_proposes_destinations_only_beside_an_existing_one(qtbot, folder):
    """Typing "/t…" once proposed "/t_sorted" at the file-system root (issue 16)."""
    dialog = ready_dialog(qtbot, ClassifyDialog())
    typed = ""
    for letter in str(folder):
        typed += letter
        dialog.folder.setText(typed)
        for edit in (dialog.csv_path, dialog.sort_path):
            assert Path(edit.text()).parent != Path("/") if edit.text() else True
    assert dialog.csv_path.text() == str(folder.parent / "to-classify_predictions.csv")
    assert dialog.sort_path.text() == str(folder.parent / "to-classify_sorted")
    dialog.folder.setText(str(folder) + "x")  # no such folder: the proposals go
    assert dialog.csv_path.text() == "" and dialog.sort_path.text() == ""


def test_a_destination_the_user_chose_is_kept(qtbot, folder, tmp_path):
    dialog = ready_dialog(qtbot, ClassifyDialog())
    dialog.sort_path.setText(str(tmp_path / "mine"))
    dialog.folder.setText(str(folder))
    assert dialog.sort_path.text() == str(tmp_path / "mine")
    assert dialog.csv_path.text() == str(folder.parent / "to-classify_predictions.csv")
