"""The CSV files Linnaeus writes: no formula a spreadsheet would run, every file
name exact (even one that is not UTF-8), and read back by import as written."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from linnaeus.engine.csv_tables import FORMULA_STARTS
from linnaeus.engine.csv_tables import cell_text
from linnaeus.engine.csv_tables import exact_path
from linnaeus.engine.csv_tables import path_from_exact
from linnaeus.engine.csv_tables import safe_cell
from linnaeus.engine.dataset.export_labels import export_csv
from linnaeus.engine.dataset.importer import ImportOptions
from linnaeus.engine.dataset.importer import import_images
from linnaeus.engine.onnx.results import Prediction
from linnaeus.engine.onnx.results import write_predictions_csv
from linnaeus.engine.project import image_files
from linnaeus.engine.project.store import ProjectStore
from tests.image_factory import write_image

LATIN1_NAME = os.fsdecode(b"latin1_\xe9t\xe9.png")  # not valid UTF-8: possible on Linux
FORMULA_NAME = "=cmd|' calc'!A0.png"


def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def _no_formula_anywhere(rows: list[list[str]]) -> bool:
    return not any(cell.startswith(FORMULA_STARTS) for row in rows for cell in row)


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("'quoted", "''quoted"),
        ("'=both", "''=both"),
        ("a=b", "a=b"),
        ("cat", "cat"),
        ("", ""),
        ("0.250000", "0.250000"),
    ],
)
def test_cells_a_spreadsheet_could_run_get_a_quote_and_read_back_exactly(
    text: str, written: str
) -> None:
    assert safe_cell(text) == written
    assert cell_text(written) == text


def test_a_hand_written_cell_that_starts_with_a_quote_reads_as_written() -> None:
    assert cell_text("'tis.png") == "'tis.png"


def test_exact_path_is_empty_for_text_and_percent_encoded_bytes_otherwise() -> None:
    assert exact_path("sub/Zellkern_äöü_細胞.png") == ""
    assert exact_path(f"sub dir/{LATIN1_NAME}") == "sub%20dir/latin1_%E9t%E9.png"
    assert path_from_exact("sub%20dir/latin1_%E9t%E9.png") == f"sub dir/{LATIN1_NAME}"


def test_predictions_csv_neutralises_formulas_and_keeps_odd_names_exact(tmp_path: Path) -> None:
    classes = ["-1", "+1"]
    predictions = [
        Prediction(FORMULA_NAME, "-1", 0.75, {"-1": 0.75, "+1": 0.25}, None),
        Prediction(LATIN1_NAME, "+1", 0.5, {"-1": 0.5, "+1": 0.5}, None),
        Prediction("@broken.png", None, None, {}, "=not an image"),
    ]
    out = tmp_path / "results.csv"

    assert write_predictions_csv(predictions, classes, out) == 3

    rows = _rows(out)
    assert _no_formula_anywhere(rows)
    assert rows[0] == ["path", "label", "confidence", "'-1", "'+1", "error", "exact_path"]
    assert rows[1] == [f"'{FORMULA_NAME}", "'-1", "0.750000", "0.750000", "0.250000", "", ""]
    assert rows[2][0] == "latin1_\ufffdt\ufffd.png"  # shown as text ...
    assert path_from_exact(rows[2][-1]) == LATIN1_NAME  # ... and exact in its own column
    assert rows[3] == ["'@broken.png", "", "", "", "", "'=not an image", ""]


def _flat_folder(root: Path) -> list[str]:
    names = [FORMULA_NAME, "-minus.png", "plain.png", "'quoted.png", " space.png"]
    try:
        with open(os.path.join(os.fsencode(root), b"latin1_\xe9t\xe9.png"), "wb"):
            pass
        names.append(LATIN1_NAME)
    except OSError:  # this file system refuses names that are not UTF-8
        pass
    for n, name in enumerate(names):
        write_image(root / name, size=(16, 12), seed=n)
    return names


def test_exported_labels_import_back_exactly(tmp_path: Path) -> None:
    root = tmp_path / "images"
    root.mkdir()
    names = _flat_folder(root)
    labels = ["-1", "+1", "=SUM(A1)", "@cat", "'dog", "plain"]
    with ProjectStore.create(tmp_path / "first", root) as first:
        import_images(first)
        ids = {image.path: image.id for image in first.images()}
        for name, label in zip(names, labels, strict=False):
            first.set_labels([ids[name]], label)
        with first.transaction():
            image_files.set_groups(first, {ids[name]: "-P1" for name in names})
        export_csv(first, tmp_path / "labels.csv")
        expected = {i.path: (i.label, i.group_id, i.split) for i in first.images()}

    assert _no_formula_anywhere(_rows(tmp_path / "labels.csv"))
    with ProjectStore.create(tmp_path / "second", root) as second:
        report = import_images(second, ImportOptions(labels_csv=tmp_path / "labels.csv"))
        again = {i.path: (i.label, i.group_id, i.split) for i in second.images()}

    assert report.table_problems == []
    assert again == expected
