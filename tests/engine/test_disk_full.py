"""A full disk: recognised in every guise, refused before large writes, one clear line,
nothing half-written, and the interrupted import or training finishes later."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from linnaeus.engine import disk_space
from linnaeus.engine.atomic import STALE_AFTER_S
from linnaeus.engine.atomic import atomic_path
from linnaeus.engine.atomic import remove_stale_temporaries
from linnaeus.engine.cli.main import main
from linnaeus.engine.dataset import importer
from linnaeus.engine.dataset.importer import import_images
from linnaeus.engine.dataset.importer import interrupted_import
from linnaeus.engine.disk_space import is_disk_full
from linnaeus.engine.errors import DiskFullError
from linnaeus.engine.project import image_files
from linnaeus.engine.project.store import NO_SPLIT
from linnaeus.engine.project.store import UNLABELLED
from linnaeus.engine.project.store import ProjectStore
from tests.engine.conftest import add_images
from tests.image_factory import write_image

MESSAGE = (
    r"^The disk holding .+ is full: [\d.,]+ MB free, about [\d.,]+ MB needed\. "
    r"Free some space and try again\.$"
)
NO_SPACE = "No space left on device"


def little_space(monkeypatch: pytest.MonkeyPatch, free: int) -> None:
    """Every disk now seems to have only ``free`` bytes left."""
    monkeypatch.setattr(shutil, "disk_usage", lambda path: SimpleNamespace(free=free))


def make_folders(root: Path, per_class: int) -> Path:
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            write_image(root / label / f"{label}_{i:02}.png", size=(12, 10), seed=i)
    return root


# -- recognising a full disk --------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, NO_SPACE),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        sqlite3.OperationalError("database or disk is full"),
        # h5py's and Keras' wordings carry the system's words, not its errno
        OSError(f"Unable to create file (file write failed: errno = 28, error = '{NO_SPACE}')"),
        RuntimeError("Can't decrement id ref count (No space left on device)"),
    ],
)
def test_a_full_disk_is_recognised_in_every_guise(error: Exception) -> None:
    assert is_disk_full(error)
    try:  # ...also when another error wraps it
        try:
            raise error
        except Exception as inner:
            raise ValueError("saving failed") from inner
    except ValueError as outer:
        assert is_disk_full(outer)


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.EACCES, "Permission denied"),
        ValueError("a bad value"),
        sqlite3.OperationalError("database is locked"),
        sqlite3.OperationalError("disk I/O error"),  # without a folder on a full disk
    ],
)
def test_other_errors_are_no_full_disk(error: Exception) -> None:
    assert not is_disk_full(error)


def test_sqlite_disk_io_error_is_a_full_disk_only_on_a_nearly_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    error = sqlite3.OperationalError("disk I/O error")
    assert not is_disk_full(error, tmp_path)
    little_space(monkeypatch, 4096)
    assert is_disk_full(error, tmp_path)


def test_the_message_says_where_what_is_free_and_what_is_needed() -> None:
    assert str(DiskFullError("/data/project", 400_000, 12_345_678)) == (
        "The disk holding /data/project is full: 0.4 MB free, about 12 MB needed. "
        "Free some space and try again."
    )


def test_an_atomic_path_that_fails_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    destination = tmp_path / "checkpoint.keras"
    destination.write_bytes(b"the previous checkpoint")
    with pytest.raises(OSError), atomic_path(destination) as temporary:
        assert temporary.name.endswith(".keras") and temporary.parent == tmp_path
        temporary.write_bytes(b"half a")
        raise OSError(errno.ENOSPC, NO_SPACE)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.keras"]
    assert destination.read_bytes() == b"the previous checkpoint"
    with atomic_path(destination) as temporary:
        temporary.write_bytes(b"the new checkpoint")
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.keras"]
    assert destination.read_bytes() == b"the new checkpoint"


def test_a_temporary_file_of_a_killed_keras_save_is_recognised_as_a_leftover(
    tmp_path: Path,
) -> None:
    with atomic_path(tmp_path / "checkpoint.keras") as temporary:
        temporary.write_bytes(b"a checkpoint")
    temporary.write_bytes(b"half a checkpoint")  # as a training killed while saving leaves it
    long_ago = time.time() - STALE_AFTER_S - 60
    os.utime(temporary, (long_ago, long_ago))
    assert remove_stale_temporaries(tmp_path) == [temporary]
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.keras"]


# -- the project store ----------------------------------------------------------------


def test_a_full_database_says_so_keeps_what_was_saved_and_works_again(store: ProjectStore) -> None:
    add_images(store, [f"a{i}.png" for i in range(5)])
    pages = store.execute("PRAGMA page_count").fetchone()[0]
    store.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "database or disk is full"
    with pytest.raises(DiskFullError, match=MESSAGE) as raised:
        add_images(store, [f"b{i}_{'x' * 200}.png" for i in range(500)])
    assert str(store.project_dir) in str(raised.value)
    assert store.image_count() == 5  # all of the failed transaction or none of it
    store.execute("PRAGMA max_page_count = 1073741823")  # space was freed
    add_images(store, ["later.png"])
    assert store.image_count() == 6


# -- import -------------------------------------------------------------------------


def test_import_is_refused_before_anything_is_written_when_the_disk_is_too_small(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_folders(tmp_path / "images", 5)
    store = ProjectStore.create(tmp_path / "project", root)
    little_space(monkeypatch, 1000)
    with pytest.raises(DiskFullError, match=MESSAGE):
        import_images(store)
    assert store.image_count() == 0 and interrupted_import(store) is None


def test_an_import_stopped_by_a_full_disk_says_so_and_the_next_import_finishes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_folders(tmp_path / "images", 12)
    store = ProjectStore.create(tmp_path / "project", root)
    monkeypatch.setattr(importer, "_BATCH", 8)
    add_file, added = image_files.add_file, []

    def add_file_until_full(*args: object, **kwargs: object) -> int:
        if len(added) == 16:  # the disk fills in the third batch
            raise sqlite3.OperationalError("database or disk is full")
        added.append(args)
        return add_file(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(image_files, "add_file", add_file_until_full)
    with pytest.raises(DiskFullError, match=MESSAGE):
        import_images(store)
    assert store.image_count() == 16  # two whole batches, nothing of the third
    assert store.label_split_counts() == {UNLABELLED: {NO_SPLIT: 16}}
    warning = (
        "The last import was interrupted (16 of 24 images); run "
        f"`linnaeus import --project {store.project_dir}` again to finish it."
    )
    assert interrupted_import(store).message == warning
    assert main(["info", "--project", str(store.project_dir)]) == 0
    assert f"Warning: {warning}" in capsys.readouterr().out

    monkeypatch.setattr(image_files, "add_file", add_file)  # space was freed
    report = import_images(store)
    assert report.added == 8 and interrupted_import(store) is None
    counts = store.label_split_counts()
    assert set(counts) == {"cat", "dog"} and NO_SPLIT not in counts["cat"] | counts["dog"]
    assert sum(sum(c.values()) for c in counts.values()) == 24


def test_cli_import_on_a_full_disk_prints_one_line_and_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_folders(tmp_path / "images", 3)
    little_space(monkeypatch, 0)
    assert main(["import", str(root), "--project", str(tmp_path / "p")]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("linnaeus: error: The disk holding ") and "0.0 MB free" in line


def test_a_full_disk_met_anywhere_in_a_command_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_folders(tmp_path / "images", 2)
    project = tmp_path / "p"
    assert main(["import", str(root), "--project", str(project)]) == 0
    capsys.readouterr()

    def export_on_a_full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, NO_SPACE)

    monkeypatch.setattr("linnaeus.engine.cli.main.export_csv", export_on_a_full_disk)
    arguments = ["labels", "export", "--csv", str(tmp_path / "l.csv"), "--project", str(project)]
    assert main(arguments) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"linnaeus: error: The disk holding {project} is full")


def test_free_space_is_measured_on_the_nearest_existing_folder(tmp_path: Path) -> None:
    assert disk_space.free_bytes(tmp_path / "not" / "made" / "yet") > 0


# -- a real full disk -----------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MB tmpfs, unmounted afterwards."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)]
    root = getattr(os, "geteuid", lambda: -1)() == 0 and shutil.which("mount")
    if not root or subprocess.run(command, capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root; the tests above simulate the full disk instead")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Write a file into ``folder`` until its disk is full."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as error:
            assert error.errno == errno.ENOSPC
    return filler


def test_a_real_full_disk_gives_the_line_and_loses_nothing(
    small_disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_folders(tmp_path / "images", 10)
    project = small_disk / "project"
    assert main(["import", str(root), "--project", str(project)]) == 0
    filler = fill(small_disk)
    capsys.readouterr()
    relabel = ["labels", "set", "cat/cat_00.png", "--label", "dog", "--project", str(project)]
    assert main(relabel) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"linnaeus: error: The disk holding {project} is full")
    status = main(["info", "--project", str(project)])
    output = capsys.readouterr()
    assert "I/O" not in output.out + output.err
    assert status == 0 or output.err.startswith("linnaeus: error: The disk holding")
    filler.unlink()
    assert main(relabel) == 0
    with ProjectStore.open(project) as store:
        assert store.image_by_path("cat/cat_00.png").label == "dog"
        assert store.image_count() == 20
