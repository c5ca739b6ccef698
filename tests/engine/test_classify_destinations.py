"""Where Classify proposes to write a folder's results: beside the folder, never at the
file-system root, never from half-typed text."""

from __future__ import annotations

from pathlib import Path

import pytest

from linnaeus.engine.onnx.classify import default_destinations


def test_a_chosen_folder_gets_its_results_beside_it(tmp_path) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    proposal = default_destinations(f"  {folder}  ")
    assert proposal is not None
    assert proposal.csv == tmp_path / "scans_predictions.csv"
    assert proposal.sorted_copies == tmp_path / "scans_sorted"


@pytest.mark.parametrize("typed", ["", "   ", "/t", "/tmp/no-such-folder-here", "scans", "t"])
def test_half_typed_or_missing_folders_propose_nothing(typed: str) -> None:
    assert default_destinations(typed) is None


def test_a_folder_at_the_root_proposes_nothing_at_the_root() -> None:
    at_root = next(p for p in Path("/").iterdir() if p.is_dir())  # e.g. /tmp, /usr
    assert default_destinations(str(at_root)) is None
    assert default_destinations("/") is None


def test_a_file_is_not_a_folder(tmp_path) -> None:
    image = tmp_path / "one.png"
    image.write_bytes(b"x")
    assert default_destinations(str(image)) is None
