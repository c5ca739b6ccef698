"""The project folder and the image folder are disjoint, wherever a project is made,
opened or re-imported: the probe's images in w7b/models/{x,y,z} with the project w7b."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from linnaeus.engine.cli import train as cli_train
from linnaeus.engine.cli.main import main
from linnaeus.engine.errors import ProjectError
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.project.database import DATABASE_NAME
from linnaeus.engine.project.folders import check_project_folder
from linnaeus.engine.project.store import ProjectStore
from tests.image_factory import write_class_folders


def _images(root: Path) -> Path:
    return write_class_folders(root, ("x", "y", "z"), 2)


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("linnaeus: error: ")
    return lines[0]


def _repoint(project: Path, image_root: Path) -> None:
    """Make an existing project overlap its images, as projects made before the rule could."""
    with closing(sqlite3.connect(project / DATABASE_NAME)) as db, db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'image_root'", (str(image_root),))


def test_the_probe_images_inside_the_project_are_refused_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w7b = tmp_path / "w7b"
    images = _images(w7b / "models")
    before = _files(w7b)
    assert main(["import", str(images), "--project", str(w7b)]) == 1
    error = _error(capsys)
    assert f"The image folder {images} is inside the project folder {w7b}." in error
    assert _files(w7b) == before


def test_a_project_inside_the_images_is_refused_and_nothing_is_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = _images(tmp_path / "images")
    assert main(["import", str(images), "--project", str(images / "project")]) == 1
    assert "is inside the image folder" in _error(capsys)
    assert not (images / "project").exists()


@pytest.mark.parametrize("direction", ["images in project", "project in images"])
def test_an_existing_overlapping_project_is_refused_by_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch, direction: str
) -> None:
    monkeypatch.setattr(cli_train, "_cancel_on_signals", CancelToken)  # pytest keeps Ctrl+C
    images = _images(tmp_path / "images")
    project = tmp_path / "project"
    assert main(["import", str(images), "--project", str(project)]) == 0
    if direction == "images in project":
        inner = _images(project / "models")
        _repoint(project, inner)
        expected = f"This project's image folder {inner} is inside its project folder {project}"
        advice = "Move the image folder out of"
    else:
        project = project.rename(images / "project")
        expected = f"This project's folder {project} is inside its image folder {images}"
        advice = "Move the project folder out of"
    capsys.readouterr()
    before = _files(tmp_path)
    commands = (
        ["info"], ["models"], ["train"], ["import"],
        ["labels", "set", "x/x0.png", "--label", "y"],
        ["export", "--out", str(tmp_path / "m.onnx")],
    )  # fmt: skip
    for command in commands:
        assert main([*command, "--project", str(project)]) == 1, command
        error = _error(capsys)
        assert expected in error and advice in error, command
    assert _files(tmp_path) == before  # no model folder, export or lock among the images


def test_re_importing_from_a_folder_that_overlaps_the_project_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = _images(tmp_path / "images")
    project = tmp_path / "project"
    assert main(["import", str(images), "--project", str(project)]) == 0
    capsys.readouterr()
    inside = _images(project / "more")
    assert main(["import", str(inside), "--project", str(project)]) == 1
    assert f"The image folder {inside} is inside the project folder {project}." in _error(capsys)
    assert main(["import", str(tmp_path), "--project", str(project)]) == 1
    assert f"The project folder {project} is inside the image folder {tmp_path}." in (
        _error(capsys)
    )
    with ProjectStore.open(project) as store:
        assert store.image_root == images


def test_moving_the_images_out_and_re_importing_mends_an_overlapping_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the refusal tells the user to do works, and keeps the labels."""
    project = tmp_path / "w7b"
    images = _images(tmp_path / "images")
    assert main(["import", str(images), "--project", str(project)]) == 0
    assert main(["labels", "set", "x/x0.png", "--label", "z", "--project", str(project)]) == 0
    moved_in = images.rename(project / "models")
    _repoint(project, moved_in)
    moved_out = moved_in.rename(tmp_path / "new-place")
    assert main(["import", str(moved_out), "--project", str(project)]) == 0
    with ProjectStore.open(project) as store:
        assert store.image_root == moved_out
        assert store.image_by_path("x/x0.png").label == "z"


def test_the_store_refuses_both_directions(tmp_path: Path) -> None:
    images = _images(tmp_path / "images")
    with pytest.raises(ProjectError, match="is inside the project folder"):
        ProjectStore.create(tmp_path, images)
    with pytest.raises(ProjectError, match="is inside the image folder"):
        ProjectStore.create(images, images)
    with pytest.raises(ProjectError, match="is inside the image folder"):
        check_project_folder(images / "x" / "p", images)
    assert not (tmp_path / DATABASE_NAME).exists() and not (images / DATABASE_NAME).exists()


def test_the_demo_keeps_its_images_beside_its_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "demo"
    for _ in range(2):  # made, then refreshed
        assert main(["demo", "--project", str(project), "--no-train", "--per-class", "3"]) == 0
    with ProjectStore.open(project) as store:
        assert store.image_root == tmp_path / "demo-images" and store.image_count() == 9
    old = tmp_path / "old-demo"
    ProjectStore.create(old, _images(tmp_path / "cells")).close()
    _repoint(old, (tmp_path / "cells").rename(old / "images"))
    capsys.readouterr()
    assert main(["demo", "--project", str(old), "--no-train"]) == 1
    assert (
        "was made by an older Linnaeus, with its images inside the project folder. Delete the "
        f"folder {old} and make the demo again." in _error(capsys)
    )
