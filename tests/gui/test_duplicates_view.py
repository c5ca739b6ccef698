"""The "Show duplicates" filter: copies group by group, leaking groups first."""

from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QSettings
from PySide6.QtCore import Qt

from linnaeus.engine.dataset.importer import import_images
from linnaeus.gui.main_window import MainWindow
from tests.training_factory import make_shapes_project


def project_with_copies(folder: Path) -> Path:
    """Six disks and six squares; one disk with an exact copy in another split (a
    leak), one square with a resized JPEG copy."""
    store = make_shapes_project(folder, {"disk": 6, "square": 6})
    root = store.image_root
    (root / "disk" / "disk_000_copy.png").write_bytes((root / "disk" / "disk_000.png").read_bytes())
    square = Image.open(root / "square" / "square_001.png").resize((48, 48))
    buffer = io.BytesIO()
    square.save(buffer, "JPEG", quality=80)
    (root / "square" / "square_001_big.jpg").write_bytes(buffer.getvalue())
    import_images(store)
    copy = store.image_by_path("disk/disk_000_copy.png")
    original = store.image_by_path("disk/disk_000.png")
    store.set_splits({copy.id: "test" if original.split != "test" else "train"}, "random")
    project = store.project_dir
    store.close()
    return project


def test_show_duplicates_lists_the_groups_leak_first(tmp_path, qtbot) -> None:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    window.resize(1200, 800)
    window.show()
    assert window.open_project(project_with_copies(tmp_path))
    qtbot.waitUntil(lambda: not window.session.model.is_loading, timeout=10_000)
    model = window.session.model
    filters = window.project_view.filter_bar
    assert model.rowCount() == 14

    qtbot.mouseClick(filters.duplicates, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: model.rowCount() == 4, timeout=10_000)
    shown = [model.image_path(model.image_id(row)).name for row in range(model.rowCount())]
    assert shown == [
        "disk_000.png", "disk_000_copy.png",  # the leak first
        "square_001.png", "square_001_big.jpg",
    ]  # fmt: skip
    text = filters.chosen.text()
    assert "4 images" in text and "2 groups of copies" in text
    assert "1 across " in text and "(a leak; shown first)" in text
    assert filters.duplicates.isEnabled()
    if os.environ.get("LINNAEUS_GRAB"):  # to look at it: LINNAEUS_GRAB=window.png pytest ...
        window.grab().save(os.environ["LINNAEUS_GRAB"])

    qtbot.mouseClick(filters.reset, Qt.MouseButton.LeftButton)
    assert model.rowCount() == 14
    window.close()


def test_the_train_tab_says_when_a_training_leaked() -> None:
    from linnaeus.engine.cli.protocol import TrainingDone
    from linnaeus.gui.panels.training_texts import summary_text

    text = summary_text(TrainingDone("v2", warnings=("Leak: 3 groups of duplicate images.",)))
    assert text.endswith(" Leak: 3 groups of duplicate images.")
