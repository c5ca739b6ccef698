"""The main window: start page, settings that persist, panels, screenshot option."""

from __future__ import annotations

import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel
from PySide6.QtWidgets import QMessageBox

from linnaeus.engine.dataset.importer import import_images
from linnaeus.engine.errors import Cancelled
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.project.database import DATABASE_NAME
from linnaeus.engine.project.store import ProjectStore
from linnaeus.gui import app
from linnaeus.gui import start_page
from linnaeus.gui.main_window import MainWindow
from linnaeus.gui.start_page import DemoRunner
from tests.gui.browse_factory import build_project
from tests.gui.browse_factory import window_factory
from tests.image_factory import write_image


@pytest.fixture
def make_window(tmp_path, qtbot):
    with window_factory(tmp_path, qtbot) as make:
        yield make


def test_layout_tile_size_and_recent_projects_persist(make_window, tmp_path, qtbot) -> None:
    window = make_window()
    project = window.session.project_dir
    window.project_view.grid.set_tile_size(200)
    window.resize(780, 560)  # restoreGeometry keeps windows on the 800 x 600 offscreen screen
    qtbot.waitUntil(lambda: window.project_view.width() == 780)
    window.project_view.splitter.setSizes([200, 300, 260])
    sizes = window.project_view.splitter.sizes()
    window.close()
    assert window.session is None  # closing closed the project
    settings = QSettings(str(tmp_path / "settings0.ini"), QSettings.Format.IniFormat)
    again = MainWindow(settings=settings)
    qtbot.addWidget(again)
    again.show()
    assert again.project_view.grid.tile_size == 200
    assert again.pages.currentWidget() is again.start_page
    assert again.open_project(project)
    qtbot.waitUntil(lambda: again.project_view.splitter.sizes() == sizes)
    qtbot.waitUntil(lambda: not again.session.model.is_loading)
    assert again.recent_projects() == [project]
    assert settings.value("last_project") == str(project)
    assert again.start_page.recent.item(0).data(256) == str(project)


def test_recent_project_opens_from_the_start_page(tmp_path, qtbot) -> None:
    project = build_project(tmp_path / "made")
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    settings.setValue("recent_projects", [str(project), str(tmp_path / "gone")])
    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    recent = window.start_page.recent
    assert "(not found)" in recent.item(1).text()
    recent.itemActivated.emit(recent.item(0))
    assert window.session is not None and window.pages.currentWidget() is window.project_view
    qtbot.waitUntil(lambda: not window.session.model.is_loading)
    window.close_project()
    assert window.pages.currentWidget() is window.start_page


def test_a_folder_that_is_no_project_is_refused_politely(tmp_path, qtbot) -> None:
    window = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    assert not window.open_project(tmp_path)
    assert window.session is None
    warning = window.findChild(QMessageBox)
    assert warning.isVisible() and str(tmp_path) in warning.text()
    warning.close()


@pytest.mark.parametrize("direction", ["images in project", "project in images"])
def test_a_project_that_overlaps_its_images_is_refused_with_what_to_do(
    tmp_path, qtbot, direction: str
) -> None:
    project = build_project(tmp_path / "made")
    images = tmp_path / "made" / "images"
    if direction == "images in project":
        images = images.rename(project / "scans")
        with closing(sqlite3.connect(project / DATABASE_NAME)) as db, db:
            db.execute("UPDATE meta SET value = ? WHERE key = 'image_root'", (str(images),))
        advice = "Move the image folder out of"
    else:
        project = project.rename(images / "project")
        advice = "Move the project folder out of"
    window = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    assert not window.open_project(project)
    assert window.session is None
    warning = window.findChild(QMessageBox)
    assert warning.isVisible() and advice in warning.text()
    assert not (project / "thumbnails").exists()
    warning.close()


def test_panels_join_as_tabs_and_may_refuse_closing(make_window) -> None:
    window = make_window()

    class BusyPanel(QLabel):
        busy = True

        def confirm_close(self) -> bool:
            return not self.busy

    panel = BusyPanel("training…")
    window.add_panel("Train", panel)
    assert window.project_view.tab_titles() == ["Image", "Train"]
    assert not window.close() and window.isVisible()
    panel.busy = False
    assert window.close()


def test_demo_runner_reports_the_project_or_the_error(tmp_path, qtbot, monkeypatch) -> None:
    made = tmp_path / "demo"
    assert start_page.demo_command(made)[-4:] == ["demo", "--project", str(made), "--json"]
    script = "import pathlib, sys; p = pathlib.Path(sys.argv[1]); p.mkdir(); (p / 'linnaeus.db')"
    script += ".touch()"
    fake = [sys.executable, "-c", script]
    monkeypatch.setattr(start_page, "demo_command", lambda d: [*fake, str(d)])
    runner = DemoRunner()
    with qtbot.waitSignal(runner.finished, timeout=20_000) as finished:
        runner.start(made)
    assert finished.args == [made]
    failing = "import sys; print('no weights here', file=sys.stderr); sys.exit(1)"
    monkeypatch.setattr(start_page, "demo_command", lambda d: [sys.executable, "-c", failing])
    with qtbot.waitSignal(runner.failed, timeout=20_000) as failed:
        runner.start(tmp_path / "other")
    assert failed.args == ["no weights here"]


def test_screenshot_option_writes_a_png(tmp_path: Path) -> None:
    project = build_project(tmp_path / "shot", predictions=True)
    out = tmp_path / "docs" / "window.png"
    status = app.main(
        [
            "--project",
            str(project),
            "--screenshot",
            str(out),
            "--size",
            "1366x768",
            "--sort",
            "loss",
        ]
    )
    assert status == 0
    image = QImage(str(out))
    assert not image.isNull() and (image.width(), image.height()) == (1366, 768)


def test_a_project_whose_import_was_interrupted_says_so_when_it_opens(tmp_path, qtbot) -> None:
    project = build_project(tmp_path / "made")
    with ProjectStore.open(project) as store:
        write_image(store.image_root / "disk" / "new.png", size=(32, 32))
        stop = CancelToken()
        stop.cancel()
        with pytest.raises(Cancelled):  # as a full disk or Ctrl+C would stop it
            import_images(store, cancel=stop)
    window = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    assert window.open_project(project)
    qtbot.waitUntil(lambda: not window.session.model.is_loading)
    warning = window.findChild(QMessageBox)
    assert warning.isVisible()
    assert warning.text().startswith("The last import was interrupted (12 of 13 images); run ")
    warning.close()
