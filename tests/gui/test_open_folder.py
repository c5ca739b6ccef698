"""Making a project from a folder: the check before, the move after, the project dir rules."""

from __future__ import annotations

from pathlib import Path

import pytest
import shiboken6

from linnaeus.engine.project.store import ProjectStore
from linnaeus.gui.open_folder_dialog import OpenFolderDialog
from linnaeus.gui.open_folder_dialog import project_dir_problem
from linnaeus.gui.open_folder_dialog import suggest_project_dir
from tests.image_factory import write_image


def _folder(root: Path) -> Path:
    for split, per_class in (("train", 3), ("test", 1)):
        for label in ("cat", "dog"):
            (root / split / label).mkdir(parents=True)
            for n in range(per_class):
                write_image(root / split / label / f"{label}{n}.png", seed=n)
    (root / "train" / "cat" / "broken.png").write_bytes(b"")
    return root


def test_dialog_checks_the_folder_then_creates_the_project(qtbot, tmp_path) -> None:
    folder = _folder(tmp_path / "pets")
    dialog = OpenFolderDialog(folder)
    qtbot.addWidget(dialog)
    assert dialog.destination.text().endswith("pets")
    dialog.show()  # starts the check
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=20_000)
    assert "split folders" in dialog.layout_text.text()
    assert "1 files cannot be read" in dialog.unreadable_title.text()
    assert dialog.unreadable.item(0, 0).text() == "train/cat/broken.png"
    assert "empty" in dialog.unreadable.item(0, 1).text()
    headers = [
        dialog.counts.horizontalHeaderItem(c).text() for c in range(dialog.counts.columnCount())
    ]
    assert headers[0] == "Class" and "Test" in headers and headers[-1] == "Total"
    total_row = dialog.counts.rowCount() - 1
    assert dialog.counts.item(total_row, len(headers) - 1).text() == "8"
    assert not (tmp_path / "pets (Linnaeus project)").exists()  # nothing made yet
    dialog.destination.setText(str(folder / "inside"))
    assert not dialog.create_button.isEnabled()
    dialog.destination.setText(str(tmp_path / "projects" / "pets"))
    assert dialog.create_button.isEnabled()
    dialog.create_button.click()
    assert dialog.project_dir == tmp_path / "projects" / "pets"
    with ProjectStore.open(dialog.project_dir) as store:
        assert store.image_count() == 9 and store.image_root == folder
    assert not list(folder.rglob("linnaeus.db"))  # the image folder is untouched


def test_cancelling_the_check_leaves_nothing_behind(qtbot, tmp_path) -> None:
    folder = _folder(tmp_path / "pets")
    dialog = OpenFolderDialog(folder)
    qtbot.addWidget(dialog)
    staging = dialog._staging.parent
    dialog.show()
    dialog.reject()
    qtbot.waitUntil(lambda: not staging.exists(), timeout=20_000)
    assert dialog.project_dir is None


def test_a_closed_dialog_still_cleans_up_its_check(qtbot, tmp_path) -> None:
    dialog = OpenFolderDialog(_folder(tmp_path / "pets"))
    staging = dialog._staging.parent
    dialog.show()
    dialog.reject()
    shiboken6.delete(dialog)  # the dialog is gone before its check has stopped
    qtbot.waitUntil(lambda: not staging.exists(), timeout=20_000)


def test_patient_pattern_and_split_sizes_are_checked_again(qtbot, tmp_path) -> None:
    folder = tmp_path / "scans"
    for label in ("normal", "pneumonia"):
        (folder / label).mkdir(parents=True)
        for patient in range(6):
            for scan in range(3):
                name = f"P{patient:03d}_{label}_{scan}.png"
                write_image(folder / label / name, seed=patient * 3 + scan)
    dialog = OpenFolderDialog(folder)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=20_000)
    dialog.destination.setText(str(tmp_path / "projects" / "scans"))
    assert dialog.create_button.isEnabled()
    dialog.group_pattern.setText("P[0-9+")  # not a pattern
    assert not dialog.create_button.isEnabled() and dialog.check_again.isVisible()
    dialog.check_again.click()
    assert "not valid" in dialog.options_problem.text() and dialog.report is not None
    dialog.group_pattern.setText("P\\d+")  # no brackets: the whole match is the id
    dialog.check_again.click()
    assert dialog.options_problem.text() == "" and dialog.report is None  # checking again
    dialog.group_pattern.setText("P(\\d+)_")
    dialog.split_sizes.setText("50/25/25")
    dialog.check_again.click()
    assert dialog.report is None and not dialog.create_button.isEnabled()
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=20_000)
    assert "one patient stay in one split" in dialog.layout_text.text()
    assert dialog.create_button.isEnabled()
    dialog.create_button.click()
    with ProjectStore.open(dialog.project_dir) as store:
        images = store.images()
        splits_of = {}
        for image in images:
            splits_of.setdefault(image.group_id, set()).add(image.split)
    assert len(splits_of) == 6 and all(len(s) == 1 for s in splits_of.values())
    assert {split for s in splits_of.values() for split in s} == {"train", "val", "test"}


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ("new", None),
        ("empty", None),
        ("full", "not empty"),
        ("images/sub", "inside the image folder"),
        (".", "is inside the project folder"),  # the project would hold the images
        ("project", "already holds"),
        ("", "Choose a folder"),
    ],
)
def test_project_dir_problem(tmp_path: Path, where: str, problem: str | None) -> None:
    images = tmp_path / "images"
    images.mkdir()
    (tmp_path / "empty").mkdir()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "linnaeus.db").write_bytes(b"")
    found = project_dir_problem(images, tmp_path / where if where else Path(""))
    assert (found is None) if problem is None else (problem in found)


def test_suggested_project_dir_is_free(tmp_path: Path) -> None:
    images = tmp_path / "data" / "cells"
    (tmp_path / "projects" / "cells").mkdir(parents=True)
    assert suggest_project_dir(images, tmp_path / "projects") == tmp_path / "projects" / "cells 2"


def test_dialog_lists_the_label_table_rows_it_did_not_take(qtbot, tmp_path) -> None:
    folder = tmp_path / "pets"
    folder.mkdir()
    for n in range(1, 4):
        write_image(folder / f"img{n}.png", seed=n)
    (folder / "labels.csv").write_text(
        "path,label\nimg1.png,cat\nimg2.png,dog\nimg1.png,bird\nimg3.png,\n"
    )
    dialog = OpenFolderDialog(folder)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=20_000)

    assert dialog.table_problems.isVisible() and dialog.table_problems.rowCount() == 2
    assert "first row wins" in dialog.table_problems_title.text()
    assert dialog.table_problems.item(0, 0).text() == "2, 4"
    assert dialog.table_problems.item(0, 1).text() == (
        "rows 2 and 4 give img1.png two labels (cat, bird): kept cat, the first; "
        "no other row gives bird, so the table makes no class bird"
    )
    assert dialog.table_problems.item(1, 0).text() == "5"
    assert "img3.png no label" in dialog.table_problems.item(1, 1).text()
