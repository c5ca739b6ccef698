"""What killed processes leave behind: temporary files and versions left "training"."""

from __future__ import annotations

import json
import os
import textwrap
import time
from pathlib import Path

import pytest

from linnaeus.engine.atomic import STALE_AFTER_S
from linnaeus.engine.atomic import remove_stale_temporaries
from linnaeus.engine.atomic import temporary_path
from linnaeus.engine.cli.main import main
from linnaeus.engine.host import host_tag
from linnaeus.engine.onnx.classify import classify
from linnaeus.engine.project import versions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.training.config import resumable_version
from tests.image_factory import write_class_folders
from tests.image_factory import write_image
from tests.onnx_factory import make_model
from tests.process_factory import dead_pid
from tests.process_factory import held_by_another_process
from tests.process_factory import killed_while

# A process killed while it writes a file atomically (an export, a predictions CSV).
_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from linnaeus.engine.atomic import atomic_open
    with atomic_open(Path(sys.argv[1])) as handle:
        handle.write(b"x" * 450_000)
        handle.flush()
        print("writing", flush=True)
        time.sleep(120)
    """
)
# A trainer killed while it trains: its version is "training", with or without a checkpoint.
_TRAINER = textwrap.dedent(
    """
    import sys, time
    from linnaeus.engine.project import lock, versions
    from linnaeus.engine.project.store import ProjectStore
    store = ProjectStore.open(sys.argv[1])
    with lock.hold(store.project_dir, "training"):
        version = versions.create_version(store, kind="seed-cnn", config={}, augmentation={},
                                          classes=["cat", "dog"], labels={})
        if sys.argv[2] == "checkpoint":
            version.checkpoint_file.write_bytes(b"epoch 3")
        print(version.name, flush=True)
        time.sleep(120)
    """
)


def temporary(folder: Path, name: str, writer: str, *, days_old: float = 0) -> Path:
    path = folder / f".{name}.{writer}.tmp"
    path.write_bytes(b"half a file")
    if days_old:
        stamp = time.time() - days_old * 86400
        os.utime(path, (stamp, stamp))
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    images = write_class_folders(tmp_path / "images", ("cat", "dog"), 4)
    ProjectStore.create(tmp_path / "project", images).close()
    return tmp_path / "project"


def test_a_killed_export_leaves_a_temporary_file_that_the_next_open_removes(project) -> None:
    exports = project / "exports"
    exports.mkdir()
    destination = exports / "project-v1.onnx"
    assert killed_while(_WRITER, str(destination)) == "writing"
    (left,) = exports.iterdir()
    assert left.name.startswith(".project-v1.onnx.") and left.stat().st_size == 450_000
    ProjectStore.open(project).close()
    assert list(exports.iterdir()) == []


def test_only_stale_temporary_files_of_ours_are_removed(project: Path) -> None:
    folders = [project, project / "exports", project / "models" / "3"]
    for folder in folders[1:]:
        folder.mkdir(parents=True)
    tag, hexes = host_tag(), "0123456789ab"
    gone, kept = [], []
    for folder in folders:
        gone += [
            temporary(folder, "a.onnx", f"{tag}-{dead_pid()}-{hexes}"),  # its writer ended
            temporary(folder, "b.csv", hexes, days_old=2),  # an old one of an older Linnaeus
            temporary(folder, "c.html", f"ffffffff-1-{hexes}", days_old=2),  # another computer's
        ]
        kept += [
            temporary(folder, "d.onnx", f"{tag}-{os.getpid()}-{hexes}"),  # still being written
            temporary(folder, "e.csv", hexes),  # recent, writer unknown
            temporary(folder, "f.html", f"ffffffff-1-{hexes}"),  # recent, another computer's
        ]
        for name in (".notes.tmp", "g.onnx", f".h.onnx.{hexes}.tmp.bak", f"i.onnx.{hexes}.tmp"):
            (folder / name).write_text("the user's")
            kept.append(folder / name)
        (folder / f".j.onnx.{hexes}.tmp").mkdir()  # a folder, never ours
        kept.append(folder / f".j.onnx.{hexes}.tmp")
    unfinished = versions.unfinished_checkpoint(project / "models" / "3")
    unfinished.write_bytes(b"half a checkpoint")
    gone.append(unfinished)
    ProjectStore.open(project).close()
    assert [p for p in gone if p.exists()] == []
    assert [p for p in kept if not p.exists()] == []


def test_nothing_is_tidied_while_another_process_holds_the_project(project: Path) -> None:
    left = temporary(project, "a.onnx", f"{host_tag()}-{dead_pid()}-0123456789ab")
    with held_by_another_process(project, "exporting v1"):
        ProjectStore.open(project).close()
        assert left.exists()
    ProjectStore.open(project).close()
    assert not left.exists()


def test_a_temporary_file_names_its_computer_and_process(tmp_path: Path) -> None:
    path = temporary_path(tmp_path / "results.csv")
    assert path.parent == tmp_path
    assert path.name.startswith(f".results.csv.{host_tag()}-{os.getpid()}-")
    assert path.name.endswith(".tmp")
    path.write_text("mine, running")
    assert remove_stale_temporaries(tmp_path) == []
    assert STALE_AFTER_S == 24 * 3600


def test_a_predictions_csv_outside_the_project_replaces_what_a_killed_run_left(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "to-classify"
    folder.mkdir()
    for i in range(3):
        write_image(folder / f"x{i}.png", size=(16, 16), seed=i)
    model = make_model(tmp_path / "model.onnx")
    out = tmp_path / "results"
    out.mkdir()
    csv_path = out / "predictions.csv"
    assert killed_while(_WRITER, str(csv_path)) == "writing"
    other = temporary(out, "other.csv", f"{host_tag()}-{dead_pid()}-0123456789ab")
    result = classify(model, folder, csv_path)
    assert result.images == 3
    assert sorted(p.name for p in out.iterdir()) == [other.name, "predictions.csv"]


def test_a_killed_training_becomes_interrupted_and_resumable_after_a_later_one(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The probe: it stayed "training", and after a later training --resume missed it."""
    assert killed_while(_TRAINER, str(project), "checkpoint") == "v1"
    assert killed_while(_TRAINER, str(project), "nothing") == "v2"
    with ProjectStore.open(project) as store:
        later = versions.create_version(
            store, kind="quick", config={}, augmentation={}, classes=["cat", "dog"], labels={}
        )
        versions.update_version(store, later.id, status="done")
    assert main(["models", "--project", str(project), "--json"]) == 0
    listed = {row["version"]: row for row in json.loads(capsys.readouterr().out)["models"]}
    assert {name: row["status"] for name, row in listed.items()} == {
        "v3": "done", "v2": "failed", "v1": "interrupted",
    }  # fmt: skip
    assert "resume it" in listed["v1"]["error"] and "train again" in listed["v2"]["error"]
    with ProjectStore.open(project) as store:
        assert resumable_version(versions.list_versions(store)).name == "v1"
    assert main(["models", "--project", str(project)]) == 0
    assert "interrupted" in capsys.readouterr().out


def test_a_live_training_stays_training(project: Path) -> None:
    with ProjectStore.open(project) as store:
        version = versions.create_version(
            store, kind="seed-cnn", config={}, augmentation={}, classes=["cat"], labels={}
        )
    with held_by_another_process(project, "training v1"), ProjectStore.open(project) as store:
        assert versions.get_version(store, version.id).status == "training"
    with ProjectStore.open(project) as store:
        assert versions.get_version(store, version.id).status == "failed"
