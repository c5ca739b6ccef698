"""File > Export labels… and File > Rescan folder, from the window, on worker threads."""

from __future__ import annotations

import csv

from linnaeus.gui.panels.export_labels_dialog import ExportLabelsDialog
from linnaeus.gui.panels.rescan_dialog import RescanDialog
from tests.image_factory import write_image


def test_export_labels_writes_a_csv_then_a_tree_of_copies(make_window, qtbot, tmp_path) -> None:
    window = make_window()
    assert window.export_labels_action.isEnabled()
    window.export_labels_action.trigger()
    dialog = window.findChild(ExportLabelsDialog)
    assert dialog.isVisible() and dialog.destination.text().endswith("-labels.csv")
    table = tmp_path / "out" / "labels.csv"
    table.parent.mkdir()
    dialog.destination.setText(str(table))
    with qtbot.waitSignal(dialog.succeeded, timeout=10_000):
        dialog.start_button.click()
    with table.open(newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    assert len(rows) == 13 and {row[1] for row in rows[1:]} == {"disk", "square"}
    assert "Wrote the labels of 12 images" in dialog.message.text()

    dialog.as_tree.setChecked(True)
    assert dialog.by_split.isEnabled() and dialog.destination.text().endswith("by class")
    tree = tmp_path / "out" / "tree"
    dialog.destination.setText(str(tree))
    with qtbot.waitSignal(dialog.succeeded, timeout=10_000):
        dialog.start_button.click()
    assert len(list((tree / "disk").iterdir())) == 6 and len(list((tree / "square").iterdir())) == 6
    dialog.close()


def test_export_into_the_image_folder_is_refused_with_a_message(make_window, qtbot) -> None:
    window = make_window()
    window.export_labels()
    dialog = window.findChild(ExportLabelsDialog)
    inside = window.session.store.image_root / "labels.csv"
    dialog.destination.setText(str(inside))
    dialog.start_button.click()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=10_000)
    assert "outside the image folder" in dialog.message.text() and not inside.exists()
    dialog.close()


def test_rescan_finds_new_images_and_the_grid_shows_them(make_window, qtbot) -> None:
    window = make_window()
    root = window.session.store.image_root
    write_image(root / "disk" / "new_disk.png", size=(32, 32))
    (root / "square" / "square_000.png").unlink()
    window.rescan_action.trigger()
    dialog = window.findChild(RescanDialog)
    assert dialog.isVisible()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=20_000)
    text = dialog.message.text()
    assert "1 new" in text and "1 no longer there" in text
    qtbot.waitUntil(lambda: not window.session.model.is_loading, timeout=10_000)
    assert window.session.model.total_count == 13  # the vanished one stays listed, as missing
    counts = window.session.model.class_counts()  # readable images only
    by_name = {c.name: counts[c.id] for c in window.session.model.classes()}
    assert by_name == {"disk": 7, "square": 5}
    dialog.close()


def test_a_rescan_can_be_cancelled(make_window, qtbot, tmp_path) -> None:
    window = make_window()
    dialog = RescanDialog(window.session.project_dir, window.session.store.image_root, window)
    qtbot.addWidget(dialog)
    dialog.start()
    assert dialog.cancel_button.isEnabled()
    dialog.cancel()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=20_000)
    assert dialog.message.text()  # stopped, or finished before the cancel was seen
    assert dialog.start_button.isEnabled() and not dialog.cancel_button.isEnabled()
