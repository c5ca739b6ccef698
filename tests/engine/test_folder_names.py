"""Class and patient names taken from folder and file names that are not UTF-8
(Linux allows any bytes): read as Latin-1 text instead of stopping the import."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from linnaeus.engine.dataset.importer import ImportOptions
from linnaeus.engine.dataset.importer import import_images
from linnaeus.engine.dataset.layout import name_from_path
from linnaeus.engine.project.store import ProjectStore
from tests.image_factory import draw_pixels
from tests.image_factory import encode_image


def _write(root: Path, relative: bytes, seed: int) -> None:
    path = os.path.join(os.fsencode(root), relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(encode_image(draw_pixels((16, 12), 3, seed=seed), "png"))


@pytest.fixture
def latin1_folders(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    try:
        for n in range(4):
            _write(root, b"caf\xe9/P%d_x\xe9.png" % n, n)
            _write(root, b"th\xc3\xa9/P%d_y.png" % n, 10 + n)
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    return root


def test_name_from_path_reads_undecodable_bytes_as_latin1() -> None:
    assert name_from_path(os.fsdecode(b"caf\xe9")) == "café"
    assert name_from_path("thé 細胞") == "thé 細胞"


def test_a_class_folder_that_is_not_utf8_becomes_a_class(
    latin1_folders: Path, tmp_path: Path
) -> None:
    with ProjectStore.create(tmp_path / "project", latin1_folders) as store:
        report = import_images(store, ImportOptions(group_regex=r"(P\d_x.)"))
        classes = {c.name for c in store.classes()}
        groups = {image.group_id for image in store.images() if image.label == "café"}

    assert classes == {"café", "thé"} and report.unreadable == []
    assert groups == {f"P{n}_xé" for n in range(4)}
