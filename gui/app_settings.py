"""The user's preferences, as QSettings keys with their defaults (one place for each).

The Settings dialog writes them; the parts of the window that use them read
them here: where new projects go (`projects_folder`), the default time budget
of a training (`budget_minutes`, key ``training/budget_minutes``) and the
colour theme (`theme`).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtCore import QStandardPaths

from linnaeus.engine.training.config import DEFAULT_BUDGET
from linnaeus.engine.training.config import parse_budget

PROJECTS_FOLDER_KEY = "general/projects_folder"
BUDGET_MINUTES_KEY = "training/budget_minutes"
THEME_KEY = "appearance/theme"
DEFAULT_BUDGET_MINUTES = round(parse_budget(DEFAULT_BUDGET) / 60)  # the trainer's default
BUDGET_RANGE = (0, 24 * 60)  # minutes; 0: the quick model only
THEMES = {
    "system": "Follow the system",
    "light": "Light",
    "dark": "Dark",
}


def default_projects_folder() -> Path:
    """``~/Linnaeus projects``: a folder of its own, never inside an image folder."""
    home = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.HomeLocation)
    return Path(home) / "Linnaeus projects"


def projects_folder(settings: QSettings) -> Path:
    """Where a new project's folder is suggested."""
    value = str(settings.value(PROJECTS_FOLDER_KEY, "") or "")
    return Path(value) if value.strip() else default_projects_folder()


def budget_minutes(settings: QSettings) -> int:
    """The time budget a training starts with, in minutes."""
    try:
        value = int(settings.value(BUDGET_MINUTES_KEY, DEFAULT_BUDGET_MINUTES))
    except (TypeError, ValueError):
        return DEFAULT_BUDGET_MINUTES
    low, high = BUDGET_RANGE
    return min(max(value, low), high)


def theme(settings: QSettings) -> str:
    """ "system", "light" or "dark"."""
    value = str(settings.value(THEME_KEY, "system"))
    return value if value in THEMES else "system"
