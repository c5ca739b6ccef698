"""Label tables that disagree with themselves: the first row wins, and every row
not taken as written is reported with its number (import report, CLI, JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from linnaeus.engine.cli.main import main
from linnaeus.engine.dataset.importer import ImportOptions
from linnaeus.engine.dataset.importer import import_images
from linnaeus.engine.dataset.labels_csv import CsvLabel
from linnaeus.engine.dataset.labels_csv import TableProblem
from linnaeus.engine.dataset.labels_csv import read_label_csv
from linnaeus.engine.dataset.labels_csv import write_label_csv
from linnaeus.engine.errors import ImportSourceError
from linnaeus.engine.project.store import ProjectStore
from tests.image_factory import write_image


def _images(root: Path, names: list[str]) -> list[str]:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        write_image(root / name, size=(16, 12), seed=len(name))
    return names


def _table(tmp_path: Path, text: str, names: list[str]) -> tuple[Path, list[str]]:
    root = tmp_path / "images"
    _images(root, names)
    table = tmp_path / "labels.csv"
    table.write_text(text, encoding="utf-8")
    return table, names


IMAGES = [f"img{n}.png" for n in range(1, 9)]
TWO_LABELS = (
    "path,label\n"  # row 1
    "img1.png,cat\n"
    "img2.png,dog\n"
    "img3.png,cat\n"
    "img4.png,dog\n"
    "img5.png,cat\n"
    "img6.png,cat\n"  # row 7
    "img7.png,cat\n"
    "img8.png,cat\n"
    "\n"  # a blank row still counts as a row, as in a spreadsheet
    "\n"
    "img6.png,bird\n"  # row 12
)


def test_two_labels_for_one_image_keep_the_first_and_say_so(tmp_path: Path) -> None:
    table, names = _table(tmp_path, TWO_LABELS, IMAGES)

    result = read_label_csv(table, tmp_path / "images", names)

    assert result.rows["img6.png"].label == "cat"
    assert result.problems == [
        TableProblem(
            (7, 12),
            "rows 7 and 12 give img6.png two labels (cat, bird): kept cat, the first; "
            "no other row gives bird, so the table makes no class bird",
        )
    ]


def test_a_label_another_row_keeps_is_not_called_lost(tmp_path: Path) -> None:
    text = TWO_LABELS.replace("img6.png,bird", "img6.png,dog")
    table, names = _table(tmp_path, text, IMAGES)

    result = read_label_csv(table, tmp_path / "images", names)

    assert [p.message for p in result.problems] == [
        "rows 7 and 12 give img6.png two labels (cat, dog): kept cat, the first"
    ]


def test_the_same_row_twice_is_no_problem(tmp_path: Path) -> None:
    table, names = _table(tmp_path, "path,label\na.png,cat\na.png,cat\n", ["a.png"])

    result = read_label_csv(table, tmp_path / "images", names)

    assert result.rows["a.png"].label == "cat" and result.problems == []


def test_rows_without_a_label_are_reported_and_a_later_label_is_taken(tmp_path: Path) -> None:
    text = "path,label,group\na.png,,P1\nb.png,\nc.png,cat\nb.png,dog\nd.png,\n"
    table, names = _table(tmp_path, text, ["a.png", "b.png", "c.png", "d.png"])

    result = read_label_csv(table, tmp_path / "images", names)

    assert result.rows["b.png"].label == "dog"  # the first row that gives a label
    assert result.rows["a.png"] == CsvLabel("a.png", None, "P1", None)
    assert result.problems == [
        TableProblem(
            (2, 6),
            "rows 2 and 6 give no label (2 images, such as a.png): they keep the class of "
            "their folder, if they are in one, else stay unlabelled",
        )
    ]


def test_one_row_without_a_label_names_its_image(tmp_path: Path) -> None:
    table, names = _table(tmp_path, "path,label\na.png,cat\nb.png,  \n", ["a.png", "b.png"])

    result = read_label_csv(table, tmp_path / "images", names)

    assert [p.message for p in result.problems] == [
        "row 3 gives b.png no label: it keeps the class of its folder, if it is in one, "
        "else stays unlabelled"
    ]


def test_groups_and_splits_that_disagree_keep_the_first(tmp_path: Path) -> None:
    text = "path,label,patient_id,split\na.png,cat,P1,train\na.png,cat,P2,test\n"
    table, names = _table(tmp_path, text, ["a.png"])

    result = read_label_csv(table, tmp_path / "images", names)

    assert (result.rows["a.png"].group, result.rows["a.png"].split) == ("P1", "train")
    assert [p.message for p in result.problems] == [
        "rows 2 and 3 give a.png two groups (P1, P2): kept P1, the first",
        "rows 2 and 3 give a.png two splits (train, test): kept train, the first",
    ]


def test_a_bare_name_shared_by_two_images_asks_for_the_folder(tmp_path: Path) -> None:
    table, names = _table(tmp_path, "path,label\nx.png,cat\n", ["a/x.png", "b/x.png"])

    result = read_label_csv(table, tmp_path / "images", names)

    assert result.rows == {}
    assert result.problems == [
        TableProblem(
            (2,), "row 2: 2 images are named x.png (a/x.png, b/x.png); give the folder too"
        )
    ]


def test_a_table_that_is_not_csv_is_refused_in_one_line(tmp_path: Path) -> None:
    table, names = _table(tmp_path, 'path,label\n"a.png,' + "x" * 200_000 + "\n", ["a.png"])

    with pytest.raises(ImportSourceError, match="is not a readable CSV file") as caught:
        read_label_csv(table, tmp_path / "images", names)

    assert "\n" not in str(caught.value)


def test_import_reports_the_rows_and_makes_no_class_from_an_ignored_row(tmp_path: Path) -> None:
    table, _ = _table(tmp_path, TWO_LABELS, IMAGES)
    store = ProjectStore.create(tmp_path / "project", tmp_path / "images")

    report = import_images(store, ImportOptions(labels_csv=table))

    assert store.image_by_path("img6.png").label == "cat"
    assert {c.name for c in store.classes()} == {"cat", "dog"}  # said so in the problem
    assert [p.rows for p in report.table_problems] == [(7, 12)]
    store.close()


def test_cli_prints_the_problems_and_json_gives_their_rows(tmp_path: Path, capsys) -> None:
    table, _ = _table(tmp_path, TWO_LABELS, IMAGES)
    images = str(tmp_path / "images")

    assert main(["import", images, "--labels", str(table), "--project", str(tmp_path / "p")]) == 0
    out = capsys.readouterr().out
    assert "rows 7 and 12 give img6.png two labels (cat, bird): kept cat, the first" in out

    project = str(tmp_path / "q")
    assert main(["import", images, "--labels", str(table), "--project", project, "--json"]) == 0
    problems = json.loads(capsys.readouterr().out)["table_problems"]
    assert problems == [{"rows": [7, 12], "message": problems[0]["message"]}]
    assert "kept cat, the first" in problems[0]["message"]


def test_names_full_of_semicolons_do_not_change_the_delimiter(tmp_path: Path) -> None:
    names = ["a;b;c;d.png", "e;f;g;h.png", "i;j;k;l.png"]
    table = tmp_path / "labels.csv"
    write_label_csv(table, [(name, "cat", "", "") for name in names])

    result = read_label_csv(table, tmp_path, names)

    assert {row.label for row in result.rows.values()} == {"cat"} and len(result.rows) == 3


# -- what the property-based tests (test_hostile_inputs.py) found ---------------------


def test_a_cell_that_is_only_a_tab_reads_back_empty_not_as_a_quote(tmp_path: Path) -> None:
    table = tmp_path / "labels.csv"
    write_label_csv(table, [("a.png", "cat", "\t", "")])  # written as '<tab>

    result = read_label_csv(table, tmp_path, ["a.png"])

    assert result.rows["a.png"] == CsvLabel("a.png", "cat", None, None)


def test_a_cell_with_a_line_break_is_reported_on_one_line(tmp_path: Path) -> None:
    table, names = _table(tmp_path, 'path,label\n"no\nsuch.png",cat\n', ["a.png"])

    result = read_label_csv(table, tmp_path / "images", names)

    assert [p.message for p in result.problems] == [
        f"row 2: no image no\\nsuch.png under {tmp_path / 'images'}"
    ]
