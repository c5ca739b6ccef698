"""Model versions named, annotated and deleted by the user (store and CLI)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from linnaeus.engine.cli.main import main
from linnaeus.engine.errors import ProjectError
from linnaeus.engine.project import schema
from linnaeus.engine.project import versions
from linnaeus.engine.project.database import DATABASE_NAME
from linnaeus.engine.project.store import ProjectStore
from tests.engine.conftest import add_images


def _version(store: ProjectStore, status: str = "done", active: bool = False) -> int:
    (image,) = add_images(store, [f"{store.image_count()}.png"])
    version = versions.create_version(
        store, kind="quick", config={}, augmentation={}, classes=["x", "y"],
        labels={image: (0, "train")},
    )  # fmt: skip
    versions.update_version(store, version.id, status=status)
    if active:
        versions.set_active(store, version.id)
    return version.id


def test_a_name_and_a_note_are_kept_and_shown(store: ProjectStore) -> None:
    v1 = _version(store)
    named = versions.rename_version(store, v1, "  chest   baseline ")
    assert named.title == "chest baseline" and named.name == "v1"  # the identifier stays
    assert named.display_name == "v1 · chest baseline"
    noted = versions.set_note(store, v1, "Trained before the relabelling of ward B.\n")
    assert noted.note == "Trained before the relabelling of ward B."
    assert versions.get_version(store, v1).title == "chest baseline"
    assert versions.rename_version(store, v1, "").display_name == "v1"
    assert versions.set_note(store, v1, "  ").note == ""
    with pytest.raises(ProjectError, match="at most 80"):
        versions.rename_version(store, v1, "x" * 81)
    with pytest.raises(ProjectError, match="no model version v9"):
        versions.set_note(store, 9, "?")


def test_deleting_removes_the_row_the_predictions_and_the_folder_only(
    store: ProjectStore,
) -> None:
    v1, v2 = _version(store), _version(store, active=True)
    folder = versions.get_version(store, v1).folder
    (folder / "model.keras").write_bytes(b"model")
    image_file = store.image_root / "keep.png"
    image_file.write_bytes(b"image")
    export = store.project_dir / versions.EXPORTS_FOLDER / "p-v1.onnx"
    export.parent.mkdir()
    export.write_bytes(b"onnx")
    assert versions.delete_version(store, v1).id == v2  # the active one stays active
    assert [v.id for v in versions.list_versions(store)] == [v2]
    assert not folder.exists() and image_file.exists() and export.exists()
    assert (
        store.execute("SELECT count(*) FROM model_labels WHERE model_id = ?", (v1,)).fetchone()[0]
        == 0
    )


def test_the_active_version_is_deleted_only_when_asked_and_a_successor_takes_over(
    store: ProjectStore,
) -> None:
    v1 = _version(store)
    _version(store, status="failed")
    v3 = _version(store, active=True)
    with pytest.raises(ProjectError, match="active model"):
        versions.delete_version(store, v3)
    assert versions.successor(store, v3).id == v1  # the newest other *finished* one
    assert versions.delete_version(store, v3, replace_active=True).id == v1
    assert versions.active_version(store).id == v1
    assert versions.delete_version(store, v1, replace_active=True) is None
    assert versions.active_version(store) is None


def test_a_version_still_training_is_not_deleted(store: ProjectStore) -> None:
    v1 = _version(store, status="training")
    with pytest.raises(ProjectError, match="still training"):
        versions.delete_version(store, v1)


def test_a_deleted_number_is_never_given_again(store: ProjectStore) -> None:
    """Exports are named by version number: a new v2 must not inherit the old v2's files."""
    _version(store)
    v2 = _version(store)
    versions.delete_version(store, v2)
    assert _version(store) == v2 + 1
    store.close()
    again = ProjectStore.open(store.project_dir)
    assert _version(again) == v2 + 2
    again.close()


def test_a_folder_that_is_not_the_versions_own_is_left_alone(store: ProjectStore) -> None:
    v1 = _version(store)
    (store.image_root / "precious.png").write_bytes(b"image")
    with store.transaction():  # a damaged row pointing into the image folder
        store.execute("UPDATE model_versions SET folder = ? WHERE id = ?",
                      (str(store.image_root), v1))  # fmt: skip
    versions.delete_version(store, v1)
    assert (store.image_root / "precious.png").exists()


def test_a_version_4_project_gets_names_and_notes(tmp_path) -> None:
    with sqlite3.connect(tmp_path / DATABASE_NAME) as db:
        for migration in schema.MIGRATIONS[:4]:
            for statement in schema._statements(migration):
                db.execute(statement)
        db.execute("PRAGMA user_version = 4")
        db.execute("INSERT INTO meta VALUES ('image_root', '/images')")
        db.execute(
            "INSERT INTO model_versions (created_at, status, kind, config, augmentation, "
            "classes, folder) VALUES ('now', 'done', 'quick', '{}', '{}', '[\"x\"]', 'models/1')"
        )
    store = ProjectStore.open(tmp_path)
    version = versions.get_version(store, 1)
    assert (version.title, version.note) == ("", "")
    assert versions.rename_version(store, 1, "old").display_name == "v1 · old"
    store.close()


def test_cli_names_annotates_lists_and_deletes(store: ProjectStore, capsys) -> None:
    v1, v2 = _version(store), _version(store, active=True)
    project = str(store.project_dir)
    store.close()
    assert main(["versions", "rename", "v1", "baseline", "--project", project]) == 0
    assert "v1 is now called v1 · baseline" in capsys.readouterr().out
    assert main(["versions", "note", "v1", "before ward B", "--project", project]) == 0
    capsys.readouterr()
    assert main(["versions", "list", "--project", project, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["versions"]
    assert [(v["model_version"], v["name"], v["note"], v["active"]) for v in listed] == [
        (f"v{v2}", "", "", True), (f"v{v1}", "baseline", "before ward B", False)
    ]  # fmt: skip
    assert main(["versions", "delete", f"v{v2}", "--project", project]) == 1
    assert "active model" in capsys.readouterr().err
    assert main(["versions", "delete", f"v{v2}", "--active-too", "--project", project]) == 0
    assert "v1 · baseline is the active model" in capsys.readouterr().out
