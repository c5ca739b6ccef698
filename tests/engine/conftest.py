"""Fixtures shared by the engine tests (no Qt here)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.store import to_db_path
from linnaeus.engine.project.store import utc_now


def add_images(store: ProjectStore, paths: list[str]) -> list[int]:
    """Insert bare image rows, as an import would."""
    ids = []
    with store.transaction():
        for path in paths:
            cursor = store.execute(
                "INSERT INTO images (path, status, added_at) VALUES (?, 'ok', ?)",
                (to_db_path(path), utc_now()),
            )
            ids.append(cursor.lastrowid)
    return ids


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ProjectStore]:
    """An empty project over an empty image folder."""
    (tmp_path / "images").mkdir()
    project = ProjectStore.create(tmp_path / "project", tmp_path / "images")
    yield project
    project.close()
