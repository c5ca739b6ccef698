"""GUI tests run offscreen with pytest-qt; every top-level widget is closed after each test."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtCore import QThreadPool


@pytest.fixture(autouse=True)
def _close_all_windows(qapp):
    yield
    for widget in qapp.topLevelWidgets():
        widget.close()
        widget.deleteLater()
    QThreadPool.globalInstance().waitForDone(10_000)  # no worker outlives its test
    qapp.processEvents()
