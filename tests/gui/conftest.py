"""GUI tests run offscreen with pytest-qt; a test that leaves a window open fails,
and every top-level widget is closed after each test.

A leak is a window the test opened and nobody closed: a top-level widget new
since the test began that is still on screen once the test, qtbot's widgets
and the window factories have been torn down (Qt's own tooltips and popups
aside). The fixture names the leaked windows and fails the test, as napari's
``make_napari_viewer`` does in strict mode; a test that failed already is not
failed twice.

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
from PySide6.QtCore import Qt
from PySide6.QtCore import QThreadPool
from PySide6.QtWidgets import QApplication
from PySide6.QtWidgets import QDialog
from PySide6.QtWidgets import QMainWindow
from PySide6.QtWidgets import QWidget

# Windows Qt opens and closes by itself: not something a test leaks.
_TRANSIENT_WINDOWS = (Qt.WindowType.ToolTip, Qt.WindowType.Popup)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test (``item.rep_call``) for the fixtures."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session", autouse=True)
def _private_settings(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("settings"))
    for settings_format in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(settings_format, QSettings.Scope.UserScope, folder)
    QCoreApplication.setOrganizationName("Linnaeus tests")
    QCoreApplication.setApplicationName("Linnaeus tests")


def leaked_windows(app: QApplication, before: set[QWidget]) -> list[str]:
    """The windows opened since ``before`` that are still on screen, by class and title."""
    return [
        f"{type(widget).__name__} {widget.windowTitle()!r}"
        for widget in app.topLevelWidgets()
        if widget not in before
        and widget.isVisible()
        and widget.windowType() not in _TRANSIENT_WINDOWS
    ]


@pytest.fixture(autouse=True)
def _close_all_windows(qapp, request):
    before = set(qapp.topLevelWidgets())
    yield
    # Runs after qtbot has closed its widgets and the window factories their windows.
    leaked = leaked_windows(qapp, before)
    before.clear()
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
    call = getattr(request.node, "rep_call", None)
    if leaked and call is not None and call.passed:
        pytest.fail(
            "The test left these windows open (close them, or hand them to "
            f"qtbot.addWidget): {', '.join(leaked)}",
            pytrace=False,
        )


@pytest.fixture
def make_window(tmp_path, qtbot):
    """A function that builds main windows on generated projects (`browse_factory`)."""
    from tests.gui.browse_factory import window_factory

    with window_factory(tmp_path, qtbot) as make:
        yield make
