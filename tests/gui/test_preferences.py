"""What the window remembers and offers: sort and selection per project, the user
guide, the Settings dialog and its dark theme, the Classes menu."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QColor
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication
from PySide6.QtWidgets import QInputDialog
from PySide6.QtWidgets import QToolButton

from linnaeus.gui import app_settings
from linnaeus.gui.image_table import ImageFilter
from linnaeus.gui.main_window import MainWindow
from linnaeus.gui.open_folder_dialog import suggest_project_dir
from linnaeus.gui.settings_dialog import SettingsDialog
from linnaeus.gui.theme import apply_theme
from linnaeus.gui.theme import contrast_ratio
from linnaeus.gui.theme import dark_palette
from linnaeus.gui.user_guide import GUIDE_STEPS
from linnaeus.gui.user_guide import UserGuideDialog
from linnaeus.gui.view_memory import ViewMemory
from linnaeus.gui.view_memory import load_view
from linnaeus.gui.view_memory import save_view


def reopen(tmp_path, qtbot, project) -> MainWindow:
    settings = QSettings(str(tmp_path / "settings0.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    window.show()
    assert window.open_project(project)
    qtbot.waitUntil(lambda: not window.session.model.is_loading, timeout=10_000)
    return window


def test_sort_order_and_selection_come_back_when_the_project_opens_again(
    make_window, qtbot, tmp_path
) -> None:
    window = make_window(predictions=True)
    project = window.session.project_dir
    window.project_view.filter_bar.apply(ImageFilter(sort="confidence", descending=True))
    grid = window.project_view.grid
    grid.select_row(3)
    chosen = [grid.current_image_id()]
    grid.selectionModel().select(
        window.session.model.index(5, 0), grid.selectionModel().SelectionFlag.Select
    )
    chosen = grid.selected_image_ids()
    current = grid.current_image_id()
    assert len(chosen) == 2
    window.close()

    again = reopen(tmp_path, qtbot, project)
    filter_bar = again.project_view.filter_bar
    assert filter_bar.sort.currentData() == "confidence" and filter_bar.reverse.isChecked()
    qtbot.waitUntil(lambda: again.project_view.grid.selected_image_ids() == chosen)
    assert again.project_view.grid.current_image_id() == current
    again.close()


def test_view_memory_survives_a_round_trip_and_ignores_nonsense(tmp_path) -> None:
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    memory = ViewMemory("loss", True, 7, (3, 7, 9))
    save_view(settings, "abc", memory)
    assert load_view(settings, "abc") == memory
    assert load_view(settings, "other") is None
    settings.setValue("projects/bad/sort", "colour")
    assert load_view(settings, "bad") is None


def test_the_user_guide_opens_from_help_and_from_the_start_page(tmp_path, qtbot) -> None:
    window = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    assert help_menu.actions()[0] is window.guide_action
    assert window.guide_action.shortcut().toString() == "F1"
    window.start_page.guide.click()
    guide = window.findChild(UserGuideDialog)
    assert guide is not None and guide.isVisible()
    text = guide.browser.toPlainText()
    assert 8 <= len(GUIDE_STEPS) <= 10 and all(title in text for title, _ in GUIDE_STEPS)
    window.guide_action.trigger()  # a second time: the same window, raised
    assert len(window.findChildren(UserGuideDialog)) == 1
    guide.close()


def test_the_guide_names_menus_that_exist(tmp_path, qtbot) -> None:
    from linnaeus.gui.workflows import install_workflows

    window = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    install_workflows(window)
    entries = {
        f"{menu.text().replace('&', '')} > {action.text().replace('&', '')}"
        for menu in window.menuBar().actions()
        for action in menu.menu().actions()
    }
    named = {"File > Open folder of images…", "Model > Export model and report…",
             "Model > Classify a folder…", "File > Export labels…", "File > Rescan folder",
             "Help > User guide", "File > Settings…"}  # fmt: skip
    assert named <= entries
    guide = " ".join(text for _, text in GUIDE_STEPS)
    for entry in named - {"Help > User guide", "File > Settings…"}:
        assert entry in guide


def test_settings_are_stored_and_used(tmp_path, qtbot) -> None:
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    assert app_settings.budget_minutes(settings) == 10
    assert app_settings.theme(settings) == "system"
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    folder = tmp_path / "my projects"
    dialog.projects_folder.setText(str(folder))
    dialog.budget.setValue(25)
    dialog.theme.setCurrentIndex(dialog.theme.findData("light"))
    dialog.accept()
    assert settings.value("training/budget_minutes", type=int) == 25  # the key `anytime` reads
    assert app_settings.projects_folder(settings) == folder
    assert suggest_project_dir(tmp_path / "chest", app_settings.projects_folder(settings)) == (
        folder / "chest"
    )
    cancelled = SettingsDialog(settings)
    qtbot.addWidget(cancelled)
    cancelled.budget.setValue(3)
    cancelled.reject()
    assert app_settings.budget_minutes(settings) == 25


def test_the_dark_theme_is_applied_and_stays_readable(tmp_path, qtbot) -> None:
    app = QApplication.instance()
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.theme.setCurrentIndex(dialog.theme.findData("dark"))
    try:
        dialog.accept()
        assert app_settings.theme(settings) == "dark"
        assert app.palette().color(QPalette.ColorRole.Base) == QColor("#1f1f22")
    finally:
        apply_theme(app, "light")
    assert app.palette().color(QPalette.ColorRole.Base) != QColor("#1f1f22")


@pytest.mark.parametrize(
    ("text", "background", "least"),
    [
        (QPalette.ColorRole.Text, QPalette.ColorRole.Base, 7.0),
        (QPalette.ColorRole.WindowText, QPalette.ColorRole.Window, 7.0),
        (QPalette.ColorRole.ButtonText, QPalette.ColorRole.Button, 7.0),
        (QPalette.ColorRole.HighlightedText, QPalette.ColorRole.Highlight, 4.5),
        (QPalette.ColorRole.PlaceholderText, QPalette.ColorRole.Base, 4.5),
        (QPalette.ColorRole.Link, QPalette.ColorRole.Base, 4.5),
    ],
)
def test_dark_palette_contrast(text, background, least) -> None:
    palette = dark_palette()
    assert contrast_ratio(palette.color(text), palette.color(background)) >= least


def test_the_classes_menu_and_the_class_bar_show_where_class_changes_are(
    make_window, qtbot, monkeypatch
) -> None:
    window = make_window()
    bar = window.project_view.class_bar
    assert "right-click" in bar.hint.text() and "Classes menu" in bar.hint.text()
    assert bar.findChild(QToolButton, "class-menu-disk").toolTip() == (
        "Rename, recolour, merge or delete disk"
    )
    menu = window.classes_menu
    menu.aboutToShow.emit()
    titles = [a.text() for a in menu.actions() if a.text()]
    assert titles == ["Add a class…", "Rename", "Change colour of", "Merge",
                      "Delete (its images become unlabelled)"]  # fmt: skip
    rename = menu.actions()[2].menu()
    assert [a.text() for a in rename.actions()] == ["disk", "square"]
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("round", True))
    rename.actions()[0].trigger()
    assert [c.name for c in window.session.store.classes()] == ["round", "square"]
    menu.aboutToShow.emit()
    merge = next(a.menu() for a in menu.actions() if a.text() == "Merge")
    into = merge.actions()[0].menu()
    assert merge.actions()[0].text() == "round into" and [a.text() for a in into.actions()] == [
        "square"
    ]
    into.actions()[0].trigger()
    assert [c.name for c in window.session.store.classes()] == ["square"]
    window.undo_action.trigger()
    assert {c.name for c in window.session.store.classes()} == {"round", "square"}


def test_the_application_starts_with_the_theme_chosen_in_settings() -> None:
    from linnaeus.gui.app import create_application

    app = QApplication.instance()
    QSettings().setValue(app_settings.THEME_KEY, "dark")
    try:
        assert create_application(["linnaeus"]) is app
        assert app.palette().color(QPalette.ColorRole.Window) == QColor("#2b2b2e")
        create_application(["linnaeus"], theme="light")  # --theme wins over the setting
        assert app.palette().color(QPalette.ColorRole.Window) != QColor("#2b2b2e")
    finally:
        QSettings().remove(app_settings.THEME_KEY)
        apply_theme(app, "light")
