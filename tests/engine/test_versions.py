"""Model versions: registration, label snapshot, active model."""

from __future__ import annotations

import sqlite3

import pytest

from linnaeus.engine.errors import ProjectError
from linnaeus.engine.project import schema
from linnaeus.engine.project import versions
from linnaeus.engine.project.database import DATABASE_NAME
from linnaeus.engine.project.store import ProjectStore
from tests.engine.conftest import add_images


def test_version_life_cycle(store: ProjectStore) -> None:
    a, b = add_images(store, ["a.png", "b.png"])
    version = versions.create_version(
        store, kind="seed-cnn", config={"epochs": 3}, augmentation={}, classes=["x", "y"],
        labels={a: (0, "train"), b: (1, "val")},
    )  # fmt: skip
    assert version.name == "v1" and version.status == "training" and version.folder.is_dir()
    assert versions.label_snapshot(store, version.id) == {a: (0, "train"), b: (1, "val")}
    with pytest.raises(ProjectError, match="did not finish"):
        versions.set_active(store, version.id)

    done = versions.update_version(
        store, version.id, status="done", metrics={"val": {"accuracy": 1.0}}
    )
    versions.set_active(store, done.id)
    assert versions.active_version(store).metrics == {"val": {"accuracy": 1.0}}
    with pytest.raises(ProjectError, match="active model"):
        versions.delete_version(store, done.id)


@pytest.mark.parametrize(("text", "number"), [("v3", 3), ("3", 3), (" V12 ", 12)])
def test_parse_version(text: str, number: int) -> None:
    assert versions.parse_version(text) == number


def test_unknown_version_is_explained(store: ProjectStore) -> None:
    with pytest.raises(ProjectError, match="no model version v9"):
        versions.get_version(store, 9)
    with pytest.raises(ProjectError, match="looks like v3"):
        versions.parse_version("latest")


def test_a_version_3_project_is_migrated_keeping_versions_labels_and_predictions(
    tmp_path,
) -> None:
    """Schema 4 rebuilds the versions table (for "interrupted") without losing what
    refers to it, and its references still delete with it."""
    database = tmp_path / DATABASE_NAME
    with sqlite3.connect(database) as db:
        for migration in schema.MIGRATIONS[:3]:
            for statement in schema._statements(migration):
                db.execute(statement)
        db.execute("PRAGMA user_version = 3")
        db.execute("INSERT INTO meta VALUES ('image_root', '/images')")
        db.execute("INSERT INTO images (path, status, added_at) VALUES ('a.png', 'ok', 'now')")
        db.execute(
            "INSERT INTO model_versions (created_at, status, kind, config, augmentation, "
            "classes, folder) VALUES ('now', 'cancelled', 'seed-cnn', '{}', '{}', '[\"x\"]', "
            "'models/1')"
        )
        db.execute("INSERT INTO model_labels VALUES (1, 1, 0, 'train')")
        db.execute("INSERT INTO predictions VALUES (1, 1, 0, 0.9, x'00')")
    store = ProjectStore.open(tmp_path)
    assert store.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    assert store.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    version = versions.get_version(store, 1)
    assert version.status == "cancelled" and versions.label_snapshot(store, 1) == {1: (0, "train")}
    assert versions.update_version(store, 1, status="interrupted").status == "interrupted"
    versions.delete_version(store, 1)
    assert store.execute("SELECT count(*) FROM model_labels").fetchone()[0] == 0
    assert store.execute("SELECT count(*) FROM predictions").fetchone()[0] == 0
    store.close()
