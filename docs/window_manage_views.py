"""Screenshots of the views for managing a project: the user guide, Settings, the
model versions' menu with a note, Export labels after an export.

For `docs/screenshots.py`: ``EXTRA_VIEWS.append(photograph_manage_views)`` (this
folder is on ``sys.path`` when that script runs). ``shots`` is its `Shots`: the
window, its workflows, ``save(name, widget)`` and ``work``, a temporary folder.
Nothing in the project changes: the labels are exported into ``shots.work``
(Rescan folder is left out: it would write the project's database).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QApplication

from linnaeus.gui.panels.export_labels_dialog import ExportLabelsDialog
from linnaeus.gui.settings_dialog import show_settings
from linnaeus.gui.user_guide import show_user_guide


def _settle(until: Callable[[], bool] = lambda: True, timeout: float = 120.0) -> None:
    app = QApplication.instance()
    end = time.monotonic() + timeout
    while not until() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def photograph_manage_views(shots: Any) -> None:
    """Save the user-guide, settings, version-menu and export-labels views."""
    window = shots.window
    guide = show_user_guide(window)
    _settle()
    shots.save("user-guide", guide)
    guide.close()
    settings = show_settings(window.settings, window)
    _settle()
    shots.save("settings", settings)
    settings.close()
    if window.session is None:
        return
    training = shots.workflows.training
    window.project_view.panels.setCurrentWidget(training)
    training.versions_view.selectRow(0)
    menu = training.version_actions.context_menu()
    menu.popup(training.versions_view.viewport().mapToGlobal(training.versions_view.pos()))
    _settle()
    shots.save("version-menu", menu)
    menu.close()
    export = ExportLabelsDialog(window.session.project_dir, window)
    export.show()
    export.destination.setText(str(shots.work / "labels.csv"))
    export.start()
    _settle(lambda: not export.is_running())
    shots.save("export-labels", export)
    export.close()
