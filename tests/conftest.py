"""Fixtures for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _app_cache_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The app's cache folder (backbones converted to ONNX) is a temporary folder
    shared by the session's tests, and their child processes: each backbone is
    converted once per session, never into the developer's own cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("app-cache")))
    yield
    patch.undo()
