"""A small generated project and a main window on it, for the browse/label/viewer tests.

`window_factory` (used by each test module's ``make_window`` fixture) builds a
project of disk and square images (tests/training_factory), optionally with
stored predictions of a registered model version (no TensorFlow), opens it in
a `MainWindow` with its own settings file (and, if asked, the workflow panels
with the fake trainer) and waits until the grid is filled.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from linnaeus.engine.project import versions
from linnaeus.engine.project.predictions import save_predictions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.gui.main_window import MainWindow
from linnaeus.gui.workflows import install_workflows
from tests.gui.fake_trainer import fake_command
from tests.training_factory import make_shapes_project

CLASSES = ["disk", "square"]
WRONG_IMAGE = "disk/disk_000.png"  # the model says square: a disagreement


def add_predictions(store: ProjectStore) -> int:
    """Register a finished, active version whose predictions agree with every
    label except `WRONG_IMAGE`'s; confidence falls from 0.99 along the paths."""
    labelled = store.images(status="ok")
    snapshot = {i.id: (CLASSES.index(i.label), i.split or "train") for i in labelled}
    version = versions.create_version(
        store, kind="quick", config={}, augmentation={}, classes=CLASSES, labels=snapshot
    )
    # the decision rule training saves with a version; a split of 12 images leaves two or
    # so for validation, too few to choose a threshold on, so the rule is given
    calibration = {"temperature": 1.0, "threshold": 0.5, "positive_class": CLASSES[1],
                   "target_sensitivity": 0.95, "chosen_on": "validation",
                   "validation_threshold": 0.5}  # fmt: skip
    versions.update_version(store, version.id, status="done",
                            metrics={"calibration": calibration})  # fmt: skip
    versions.set_active(store, version.id)
    probabilities = []
    for n, image in enumerate(labelled):
        sure = 0.99 - 0.02 * n
        right = CLASSES.index(image.label)
        if image.path == WRONG_IMAGE:
            right = 1 - right
        row = np.full(2, 1 - sure, np.float32)
        row[right] = sure
        probabilities.append(row)
    save_predictions(store, version.id, [i.id for i in labelled], np.array(probabilities))
    return version.id


def build_project(
    folder: Path, *, per_class: int = 6, predictions: bool = False, unreadable: bool = False
) -> Path:
    store = make_shapes_project(folder, {"disk": per_class, "square": per_class})
    if unreadable:
        (store.image_root / "disk" / "broken.png").write_bytes(b"not a picture")
        from linnaeus.engine.dataset.importer import import_images

        import_images(store)
    if predictions:
        add_predictions(store)
    project = store.project_dir
    store.close()
    return project


WindowFactory = Callable[..., MainWindow]


@contextmanager
def window_factory(tmp_path: Path, qtbot) -> Iterator[WindowFactory]:
    """Yield a function that builds a main window on a fresh generated project
    (options as `build_project`); every window made is closed at the end."""
    made: list[MainWindow] = []

    def make(workflows: bool = False, **options: object) -> MainWindow:
        project = build_project(tmp_path / f"p{len(made)}", **options)  # type: ignore[arg-type]
        settings = QSettings(str(tmp_path / f"settings{len(made)}.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings=settings)
        if workflows:  # the panels, with the fake trainer as their command line
            window.workflows = install_workflows(window, command=fake_command())
        made.append(window)
        window.resize(1200, 800)
        window.show()
        window.activateWindow()
        assert window.open_project(project)
        qtbot.waitUntil(lambda: not window.session.model.is_loading, timeout=10_000)
        window.project_view.grid.setFocus()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5_000)
        return window

    try:
        yield make
    finally:
        for window in made:
            window.close()
