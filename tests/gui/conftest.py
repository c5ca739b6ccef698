"""GUI tests run offscreen with pytest-qt; every top-level widget is closed after each test.

Widgets are deleted on the GUI thread at the end of each test (deferred
deletions run, then the garbage collector): a window left in a reference cycle
would otherwise be collected whenever Python next collects, perhaps on a worker
thread of a later test, which crashes Qt. Settings go to a temporary folder,
never the developer's own.
"""

from __future__ import annotations

import gc
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtCore import QCoreApplication
from PySide6.QtCore import QEvent
from PySide6.QtCore import QSettings
from PySide6.QtCore import QThreadPool
from PySide6.QtWidgets import QDialog
from PySide6.QtWidgets import QMainWindow


@pytest.fixture(scope="session", autouse=True)
def _private_settings(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("settings"))
    for settings_format in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(settings_format, QSettings.Scope.UserScope, folder)
    QCoreApplication.setOrganizationName("Linnaeus tests")
    QCoreApplication.setApplicationName("Linnaeus tests")


@pytest.fixture(autouse=True)
def _close_all_windows(qapp):
    yield
    for widget in qapp.topLevelWidgets():
        # pyqtgraph keeps hidden parentless menus and control widgets for its plots;
        # they belong to their plot, which deletes them (deleting them first crashes).
        if isinstance(widget, (QMainWindow, QDialog)) or widget.isVisible():
            widget.close()
            widget.deleteLater()
    QThreadPool.globalInstance().waitForDone(10_000)  # no worker outlives its test
    qapp.processEvents()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()
