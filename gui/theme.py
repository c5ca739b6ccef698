"""The application's colours: Qt's Fusion style with a light or a dark palette.

"system" follows the desktop's colour scheme, and changes with it. The dark
palette keeps text at a contrast ratio of at least 7:1 on its backgrounds
(tested). Images and heatmaps are never tinted by it: the viewer paints them
on its own near-black background in both themes, with the same colour map.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication

_THEME_PROPERTY = "linnaeus_theme"


def apply_theme(app: QApplication, theme: str = "system") -> None:
    """Use the light or dark palette; "system" follows the desktop's colour scheme
    (now and whenever it changes)."""
    if app.property(_THEME_PROPERTY) is None:  # the first call: follow the desktop's changes
        app.styleHints().colorSchemeChanged.connect(lambda _scheme: _on_scheme_changed(app))
    app.setProperty(_THEME_PROPERTY, theme)
    app.setPalette(dark_palette() if is_dark(app, theme) else app.style().standardPalette())


def is_dark(app: QApplication, theme: str) -> bool:
    return theme == "dark" or (
        theme == "system" and app.styleHints().colorScheme() == Qt.ColorScheme.Dark
    )


def _on_scheme_changed(app: QApplication) -> None:
    if app.property(_THEME_PROPERTY) == "system":
        apply_theme(app, "system")


def dark_palette() -> QPalette:
    """A dark palette for Fusion with enough contrast for text and selections."""
    palette = QPalette()
    role, group = QPalette.ColorRole, QPalette.ColorGroup
    colours = {
        role.Window: "#2b2b2e",
        role.WindowText: "#e6e6e6",
        role.Base: "#1f1f22",
        role.AlternateBase: "#28282b",
        role.ToolTipBase: "#3a3a3e",
        role.ToolTipText: "#e6e6e6",
        role.Text: "#e6e6e6",
        role.Button: "#3a3a3e",
        role.ButtonText: "#e6e6e6",
        role.BrightText: "#ff6b6b",
        role.Link: "#56B4E9",
        role.Highlight: "#2f6fa8",
        role.HighlightedText: "#ffffff",
        role.PlaceholderText: "#9a9a9a",
        role.Light: "#4a4a4e",
        role.Midlight: "#3f3f43",
        role.Mid: "#5a5a5e",
        role.Dark: "#19191b",
        role.Shadow: "#000000",
    }
    for colour_role, colour in colours.items():
        palette.setColor(colour_role, QColor(colour))
    for colour_role in (role.Text, role.WindowText, role.ButtonText):
        palette.setColor(group.Disabled, colour_role, QColor("#7a7a7a"))
    return palette


def contrast_ratio(first: QColor, second: QColor) -> float:
    """The WCAG contrast ratio of two colours (1 to 21)."""

    def luminance(colour: QColor) -> float:
        def channel(value: float) -> float:
            return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

        return (
            0.2126 * channel(colour.redF())
            + 0.7152 * channel(colour.greenF())
            + 0.0722 * channel(colour.blueF())
        )

    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)
