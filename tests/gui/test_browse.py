"""Browsing: the grid over the store, filters, sorting, disagreement marks, thumbnails."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QStyleOptionViewItem

from linnaeus.gui.filter_bar import FilterControls
from linnaeus.gui.filter_bar import filter_from_controls
from linnaeus.gui.image_model import ImageRole
from linnaeus.gui.image_model import Tile
from linnaeus.gui.image_table import NO_CLASS
from linnaeus.gui.image_table import UNLABELLED
from linnaeus.gui.image_table import ImageFilter
from linnaeus.gui.image_table import ImageTable
from linnaeus.gui.image_table import Predictions
from linnaeus.gui.image_table import natural_key
from linnaeus.gui.image_table import select_images
from linnaeus.gui.thumbnail_grid import DISAGREE_COLOUR
from linnaeus.gui.thumbnail_grid import tile_texts
from linnaeus.gui.thumbnail_loader import ThumbnailLoader
from tests.gui.browse_factory import WRONG_IMAGE
from tests.gui.browse_factory import window_factory
from tests.image_factory import write_image


@pytest.fixture
def make_window(tmp_path, qtbot):
    with window_factory(tmp_path, qtbot) as make:
        yield make


# -- the pure filter logic ----------------------------------------------------


def _table() -> ImageTable:
    """Five images: class 1 x2, class 2 x2, one unlabelled; one unreadable.
    Predictions (classes 1, 2) for all but the last."""
    probabilities = np.array(
        [[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.55, 0.45]], dtype=np.float32
    )  # image 2 (label 1) is predicted 2: a disagreement
    table = ImageTable(
        ids=np.array([10, 11, 12, 13, 14]),
        paths=["a/one.png", "a/two.png", "b/three.png", "b/zebra.png", "c/five.png"],
        hashes=["aa", "bb", "cc", "dd", None],
        label=np.array([1, 1, 2, NO_CLASS, 2]),
        split=np.array([0, 1, 2, 0, -1], np.int8),
        status=np.array([0, 0, 0, 0, 1], np.int8),
        errors=[None, None, None, None, "file is empty (0 bytes)"],
    )
    predictions = Predictions(
        "v1", ["one", "two"], np.array([1, 2]), np.array([10, 11, 12, 13]), probabilities,
        predicted=probabilities.argmax(axis=1),
    )  # fmt: skip
    table.attach_predictions(predictions)
    return table


def test_the_grid_shows_the_class_the_model_decides_not_the_most_probable() -> None:
    """A threshold of 0.3 on class two: image 13 (45% two) is decided two, with 45%."""
    table = _table()
    probabilities = table.probabilities
    decided = (probabilities[:, 1] >= 0.3).astype(np.int64)
    table.attach_predictions(
        Predictions("v1", ["one", "two"], np.array([1, 2]), np.array([10, 11, 12, 13]),
                    probabilities, predicted=decided)
    )  # fmt: skip
    assert _ids(table, ImageFilter(predicted=2)) == [11, 12, 13]
    assert float(table.confidence[3]) == pytest.approx(0.45)
    assert _ids(table, ImageFilter(misclassified=True)) == [11]  # 13 is unlabelled


def _ids(table: ImageTable, image_filter: ImageFilter) -> list[int]:
    return [int(table.ids[p]) for p in select_images(table, image_filter)]


@pytest.mark.parametrize(
    ("image_filter", "expected"),
    [
        (ImageFilter(), [10, 11, 12, 13]),
        (ImageFilter(label=1), [10, 11]),
        (ImageFilter(label=UNLABELLED), [13]),
        (ImageFilter(split="train"), [10, 13]),
        (ImageFilter(predicted=2), [11, 12]),
        (ImageFilter(misclassified=True), [11]),
        (ImageFilter(confidence=(0.0, 0.7)), [11, 13]),
        (ImageFilter(unreadable=True), [14]),
        (ImageFilter(search="B/T"), [12]),
        (ImageFilter(image_ids=frozenset({11, 13, 99})), [11, 13]),
        (ImageFilter(sort="name", descending=True), [13, 12, 11, 10]),
        (ImageFilter(sort="confidence"), [13, 11, 12, 10]),
        (ImageFilter(sort="loss", descending=True), [11, 12, 10, 13]),  # unlabelled: no loss, last
        (ImageFilter(sort="uncertainty", descending=True), [13, 11, 12, 10]),
    ],
)
def test_select_images_filters_and_sorts(image_filter: ImageFilter, expected: list[int]) -> None:
    assert _ids(_table(), image_filter) == expected


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["10.png", "2.png", "1.png", "20.png", "11.png"],
         ["1.png", "2.png", "10.png", "11.png", "20.png"]),
        (["img10.png", "Img2.png", "img1.png"], ["img1.png", "Img2.png", "img10.png"]),
        (["b/1.png", "a/10.png", "a/9.png"], ["a/9.png", "a/10.png", "b/1.png"]),
        (["x007.png", "x7.png", "x06.png"], ["x06.png", "x007.png", "x7.png"]),
        (["1a", "a1", "", "1"], ["", "1", "1a", "a1"]),
    ],
)  # fmt: skip
def test_natural_order_reads_numbers_as_numbers(names: list[str], expected: list[str]) -> None:
    assert sorted(names, key=natural_key) == expected


def test_sorting_by_name_is_in_natural_order() -> None:
    names = ["scan1.png", "scan10.png", "scan11.png", "scan2.png", "scan20.png"]  # store order
    table = ImageTable(
        ids=np.arange(5), paths=names, hashes=[None] * 5, label=np.full(5, NO_CLASS),
        split=np.zeros(5, np.int8), status=np.zeros(5, np.int8), errors=[None] * 5,
    )  # fmt: skip
    shown = [table.paths[p] for p in select_images(table, ImageFilter(sort="name"))]
    assert shown == ["scan1.png", "scan2.png", "scan10.png", "scan11.png", "scan20.png"]
    backwards = select_images(table, ImageFilter(sort="name", descending=True))
    assert [table.paths[p] for p in backwards] == shown[::-1]


def _tile(label: str | None, predicted: str | None, confidence: float | None) -> Tile:
    disagrees = label is not None and predicted is not None and label != predicted
    return Tile("scan_0042.png", label, None, predicted, confidence, disagrees, None, None)


@pytest.mark.parametrize(
    ("tile", "opinion", "kind"),
    [
        (_tile("yes", "no", 0.54), "≠ no 54%", "disagrees"),
        (_tile("yes", "yes", 0.97), "✓ 97%", "agrees"),
        (_tile(None, "no", 0.61), "no? 61%", "suggests"),
        (_tile("yes", None, None), None, ""),
    ],
)
def test_a_tile_shows_its_file_name_and_the_models_opinion(tile, opinion, kind) -> None:
    """Tiles the model disagreed with showed "≠ no 54%" instead of the file name."""
    texts = tile_texts(tile)
    assert texts.name == "scan_0042.png" and texts.opinion_kind == kind
    assert ("".join(texts.opinion) if texts.opinion else None) == opinion
    assert texts.label == (tile.label or "unlabelled")


def test_table_knows_disagreements_loss_and_counts() -> None:
    table = _table()
    assert table.disagrees().tolist() == [False, True, False, False, False]
    assert table.loss()[1] == pytest.approx(-np.log(0.4), rel=1e-5)
    assert np.isnan(table.loss()[3])  # unlabelled
    assert table.class_counts() == {1: 2, 2: 1, NO_CLASS: 1}  # readable only
    assert table.positions_of([12, 99, 10]).tolist() == [2, -1, 0]


@pytest.mark.parametrize(
    ("controls", "expected"),
    [
        (FilterControls(), ImageFilter()),
        (FilterControls(search="  cat "), ImageFilter(search="cat")),
        (FilterControls(confidence_percent=(80, 20)), ImageFilter(confidence=(0.2, 0.8))),
        (FilterControls(sort="loss"), ImageFilter(sort="loss", descending=True)),
        (FilterControls(sort="loss", reverse=True), ImageFilter(sort="loss", descending=False)),
        (FilterControls(sort="name", reverse=True), ImageFilter(sort="name", descending=True)),
    ],
)
def test_filter_from_controls(controls: FilterControls, expected: ImageFilter) -> None:
    assert filter_from_controls(controls) == expected


# -- the window ---------------------------------------------------------------


def test_open_project_fills_grid_and_status_bar(make_window) -> None:
    window = make_window()
    model = window.project_view.grid.model()
    assert model.rowCount() == 12
    assert window.status.shown.text() == "Showing 12 of 12 images"
    assert "disk 6" in window.status.per_class.text()
    assert window.windowTitle() == "project — Linnaeus"
    assert window.project_view.grid.current_image_id() is not None  # first image chosen


def test_filters_change_the_visible_count(make_window, qtbot) -> None:
    window = make_window(predictions=True, unreadable=True)
    bar, model = window.project_view.filter_bar, window.session.model
    assert model.rowCount() == 12  # the unreadable file is not shown by default
    bar.label.setCurrentIndex(bar.label.findText("square"))
    assert model.rowCount() == 6
    bar.misclassified.setChecked(True)
    assert model.rowCount() == 0
    bar.label.setCurrentIndex(0)
    assert model.rowCount() == 1
    assert model.index(0).data(ImageRole.PATH) == WRONG_IMAGE
    bar.clear()
    bar.unreadable.setChecked(True)
    assert model.rowCount() == 1
    assert "Unreadable" in model.index(0).data(ImageRole.TILE).problem
    bar.clear()
    bar.search.setText("square_00")
    qtbot.waitUntil(lambda: model.rowCount() == 6)  # after the typing pause
    assert window.status.shown.text() == "Showing 6 of 13 images"


def test_show_images_limits_the_grid(make_window) -> None:
    window = make_window()
    model = window.session.model
    chosen = [model.image_id(0), model.image_id(3)]
    window.show_images(chosen, "from the confusion matrix")
    assert [model.image_id(r) for r in range(model.rowCount())] == chosen
    assert "from the confusion matrix" in window.project_view.filter_bar.chosen.text()
    window.show_images(None)
    assert model.rowCount() == 12


def test_sort_by_loss_puts_the_disagreement_first(make_window) -> None:
    window = make_window(predictions=True)
    bar, model = window.project_view.filter_bar, window.session.model
    bar.sort.setCurrentIndex(bar.sort.findData("loss"))
    assert model.index(0).data(ImageRole.PATH) == WRONG_IMAGE
    assert model.index(0).data(ImageRole.DISAGREES) is True
    assert model.index(0).data(ImageRole.PREDICTED) == "square"
    assert model.index(1).data(ImageRole.DISAGREES) is False


def _vermillion_pixels(grid, row: int, below: int = 0) -> int:
    """Vermillion pixels of the painted tile at ``row``, in its rows from ``below`` on."""
    delegate = grid.itemDelegate()
    option = QStyleOptionViewItem()
    grid.initViewItemOption(option)
    index = grid.model().index(row, 0)
    size = delegate.sizeHint(option, index)
    image = QImage(size, QImage.Format.Format_RGB32)
    image.fill(Qt.GlobalColor.white)
    option.rect = image.rect()
    painter = QPainter(image)
    delegate.paint(painter, option, index)
    painter.end()
    pixels = np.array(image.constBits(), np.uint8).reshape(image.height(), image.width(), 4)
    red, green, blue = DISAGREE_COLOUR.red(), DISAGREE_COLOUR.green(), DISAGREE_COLOUR.blue()
    match = (pixels[..., 2] == red) & (pixels[..., 1] == green) & (pixels[..., 0] == blue)
    return int(match[below:].sum())


def test_disagreement_is_marked_on_the_tile(make_window) -> None:
    window = make_window(predictions=True)
    grid, model = window.project_view.grid, window.session.model
    wrong = model.row_of(model.store.image_by_path(WRONG_IMAGE).id)
    right = (wrong + 1) % model.rowCount()
    assert model.index(wrong).data(ImageRole.TILE).disagrees
    assert _vermillion_pixels(grid, wrong) > 200  # frame and corner mark
    assert _vermillion_pixels(grid, right) == 0
    # The opinion has a line of its own under the file name: "≠ square 91%" in vermillion.
    text_top = grid.itemDelegate().image_size + 12 + 2 * grid.fontMetrics().height()
    assert _vermillion_pixels(grid, wrong, below=text_top) > 20


def test_thumbnails_arrive_from_the_loader_and_the_disk_cache(make_window, qtbot) -> None:
    window = make_window()
    model = window.session.model
    index = model.index(0)
    qtbot.waitUntil(lambda: index.data(Qt.ItemDataRole.DecorationRole) is not None, timeout=10_000)
    thumbnail = index.data(Qt.ItemDataRole.DecorationRole)
    assert isinstance(thumbnail, QImage) and not thumbnail.isNull()
    assert list(window.session.store.thumbnails_dir.rglob("*.jpg"))


def test_loader_reports_unreadable_images(tmp_path, qtbot) -> None:
    loader = ThumbnailLoader(tmp_path / "cache", pixel_size=64)
    good = write_image(tmp_path / "good.png", size=(300, 200))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nothing")
    assert loader.image("ab" * 16, good) is None  # asked for, not there yet
    with qtbot.waitSignal(loader.thumbnail_failed, timeout=10_000) as failed:
        loader.image("cd" * 16, bad)
    assert failed.args[0] == "cd" * 16 and "not an image" in failed.args[1]
    qtbot.waitUntil(lambda: loader.image("ab" * 16, good) is not None, timeout=10_000)
    image = loader.image("ab" * 16, good)
    assert max(image.width(), image.height()) == 64  # scaled for the tile
    assert loader.error("cd" * 16) and loader.image("cd" * 16, bad) is None  # not retried
    qtbot.waitUntil(loader.is_idle)
    loader.shutdown()


def test_the_grids_readers_never_make_the_project_look_busy(make_window, monkeypatch) -> None:
    """Worker threads reading the grid opened the project with its tidy-up, which takes
    the project's lock: the training panel, opening at that moment, said "another
    Linnaeus process is writing to it" (seen in the screenshots, issue 16)."""
    from linnaeus.engine.project import leftovers
    from linnaeus.gui.image_table import read_image_table
    from linnaeus.gui.image_table import read_predictions

    window = make_window(predictions=True)
    project = window.session.store.project_dir
    monkeypatch.setattr(leftovers, "tidy", lambda store: pytest.fail("a reader tidied up"))
    assert len(read_image_table(project)) > 0
    assert read_predictions(project) is not None
