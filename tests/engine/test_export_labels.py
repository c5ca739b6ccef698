"""Class names as folder names: nothing escapes or breaks the output folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from linnaeus.engine.dataset.export_labels import safe_folder_name
from linnaeus.engine.dataset.export_labels import unique_folder_names


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("PNEUMONIA", "PNEUMONIA"),
        ("../x", "_x"),
        ("..", "_"),
        ("a/b\\c", "a_b_c"),
        ("CON", "_CON"),
        ("com1.txt", "_com1.txt"),
        ("lpt9", "_lpt9"),
        ("name. ", "name"),
        ("   ", "_"),
        ("what?*<>|:", "what______"),
        ("Zellkern äöü 細胞", "Zellkern äöü 細胞"),
        ("tab\there", "tab_here"),
    ],
)
def test_safe_folder_name(name: str, expected: str) -> None:
    assert safe_folder_name(name) == expected


@pytest.mark.parametrize("name", ["../x", "..", "/etc", "C:\\Windows", "a/../../b", "\x00"])
def test_safe_names_stay_inside_the_output_folder(tmp_path: Path, name: str) -> None:
    target = (tmp_path / safe_folder_name(name)).resolve()
    assert target.parent == tmp_path.resolve()


def test_names_that_collide_after_sanitising_stay_distinct() -> None:
    names = unique_folder_names(["a/b", "a_b", "A_B"])
    assert len({n.lower() for n in names.values()}) == 3


def test_a_csv_is_never_written_inside_the_image_folder(store) -> None:
    from linnaeus.engine.dataset.export_labels import export_csv
    from linnaeus.engine.errors import ProjectError

    with pytest.raises(ProjectError, match="outside the image folder"):
        export_csv(store, store.image_root / "labels.csv")
    assert not (store.image_root / "labels.csv").exists()
    assert export_csv(store, store.project_dir.parent / "labels.csv").written == 0
