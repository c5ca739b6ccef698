"""Screenshots of every view of the desktop window, for the README and for review.

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/screenshots.py \\
        --project PROJECT --out /tmp/shots --size 1366x768 --size 1920x1080

Opens a trained project as a user would (the real window, panels and
workers) and saves each view as a PNG once everything on it has loaded:
the start page, the open-folder dialog, browsing with predictions, the
heatmap with its legend (the predicted class, then another class), the
feature maps, training, the evaluation's "Check labels" list, ROC and
calibration, Check labels again with its first image opened (a double-click),
augmentation, the Classify dialog after classifying, and the
Export dialog after an int8 export. With several ``--size`` values each
file is named ``VIEW-WIDTHxHEIGHT.png``; with one, ``VIEW.png`` (``--readme``
keeps only the views the README shows, at a size that keeps docs/ small).

Any project works; the README's come from the brain MRI set:

    linnaeus import ../shared/data/brain_mri --project /tmp/brain
    linnaeus train --project /tmp/brain --model quick

Run it under Xvfb (``xvfb-run -s "-screen 0 1920x1080x24" ...``) to see the
real X11 rendering, or offscreen. It never changes the project: settings go
to a temporary folder, Classify and Export write into a temporary folder
(only the heatmaps export the active model to its usual place, once, as the
window does).

Views from other parts of the window register in `EXTRA_VIEWS`: a function
that takes the `Shots` and saves its view(s) with ``shots.save(name, widget)``;
`register_extra_views` adds docs/window_manage_views.py's (the user guide,
Settings, the versions' menu, Export labels).
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
from linnaeus.gui.open_folder_dialog import OpenFolderDialog
from linnaeus.gui.workflows import Workflows
from linnaeus.gui.workflows import install_workflows

README_VIEWS = (
    "browse-with-predictions", "heatmap", "feature-maps", "training", "evaluation",
    "augmentation", "open-folder",
)  # fmt: skip
README_WIDTH = 1366


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


class Shots:
    """The window being photographed, and where its pictures go."""

    def __init__(self, window: MainWindow, workflows: Workflows, out: Path, suffix: str) -> None:
        self.window, self.workflows, self.out, self.suffix = window, workflows, out, suffix
        self.work = Path(tempfile.mkdtemp(prefix="linnaeus-shots-"))
        self.only: tuple[str, ...] | None = None

    def save(self, name: str, widget: QWidget | None = None) -> None:
        """Save ``widget`` (default: the window) as ``name``."""
        if self.only is not None and name not in self.only:
            return
        path = self.out / f"{name}{self.suffix}.png"
        if not (widget or self.window).grab().save(str(path), "PNG"):
            raise OSError(f"cannot write {path}")
        print(path, flush=True)


# More views: functions taking the `Shots` (the user guide, the settings, ...).
EXTRA_VIEWS: list[Callable[[Shots], None]] = []


def register_extra_views() -> None:
    """The views other modules of docs/ photograph (docs/ is on sys.path when this
    script runs): `window_manage_views` (user guide, settings, versions' menu,
    export labels)."""
    from window_manage_views import photograph_manage_views

    if photograph_manage_views not in EXTRA_VIEWS:
        EXTRA_VIEWS.append(photograph_manage_views)


def browse_and_explain(shots: Shots) -> None:
    """The grid sorted by loss with the most doubted image, its heatmaps, its feature maps."""
    window, workflows = shots.window, shots.workflows
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
    shots.save("browse-with-predictions")
    if version is None:
        return
    heatmaps = workflows.heatmaps
    viewer.heatmap_action.setChecked(True)
    wait_until(lambda: viewer.heatmap_visible and not heatmaps.is_busy, timeout=600)
    wait_until(lambda: workflows.features.explanation is not None)
    shots.save("heatmap")
    explanation = workflows.features.explanation
    other = next(i for i in range(len(explanation.classes)) if i != explanation.predicted)
    viewer.class_choice.setCurrentIndex(viewer.class_choice.findData(other))
    wait_until(lambda: not heatmaps.is_busy and viewer.heatmap_visible, timeout=60)
    shots.save("heatmap-other-class")
    viewer.class_choice.setCurrentIndex(0)
    wait_until(lambda: not heatmaps.is_busy and viewer.heatmap_visible, timeout=60)
    view.panels.setCurrentWidget(workflows.features)
    wait_until(lambda: workflows.features.explanation is not None)
    shots.save("feature-maps")


def panels(shots: Shots) -> None:
    """Training, the evaluation's three tabs and Check labels opening an image, augmentation."""
    view, workflows = shots.window.project_view, shots.workflows
    view.panels.setCurrentWidget(workflows.training)
    wait_until(lambda: True)
    shots.save("training")
    evaluation = workflows.evaluation
    view.panels.setCurrentWidget(evaluation)
    has_model = evaluation.version_choice.count() > 0
    wait_until(lambda: evaluation.evaluation_data() is not None or not has_model)
    for index, name in enumerate(("evaluation", "evaluation-roc", "evaluation-calibration")):
        evaluation.tabs.setCurrentIndex(index)
        wait_until(lambda: True)
        shots.save(name)
    evaluation.tabs.setCurrentIndex(0)
    if has_model:
        check_labels(shots)
    view.panels.setCurrentWidget(workflows.augment)
    workflows.augment.set_image(view.viewer.pixels)
    wait_until(lambda: bool(workflows.augment.samples), settle=1.0)
    shots.save("augmentation")


def dialogs(shots: Shots, images: Path | None) -> None:
    """Classify after classifying ``images``, and Export after an int8 export; both
    write into a temporary folder."""
    workflows = shots.workflows
    workflows.classify_action.trigger()
    classify = workflows.dialog
    wait_until(
        lambda: classify.model_info.kind in ("success", "error") or classify.chosen_model() is None
    )
    if images is not None:
        classify.folder.setText(str(images))
        classify.csv_path.setText(str(shots.work / "predictions.csv"))
        if classify.request() is not None:
            classify.start()
            wait_until(lambda: not classify.is_running(), timeout=300, settle=1.0)
    shots.save("classify-dialog", classify)
    classify.close()
    workflows.export_action.trigger()
    export = workflows.dialog
    wait_until(lambda: True)
    if export.version_choice.count():
        export.int8.setChecked(True)
        export.onnx_path.setText(str(shots.work / "model-int8.onnx"))
        export.export_model()
        wait_until(lambda: not export.is_running(), timeout=600, settle=1.0)
    shots.save("export-dialog", export)
    export.close()


def open_folder(shots: Shots, images: Path | None) -> None:
    """The dialog that makes a project of a folder, once it has looked at ``images``."""
    if images is None:
        return
    dialog = OpenFolderDialog(images, shots.window)
    dialog.show()
    wait_until(lambda: dialog.create_button.isEnabled(), timeout=300, settle=1.0)
    shots.save("open-folder", dialog)
    dialog.close()


def photograph(args: argparse.Namespace, size: str, suffix: str) -> int:
    width, height = (int(v) for v in size.split("x"))
    settings_file = Path(tempfile.mkdtemp()) / "settings.ini"
    window = MainWindow(settings=QSettings(str(settings_file), QSettings.Format.IniFormat))
    workflows = install_workflows(window)
    window.resize(width, height)
    window.show()
    shots = Shots(window, workflows, args.out, suffix)
    if args.readme:
        shots.only = README_VIEWS
    wait_until(lambda: True)
    shots.save("start-page")
    open_folder(shots, args.images)
    if not window.open_project(args.project):
        print(f"cannot open {args.project}", file=sys.stderr)
        return 1
    browse_and_explain(shots)
    panels(shots)
    if not args.readme:
        dialogs(shots, args.images)
    if not args.readme:
        for extra in EXTRA_VIEWS:
            extra(shots)
    window.close()
    window.deleteLater()
    wait_until(lambda: True, settle=0.5)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--images", type=Path, help="a folder to open and to classify")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--size", action="append", help="WIDTHxHEIGHT (again for more)")
    parser.add_argument("--theme", choices=("light", "dark", "system"), default="light")
    parser.add_argument("--readme", action="store_true", help="only the README's views")
    args = parser.parse_args(argv)
    args.images = args.images.resolve() if args.images is not None else None
    sizes = args.size or [f"{README_WIDTH}x768"]
    args.out.mkdir(parents=True, exist_ok=True)
    register_extra_views()
    create_application([sys.argv[0]], theme=args.theme)
    for size in sizes:
        status = photograph(args, size, f"-{size}" if len(sizes) > 1 else "")
        if status:
            return status
    return 0


def check_labels(shots: Shots) -> None:
    """The Check labels list, then its first image opened by a double-click: the Image
    view with the heatmap of the suggested class."""
    workflows = shots.workflows
    evaluation, viewer = workflows.evaluation, workflows.window.project_view.viewer
    evaluation.tabs.setCurrentWidget(evaluation.label_check)
    wait_until(lambda: True)
    shots.save("check-labels")
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
    shots.save("check-labels-opened")


if __name__ == "__main__":
    sys.exit(main())
