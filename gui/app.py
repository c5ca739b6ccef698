"""Starting the desktop application: `main(argv)`.

``linnaeus`` (no command) runs `main` through the ``linnaeus.apps`` entry
point ``gui``; ``python -m linnaeus.gui.app`` does the same. Options:
``--project DIR`` opens a project, ``--screenshot FILE.png`` renders the
window once the project's images, thumbnails and the selected image are
shown, saves it and exits (for the documentation and for checks),
``--size 1366x768`` sets the window size, ``--theme system|light|dark``
overrides the theme chosen in Settings, ``--image PATH`` selects that image.

Where Qt could not open a window (on Linux: a system library its X11 plugin
needs is missing, or no X server answers) `main` says so, with what to
install, and returns 1 before Qt starts, instead of letting Qt abort.

The application uses Qt's Fusion style with a light or dark palette
(`theme`: by default it follows the system's colour scheme, and changes with
it), and high-DPI scaling without rounding, so 150 % screens are sharp.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import shiboken6
from PySide6.QtCore import QCoreApplication
from PySide6.QtCore import QObject
from PySide6.QtCore import QSettings
from PySide6.QtCore import Qt
from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from linnaeus.engine.errors import LinnaeusError
from linnaeus.gui import app_settings
from linnaeus.gui.image_table import DEFAULT_DESCENDING
from linnaeus.gui.image_table import SORT_KEYS
from linnaeus.gui.image_table import ImageFilter
from linnaeus.gui.main_window import MainWindow
from linnaeus.gui.qt_platform import window_problem
from linnaeus.gui.theme import apply_theme
from linnaeus.gui.workflows import install_workflows

log = logging.getLogger(__name__)

SCREENSHOT_TIMEOUT_MS = 20_000
_POLL_MS = 100


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="linnaeus gui", description="The Linnaeus desktop application."
    )
    parser.add_argument("--project", type=Path, help="open this project folder")
    parser.add_argument(
        "--screenshot",
        type=Path,
        metavar="FILE.png",
        help="save the window to this PNG once loaded, then exit",
    )
    parser.add_argument("--size", type=_size, metavar="WxH", help="window size, e.g. 1366x768")
    parser.add_argument("--theme", choices=tuple(app_settings.THEMES),
                        help="colours (default: as chosen in Settings)")  # fmt: skip
    parser.add_argument("--image", help="select this image (path relative to the image folder)")
    parser.add_argument("--sort", choices=SORT_KEYS, help="sort the grid by this key")
    return parser


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a size looks like 1366x768, not {text!r}") from None
    return width, height


def main(argv: Sequence[str] | None = None) -> int:
    """Run the application; returns its exit status."""
    args, qt_args = build_parser().parse_known_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    problem = window_problem()
    if problem is not None:  # Qt would abort the process with a message about plugins
        print(f"linnaeus: error: {problem}", file=sys.stderr)
        return 1
    app = create_application([sys.argv[0], *qt_args], theme=args.theme)
    window = MainWindow()
    install_workflows(window)
    try:
        return _run(app, window, args)
    finally:
        window.close()
        # Delete the window now, on the GUI thread: left to Python's garbage
        # collector (signal connections make cycles) it could go later, from a
        # worker thread, which crashes Qt.
        shiboken6.delete(window)


def _run(app: QApplication, window: MainWindow, args: argparse.Namespace) -> int:
    if args.size:
        window.resize(*args.size)
    window.show()
    if args.project is None:
        opened = True
        if not args.screenshot:  # carry on where the user left off
            window.reopen_last_project()
    else:
        opened = window.open_project(args.project)
    if args.screenshot and not opened:
        print(f"linnaeus: error: cannot open the project {args.project}", file=sys.stderr)
        return 1
    if args.sort:
        natural = ImageFilter(sort=args.sort, descending=DEFAULT_DESCENDING[args.sort])
        window.project_view.filter_bar.apply(natural)
    if args.screenshot:
        ScreenshotJob(window, args.screenshot, args.image).start()
    return app.exec()


def create_application(argv: Sequence[str], *, theme: str | None = None) -> QApplication:
    """The QApplication, made once: names (for QSettings), Fusion style, palette, DPI.
    ``theme`` None takes the one chosen in Settings (`app_settings.theme`)."""
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
            Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
        )
        QCoreApplication.setOrganizationName("Linnaeus")
        QCoreApplication.setApplicationName("Linnaeus")
        app = QApplication(list(argv))
        app.setStyle("Fusion")
    apply_theme(app, theme or app_settings.theme(QSettings()))
    return app


class ScreenshotJob(QObject):
    """Saves the window to a PNG once everything on screen has loaded, then quits."""

    def __init__(self, window: MainWindow, path: Path, image: str | None = None) -> None:
        super().__init__(window)
        self._window = window
        self._path = path
        self._image = image
        self._selected = False
        self._timer = QTimer(self, interval=_POLL_MS)
        self._timer.timeout.connect(self._check)
        self._settle = 3  # polls in a row with nothing loading

    def start(self) -> None:
        self._timer.start()
        QTimer.singleShot(SCREENSHOT_TIMEOUT_MS, self.save)

    def _check(self) -> None:
        session = self._window.session
        if session is not None:
            if session.model.is_loading:
                return
            if self._image and not self._selected:
                self._selected = True
                try:
                    image_id = session.store.image_by_path(self._image).id
                except LinnaeusError as error:
                    log.warning("%s", error)
                else:
                    self._window.project_view.grid.select_image(image_id)
            viewer = self._window.project_view.viewer
            if not session.loader.is_idle() or viewer.is_loading:
                self._settle = 3
                return
        self._settle -= 1
        if self._settle <= 0:
            self.save()

    def save(self) -> None:
        if not self._timer.isActive():
            return
        self._timer.stop()
        self._path.parent.mkdir(parents=True, exist_ok=True)
        saved = self._window.grab().save(str(self._path), "PNG")
        if not saved:
            print(f"linnaeus: error: cannot write {self._path}", file=sys.stderr)
        QCoreApplication.exit(0 if saved else 1)


if __name__ == "__main__":
    sys.exit(main())
