"""Model versions: registration, label snapshot, active model."""

from __future__ import annotations

import pytest

from linnaeus.engine.errors import ProjectError
from linnaeus.engine.project import versions
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
