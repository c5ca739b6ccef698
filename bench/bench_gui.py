"""Benchmark: the desktop window on a project of 100,000 images.

Prints figures; asserts nothing. The images are real files: small PNGs drawn
with OpenCV (bench_import.make_images, 32 x 32, three classes), imported with
the engine's importer, plus stored predictions of a registered model version
(random probabilities, no TensorFlow) so the grid shows confidence and
disagreements and can sort by loss. Then, in one process with a 1366 x 768
window (offscreen unless a display is set):

- time to open: `MainWindow.open_project` until the grid holds every image;
- time to first visible thumbnails, cold (thumbnail cache empty: each is made
  from its image) and warm (the disk cache filled, the memory cache empty);
- scrolling the whole grid top to bottom in 300 jumps, waiting at each stop
  until the tiles on screen have their thumbnails; resident memory after;
- relabel keystroke to stored: a key press on the grid until the label is in
  the database (median of 100, checked through a second connection);
- a 10,000-image batch relabel and its undo; filter and sort times.

    .venv/bin/python bench/bench_gui.py [--count 100000] [--keep DIR]

Goals from the product owner: first thumbnails < 1 s, RSS < 1 GB, relabel < 20 ms.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen" if not os.environ.get("DISPLAY") else "xcb")

import numpy as np
from bench_import import CLASSES
from bench_import import make_images
from PySide6.QtCore import QEventLoop
from PySide6.QtCore import QItemSelection
from PySide6.QtCore import QItemSelectionModel
from PySide6.QtCore import QPoint
from PySide6.QtCore import QSettings
from PySide6.QtCore import Qt
from PySide6.QtCore import QTimer
from PySide6.QtTest import QTest

from linnaeus.engine.dataset.importer import import_images
from linnaeus.engine.project import versions
from linnaeus.engine.project.image_files import labelled_images
from linnaeus.engine.project.predictions import save_predictions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.gui.app import create_application
from linnaeus.gui.image_model import ImageRole
from linnaeus.gui.image_table import ImageFilter
from linnaeus.gui.main_window import MainWindow
from linnaeus.gui.workflows import install_workflows


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Run the event loop until ``condition()`` holds (checked every 2 ms)."""
    loop = QEventLoop()
    deadline = time.perf_counter() + timeout
    timer = QTimer(interval=2)

    def check() -> None:
        if condition() or time.perf_counter() > deadline:
            loop.quit()

    timer.timeout.connect(check)
    timer.start()
    if not condition():
        loop.exec()
    timer.stop()
    return condition()


def visible_rows(window: MainWindow) -> list[int]:
    grid = window.project_view.grid
    area = grid.viewport().rect()
    first = next(
        (
            index
            for y in range(2, area.height(), 8)
            for x in range(2, area.width(), 8)
            if (index := grid.indexAt(QPoint(x, y))).isValid()
        ),
        None,
    )  # tiles sit centred in their cells: the top-left corner may be a gap
    if first is None:
        return []
    rows, row, model = [], first.row(), grid.model()
    while row < model.rowCount() and grid.visualRect(model.index(row, 0)).intersects(area):
        rows.append(row)
        row += 1
    return rows


def thumbnails_shown(window: MainWindow) -> bool:
    model = window.project_view.grid.model()
    for row in visible_rows(window):
        tile = model.index(row, 0).data(ImageRole.TILE)
        if tile.thumbnail is None and tile.problem is None:
            return False
    return True


def prepare(work: Path, count: int) -> Path:
    images, project = work / "images", work / "project"
    if not images.exists():
        started = time.perf_counter()
        make_images(images, count)
        print(f"generated {count:,} PNGs (32 x 32) in {time.perf_counter() - started:.0f} s")
    if not (project / "linnaeus.db").exists():
        started = time.perf_counter()
        store = ProjectStore.create(project, images)
        import_images(store)
        add_random_predictions(store)
        store.close()
        print(f"imported them (+ predictions) in {time.perf_counter() - started:.0f} s")
    return project


def add_random_predictions(store: ProjectStore) -> None:
    rows = [(r.image_id, r.label, r.split) for r in labelled_images(store)]
    names = list(CLASSES)
    snapshot = {i: (names.index(label), split or "train") for i, label, split in rows}
    version = versions.create_version(
        store, kind="quick", config={}, augmentation={}, classes=names, labels=snapshot
    )
    versions.update_version(store, version.id, status="done")
    versions.set_active(store, version.id)
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 1, (len(rows), len(names)))
    logits[np.arange(len(rows)), [names.index(r[1]) for r in rows]] += 3  # mostly right
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    save_predictions(store, version.id, [r[0] for r in rows], probabilities)


def open_and_time(window: MainWindow, project: Path) -> tuple[float, float, float]:
    """Seconds from `open_project` to: the grid filled, the visible thumbnails shown,
    the predictions shown."""
    started = time.perf_counter()
    window.open_project(project)
    model = window.session.model
    filled: list[float] = []
    model.loaded.connect(lambda: filled.append(time.perf_counter() - started))
    wait_until(lambda: bool(visible_rows(window)) and thumbnails_shown(window))
    thumbnails = time.perf_counter() - started
    wait_until(lambda: bool(filled) and not model.is_loading)
    return filled[0], thumbnails, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="linnaeus-bench-gui-"))
    try:
        project = prepare(work, args.count)
        run(project, work)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def run(project: Path, work: Path) -> None:
    shutil.rmtree(project / "thumbnails", ignore_errors=True)
    app = create_application(sys.argv[:1])
    settings = QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings)
    install_workflows(window)  # the window as users get it: training, evaluation... panels
    window.resize(1366, 768)
    window.show()
    wait_until(lambda: window.isVisible())
    print(f"platform {app.platformName()}, {os.cpu_count()} cores; RSS at start {rss_mb():.0f} MB")

    for cache in ("cold", "warm"):
        filled, thumbs, predicted = open_and_time(window, project)
        print(
            f"open {window.session.model.total_count:,} images ({cache} thumbnail cache): grid "
            f"filled {filled * 1000:.0f} ms, first {len(visible_rows(window))} thumbnails "
            f"{thumbs * 1000:.0f} ms, predictions shown {predicted * 1000:.0f} ms"
        )
        if cache == "cold":
            window.close_project()
    model, grid = window.session.model, window.project_view.grid

    bar = grid.verticalScrollBar()
    steps, waits = 300, []
    started = time.perf_counter()
    for step in range(steps + 1):
        bar.setValue(round(bar.maximum() * step / steps))
        t = time.perf_counter()
        wait_until(lambda: thumbnails_shown(window), timeout=5)
        waits.append(time.perf_counter() - t)
    print(
        f"scrolled top to bottom in {steps} jumps: {time.perf_counter() - started:.1f} s; "
        f"thumbnails on screen after a jump: median {statistics.median(waits) * 1000:.0f} ms, "
        f"p95 {np.percentile(waits, 95) * 1000:.0f} ms (cold)"
    )
    print(
        f"RSS after scrolling through: {rss_mb():.0f} MB (peak {peak_rss_mb():.0f} MB; "
        f"thumbnails in memory {window.session.loader.memory_bytes / 2**20:.0f} MB)"
    )

    grid.select_row(1000)
    check = ProjectStore.open(project)
    keys = {c.name: getattr(Qt.Key, f"Key_{c.shortcut}") for c in check.classes()}
    timings = []
    for _ in range(100):
        image_id = grid.current_image_id()
        current = check.image(image_id).label
        name = next(n for n in keys if n != current)  # a real change every time
        started = time.perf_counter()
        QTest.keyClick(grid, keys[name])
        timings.append(time.perf_counter() - started)
        if check.image(image_id).label != name:
            print(f"!! image {image_id} was not stored as {name}")
    check.close()
    ms = [t * 1000 for t in timings]
    print(
        f"relabel keystroke to stored: median {statistics.median(ms):.1f} ms, "
        f"p95 {np.percentile(ms, 95):.1f} ms (100 presses, {window.session.undo_stack.count()} "
        "undo steps)"
    )

    selection = QItemSelection(model.index(0), model.index(9_999))
    grid.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
    started = time.perf_counter()
    QTest.keyClick(grid, Qt.Key.Key_3)
    batch = time.perf_counter() - started
    started = time.perf_counter()
    window.session.undo_stack.undo()
    undo = time.perf_counter() - started
    print(f"batch relabel of 10,000 images: {batch * 1000:.0f} ms; its undo {undo * 1000:.0f} ms")

    classes = {c.name: c.id for c in model.classes()}
    for title, image_filter in (
        ("class filter", ImageFilter(label=classes[CLASSES[1]])),
        ("sort by loss", ImageFilter(sort="loss", descending=True)),
        ("disagreements only", ImageFilter(misclassified=True)),
        ("search file names", ImageFilter(search="_0123")),
        ("show all", ImageFilter()),
    ):
        started = time.perf_counter()
        model.set_filter(image_filter)
        grid.viewport().repaint()
        took = (time.perf_counter() - started) * 1000
        print(f"{title:18}: {took:6.0f} ms -> {model.rowCount():,} shown")
    stack = window.session.undo_stack
    while stack.canUndo():  # leave the kept project as it was
        stack.undo()
    window.close()


if __name__ == "__main__":
    main()
