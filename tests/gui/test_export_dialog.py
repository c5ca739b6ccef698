"""The Export dialog after an export: nothing squashed, and the int8 advice says which
file to classify with (a fake ``linnaeus``; no TensorFlow)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QAbstractButton
from PySide6.QtWidgets import QCheckBox

from linnaeus.gui.panels.export_dialog import ExportDialog
from linnaeus.gui.panels.export_dialog import export_summary
from linnaeus.gui.panels.export_dialog import int8_advice
from tests.gui.fake_trainer import add_trained_version
from tests.gui.fake_trainer import fake_command
from tests.training_factory import make_shapes_project

TIMEOUT_MS = 20_000


@pytest.fixture
def store(tmp_path):
    project = make_shapes_project(tmp_path, {"disk": 10, "square": 10})
    add_trained_version(project)
    yield project
    project.close()


def unclipped(dialog: ExportDialog) -> list[str]:
    """The buttons and check boxes shown smaller than they need (text cut)."""
    cut = []
    for widget in dialog.findChildren(QAbstractButton):
        if widget.isVisible():
            need = widget.minimumSizeHint()
            if widget.height() < need.height() or widget.width() < need.width():
                cut.append(f"{widget.text()!r} {widget.size().toTuple()} < {need.toTuple()}")
    return cut


@pytest.mark.parametrize("int8", [False, True])
def test_after_an_export_the_buttons_and_check_box_keep_their_size(qtbot, store, int8):
    """The dialog squashed after an export: the outcome's wrapped text took the height
    the buttons and the int8 check box needed (issue 16)."""
    dialog = ExportDialog(store, command=fake_command())
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert unclipped(dialog) == []
    dialog.int8.setChecked(int8)
    with qtbot.waitSignal(dialog.model_exported, timeout=TIMEOUT_MS):
        dialog.export_button.click()
    qtbot.waitUntil(lambda: dialog.show_button.isVisible(), timeout=TIMEOUT_MS)
    qtbot.wait(50)  # the layout settles
    assert dialog.result.isVisible() and "Exported v1" in dialog.result.text()
    assert unclipped(dialog) == []
    label = dialog.result.label
    assert label.height() >= label.heightForWidth(label.width())  # every line of it shows
    assert dialog.height() >= dialog.layout().totalMinimumSize().height()
    if int8:
        assert "classify with" in dialog.result.text()


def test_the_int8_check_box_text_is_not_cut_in_a_narrow_dialog(qtbot, store):
    dialog = ExportDialog(store, command=fake_command())
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.resize(200, 200)  # the layout refuses to go below what its contents need
    qtbot.wait(20)
    box = dialog.findChild(QCheckBox)
    assert box.width() >= box.minimumSizeHint().width()


def test_a_big_int8_loss_says_to_classify_with_the_float_model(tmp_path) -> None:
    int8_file, float_file = tmp_path / "p-v2-int8.onnx", tmp_path / "p-v2.onnx"
    advice = int8_advice(-0.04, int8_file, float_file, float_exists=False)
    assert "int8 is 4.0 points less accurate" in advice and "float model, p-v2.onnx" in advice
    assert "export again without int8" in advice
    assert "export again" not in int8_advice(-0.04, int8_file, float_file, float_exists=True)
    small = int8_advice(-0.004, int8_file, float_file, float_exists=False)
    assert small.startswith("Within 1 point") and "p-v2-int8.onnx" in small
    assert int8_advice(None, int8_file, float_file, float_exists=False) == ""
    result = {"model_version": "v2", "onnx": str(int8_file), "int8": True,
              "int8_accuracy_change": -0.04, "size_bytes": 1000, "seconds": 3}  # fmt: skip
    text = export_summary(result, advice)
    assert "accuracy change -4.0 points.\n" in text and text.endswith(advice)
    elsewhere = int8_advice(-0.04, tmp_path / "usb" / "m.onnx", float_file, float_exists=True)
    assert str(float_file) in elsewhere  # another folder: the whole path
    assert Path(result["onnx"]).name in text
