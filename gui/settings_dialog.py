"""File > Settings…: where new projects go, the training time budget, the colours.

The dialog reads and writes the keys of `app_settings`; OK stores them and
applies the theme at once, Cancel changes nothing.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from PySide6.QtWidgets import QComboBox
from PySide6.QtWidgets import QDialog
from PySide6.QtWidgets import QDialogButtonBox
from PySide6.QtWidgets import QFileDialog
from PySide6.QtWidgets import QFormLayout
from PySide6.QtWidgets import QHBoxLayout
from PySide6.QtWidgets import QLabel
from PySide6.QtWidgets import QLineEdit
from PySide6.QtWidgets import QPushButton
from PySide6.QtWidgets import QSpinBox
from PySide6.QtWidgets import QVBoxLayout
from PySide6.QtWidgets import QWidget

from linnaeus.gui import app_settings
from linnaeus.gui.theme import apply_theme


class SettingsDialog(QDialog):
    """Edit the user's preferences (`app_settings`) in ``settings``."""

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.settings = settings
        self.projects_folder = QLineEdit(str(app_settings.projects_folder(settings)))
        self.projects_folder.setToolTip(
            "New projects are suggested in a folder of their own here (you can still choose "
            "another place each time)."
        )
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._on_browse_clicked)
        folder = QHBoxLayout()
        folder.addWidget(self.projects_folder, 1)
        folder.addWidget(browse)
        self.budget = QSpinBox()
        self.budget.setRange(*app_settings.BUDGET_RANGE)
        self.budget.setSuffix(" min")
        self.budget.setSpecialValueText("none: the quick model only")
        self.budget.setValue(app_settings.budget_minutes(settings))
        self.budget.setToolTip(
            "How long a training may look for better versions after the quick model; "
            "the Train tab starts with this budget."
        )
        self.theme = QComboBox()
        for key, title in app_settings.THEMES.items():
            self.theme.addItem(title, key)
        self.theme.setCurrentIndex(self.theme.findData(app_settings.theme(settings)))
        form = QFormLayout()
        form.addRow("New projects go in", folder)
        form.addRow("Training time budget", self.budget)
        form.addRow("Colours", self.theme)
        note = QLabel(
            "Images and heatmaps keep their own colours in both themes; charts already drawn "
            "take the new colours when Linnaeus starts again."
        )
        note.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addStretch(1)
        layout.addWidget(buttons)
        self.resize(560, 200)

    def _on_browse_clicked(self) -> None:
        chosen = QFileDialog.getExistingDirectory(
            self, "Where new projects go", self.projects_folder.text()
        )
        if chosen:
            self.projects_folder.setText(chosen)

    def accept(self) -> None:
        """Store the choices and apply the theme."""
        folder = self.projects_folder.text().strip()
        default = str(app_settings.default_projects_folder())
        stored = "" if not folder or folder == default else str(Path(folder).expanduser())
        self.settings.setValue(app_settings.PROJECTS_FOLDER_KEY, stored)
        self.settings.setValue(app_settings.BUDGET_MINUTES_KEY, self.budget.value())
        self.settings.setValue(app_settings.THEME_KEY, self.theme.currentData())
        self.settings.sync()
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, self.theme.currentData())
        super().accept()


def show_settings(settings: QSettings, parent: QWidget | None = None) -> SettingsDialog:
    """Open the Settings dialog (not modal; OK stores, Cancel forgets)."""
    dialog = SettingsDialog(settings, parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    return dialog
