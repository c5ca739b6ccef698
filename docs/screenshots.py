"""Screenshots of every main view of the desktop window, for the README and for review.

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/screenshots.py \\
        --project demo-project --out docs --size 1366x768

Opens the project as a user would (the real window, panels and workers),
walks through the views (browse with predictions, heatmap, feature maps,
training curves, evaluation, augmentation, classify and export dialogs, the
start page) and saves each as a PNG once everything on it has loaded. Run it
under Xvfb (``xvfb-run -s "-screen 0 1920x1080x24" ...``) to see the real
X11 rendering, or offscreen. It never changes the project (settings go to a
temporary folder; the model is exported only if it was not yet).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
from PySide6.QtWidgets import QWidget

from linnaeus.engine.evaluation.version import version_relabel_queue
from linnaeus.engine.project.versions import active_version
from linnaeus.gui.app import create_application
from linnaeus.gui.image_table import DEFAULT_DESCENDING
from linnaeus.gui.image_table import ImageFilter
from linnaeus.gui.main_window import MainWindow
from linnaeus.gui.workflows import Workflows
from linnaeus.gui.workflows import install_workflows


def wait_until(condition: Callable[[], bool], timeout: float = 120.0, settle: float = 0.3) -> None:
    """Run the event loop until ``condition`` holds (then a little longer, so that
    what it started is painted)."""
    app = QApplication.instance()
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the window did not finish loading")
        app.processEvents()
        time.sleep(0.02)
    end = time.monotonic() + settle
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def save(widget: QWidget, path: Path) -> None:
    if not widget.grab().save(str(path), "PNG"):
        raise OSError(f"cannot write {path}")
    print(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--size", default="1366x768")
    parser.add_argument("--theme", choices=("light", "dark", "system"), default="light")
    parser.add_argument("--suffix", default="", help="added to each file name, e.g. -1920")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    create_application([sys.argv[0]], theme=args.theme)
    settings_file = Path(tempfile.mkdtemp()) / "settings.ini"
    window = MainWindow(settings=QSettings(str(settings_file), QSettings.Format.IniFormat))
    workflows = install_workflows(window)
    window.resize(width, height)
    window.show()

    def shot(name: str, widget: QWidget | None = None) -> None:
        save(widget or window, args.out / f"{name}{args.suffix}.png")

    save(window, args.out / f"start-page{args.suffix}.png")
    if not window.open_project(args.project):
        print(f"cannot open {args.project}", file=sys.stderr)
        return 1
    session, view = window.session, window.project_view
    viewer = view.viewer
    wait_until(lambda: not session.model.is_loading)
    version = active_version(session.store)
    if version is not None:  # the image the model doubts most, as the relabel queue has it
        queue = version_relabel_queue(session.store, version)
        view.filter_bar.apply(ImageFilter(sort="loss", descending=DEFAULT_DESCENDING["loss"]))
        wait_until(lambda: not session.model.is_loading)
        if queue:
            view.grid.select_image(queue[0].image_id)
    wait_until(
        lambda: session.loader.is_idle() and not viewer.is_loading and viewer.pixels is not None
    )
    shot("browse-with-predictions")

    if version is not None:
        viewer.heatmap_action.setChecked(True)
        heatmaps = workflows.heatmaps
        wait_until(lambda: viewer.heatmap_visible and not heatmaps.is_busy, timeout=600)
        shot("heatmap")
        view.panels.setCurrentWidget(workflows.features)
        wait_until(lambda: workflows.features.explanation is not None)
        shot("feature-maps")
    view.panels.setCurrentWidget(workflows.training)
    wait_until(lambda: True)
    shot("training")
    view.panels.setCurrentWidget(workflows.evaluation)
    wait_until(lambda: workflows.evaluation.evaluation_data() is not None or version is None)
    shot("evaluation")
    if version is not None:
        check_labels(workflows, shot)
    view.panels.setCurrentWidget(workflows.augment)
    workflows.augment.set_image(viewer.pixels)
    wait_until(lambda: bool(workflows.augment.samples), settle=1.0)
    shot("augmentation")
    workflows.classify_action.trigger()
    wait_until(lambda: True, settle=1.0)
    shot("classify-dialog", workflows.dialog)
    workflows.export_action.trigger()
    wait_until(lambda: True)
    shot("export-dialog", workflows.dialog)
    workflows.dialog.close()
    window.close()
    return 0


def check_labels(workflows: Workflows, shot: Callable[[str], None]) -> None:
    """The Check labels list, then its first image opened by a double-click: the Image
    view with the heatmap of the suggested class."""
    evaluation, viewer = workflows.evaluation, workflows.window.project_view.viewer
    evaluation.tabs.setCurrentWidget(evaluation.label_check)
    wait_until(lambda: True)
    shot("check-labels")
    if not evaluation.queue_model.entries:
        return
    first = evaluation.queue_model.entries[0].image_id
    evaluation.queue_view.selectRow(0)
    evaluation.queue_view.activated.emit(evaluation.queue_model.index(0, 1))
    wait_until(
        lambda: (
            viewer.image_id == first and viewer.heatmap_visible and not workflows.heatmaps.is_busy
        ),
        timeout=600,
    )
    shot("check-labels-opened")


if __name__ == "__main__":
    sys.exit(main())
