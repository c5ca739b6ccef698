"""The grid's filters and sort order, as a side panel of plain controls.

The widget only turns its controls into an `ImageFilter` (a frozen dataclass
in `image_table`, where `select_images` applies it) and emits it; it knows
nothing of the store. `filter_from_controls` is the pure translation, tested
on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtCore import QTimer
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox
from PySide6.QtWidgets import QComboBox
from PySide6.QtWidgets import QFormLayout
from PySide6.QtWidgets import QHBoxLayout
from PySide6.QtWidgets import QLabel
from PySide6.QtWidgets import QLineEdit
from PySide6.QtWidgets import QPushButton
from PySide6.QtWidgets import QSpinBox
from PySide6.QtWidgets import QVBoxLayout
from PySide6.QtWidgets import QWidget

from linnaeus.engine.project.store import SPLITS
from linnaeus.engine.project.store import ClassInfo
from linnaeus.gui.image_table import DEFAULT_DESCENDING
from linnaeus.gui.image_table import UNLABELLED
from linnaeus.gui.image_table import ImageFilter
from linnaeus.gui.widgets.headings import heading

SPLIT_TITLES = {"train": "Training", "val": "Validation", "test": "Test"}
SORT_TITLES = {
    "name": "File name",
    "confidence": "Confidence, lowest first",
    "loss": "Loss, highest first",
    "uncertainty": "Uncertainty, highest first",
    "label_next": "Label next: most useful",
}
SORT_TIPS = {
    "label_next": "Unlabelled images the model is least sure of, spread over what is not "
    "labelled yet, first (as of the last training). Labelling these first teaches the "
    "model most per label.",
}
_ANY = -2  # combo data meaning "any class" (class ids are positive, UNLABELLED is -1)
_SEARCH_DELAY_MS = 200


@dataclass(frozen=True)
class FilterControls:
    """The values of the controls, before they become an `ImageFilter`."""

    search: str = ""
    label: int | None = None  # class id, UNLABELLED, or None for any
    split: str | None = None
    predicted: int | None = None
    misclassified: bool = False
    confidence_percent: tuple[int, int] = (0, 100)
    unreadable: bool = False
    sort: str = "name"
    reverse: bool = False


def filter_from_controls(
    controls: FilterControls,
    image_ids: frozenset[int] | None = None,
    image_ids_title: str = "",
    image_order: tuple[int, ...] = (),
) -> ImageFilter:
    """The `ImageFilter` the controls describe; "reverse" flips each sort's natural order."""
    low, high = sorted(controls.confidence_percent)
    return ImageFilter(
        label=controls.label,
        split=controls.split,
        predicted=controls.predicted,
        misclassified=controls.misclassified,
        confidence=(max(0, low) / 100, min(100, high) / 100),
        unreadable=controls.unreadable,
        search=controls.search.strip(),
        image_ids=image_ids,
        image_ids_title=image_ids_title,
        image_order=image_order if image_ids is not None else (),
        sort=controls.sort,
        descending=DEFAULT_DESCENDING[controls.sort] != controls.reverse,
    )


class FilterBar(QWidget):
    """Search, class, split, prediction, confidence and sort controls."""

    filter_changed = Signal(object)  # ImageFilter
    duplicates_requested = Signal()  # "Show duplicates" pressed: the view finds them

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image_ids: frozenset[int] | None = None
        self._image_ids_title = ""
        self._image_order: tuple[int, ...] = ()
        self._search_timer = QTimer(self, singleShot=True, interval=_SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self._emit)

        self.search = QLineEdit(placeholderText="Search file names", clearButtonEnabled=True)
        self.search.setToolTip("Shows images whose path contains this text (Ctrl+F)")
        self.label = QComboBox()
        self.split = QComboBox()
        self.split.addItem("Any split", "")
        for split in SPLITS:
            self.split.addItem(SPLIT_TITLES[split], split)
        self.predicted = QComboBox()
        self.misclassified = QCheckBox("Model disagrees with label")
        self.misclassified.setToolTip("Only images whose label differs from the model's prediction")
        self.unreadable = QCheckBox("Unreadable files only")
        self.unreadable.setToolTip("Only the files that cannot be read or are missing, with why")
        self.confidence_low = QSpinBox(suffix=" %", maximum=100, value=0)
        self.confidence_high = QSpinBox(suffix=" %", maximum=100, value=100)
        self.sort = QComboBox()
        for key, title in SORT_TITLES.items():
            self.sort.addItem(title, key)
            if key in SORT_TIPS:
                at = self.sort.count() - 1
                self.sort.setItemData(at, SORT_TIPS[key], Qt.ItemDataRole.ToolTipRole)
        self.reverse = QCheckBox("Reverse order")
        self.duplicates = QPushButton("Show duplicates")
        self.duplicates.setToolTip(
            "Identical, resized or re-encoded copies (and, after a training, cropped ones), "
            "group by group; groups that sit in more than one split come first: they leak"
        )
        self.reset = QPushButton("Show all images")
        self.reset.setToolTip("Clear every filter")
        self.chosen = QLabel(wordWrap=True)
        self.chosen.setVisible(False)
        self.set_classes([], has_predictions=False)
        self._lay_out()

        self.search.textChanged.connect(self._search_timer.start)
        self.search.returnPressed.connect(self._emit)
        for combo in (self.label, self.split, self.predicted, self.sort):
            combo.currentIndexChanged.connect(self._emit)
        for box in (self.misclassified, self.unreadable, self.reverse):
            box.toggled.connect(self._emit)
        for spin in (self.confidence_low, self.confidence_high):
            spin.valueChanged.connect(self._emit)
        self.reset.clicked.connect(self.clear)
        self.duplicates.clicked.connect(self.duplicates_requested)

    def _lay_out(self) -> None:
        confidence = QHBoxLayout()
        confidence.addWidget(self.confidence_low)
        confidence.addWidget(QLabel("to"))
        confidence.addWidget(self.confidence_high)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.addRow("Label", self.label)
        form.addRow("Split", self.split)
        form.addRow("Predicted", self.predicted)
        form.addRow("Confidence", confidence)
        form.addRow("Sort by", self.sort)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(heading("Find images"))
        layout.addWidget(self.search)
        layout.addWidget(self.chosen)
        layout.addLayout(form)
        layout.addWidget(self.reverse)
        layout.addWidget(self.misclassified)
        layout.addWidget(self.unreadable)
        layout.addWidget(self.duplicates)
        layout.addWidget(self.reset)

    # -- state --------------------------------------------------------------

    def controls(self) -> FilterControls:
        return FilterControls(
            search=self.search.text(),
            label=_class_choice(self.label),
            split=self.split.currentData() or None,
            predicted=_class_choice(self.predicted),
            misclassified=self.misclassified.isChecked(),
            confidence_percent=(self.confidence_low.value(), self.confidence_high.value()),
            unreadable=self.unreadable.isChecked(),
            sort=self.sort.currentData(),
            reverse=self.reverse.isChecked(),
        )

    def current_filter(self) -> ImageFilter:
        return filter_from_controls(
            self.controls(), self._image_ids, self._image_ids_title, self._image_order
        )

    def set_classes(self, classes: Sequence[ClassInfo], *, has_predictions: bool) -> None:
        """Fill the class lists, keeping the chosen classes when they still exist."""
        self._refill(self.label, [("Any label", _ANY), ("Unlabelled", UNLABELLED)], classes)
        self._refill(self.predicted, [("Any prediction", _ANY)], classes)
        for widget in (
            self.predicted,
            self.misclassified,
            self.confidence_low,
            self.confidence_high,
        ):
            widget.setEnabled(has_predictions)
            widget.setToolTip("" if has_predictions else "Train a model to see its predictions")
        for key in ("confidence", "loss", "uncertainty", "label_next"):
            item = self.sort.model().item(self.sort.findData(key))  # type: ignore[attr-defined]
            item.setEnabled(has_predictions)

    def _refill(
        self, combo: QComboBox, fixed: list[tuple[str, int]], classes: Sequence[ClassInfo]
    ) -> None:
        chosen = combo.currentData()
        combo.blockSignals(True)
        combo.clear()
        for title, value in fixed:
            combo.addItem(title, value)
        for info in classes:
            combo.addItem(info.name, info.id)
        index = combo.findData(chosen)
        combo.setCurrentIndex(max(index, 0))
        combo.blockSignals(False)
        if index < 0 and chosen not in (None, _ANY):
            self._emit()  # the chosen class is gone

    def show_only(
        self, image_ids: frozenset[int] | None, title: str = "", order: tuple[int, ...] = ()
    ) -> None:
        """Limit the grid to these images (None: no such limit), in ``order`` when
        sorted by name and one is given."""
        self._image_ids = image_ids
        self._image_ids_title = title
        self._image_order = order if image_ids is not None else ()
        self.chosen.setVisible(image_ids is not None)
        if image_ids is not None:
            self.chosen.setText(f"<b>{len(image_ids)} images</b> {title}".strip())
            self.chosen.updateGeometry()  # a longer title wraps onto more lines
        self._emit()

    def clear(self) -> None:
        """Back to every readable image, by file name."""
        self.apply(ImageFilter())

    def apply(self, image_filter: ImageFilter) -> None:
        """Set the controls from a filter and emit it once."""
        f = image_filter
        widgets = self._controls()
        for widget in widgets:
            widget.blockSignals(True)
        self.search.setText(f.search)
        _choose(self.label, _ANY if f.label is None else f.label)
        _choose(self.split, f.split or "")
        _choose(self.predicted, _ANY if f.predicted is None else f.predicted)
        _choose(self.sort, f.sort)
        self.misclassified.setChecked(f.misclassified)
        self.unreadable.setChecked(f.unreadable)
        self.confidence_low.setValue(round(f.confidence[0] * 100))
        self.confidence_high.setValue(round(f.confidence[1] * 100))
        self.reverse.setChecked(f.descending != DEFAULT_DESCENDING[f.sort])
        for widget in widgets:
            widget.blockSignals(False)
        self.show_only(f.image_ids, f.image_ids_title, f.image_order)

    def _controls(self) -> tuple[QWidget, ...]:
        return (
            self.search,
            self.label,
            self.split,
            self.predicted,
            self.sort,
            self.misclassified,
            self.unreadable,
            self.reverse,
            self.confidence_low,
            self.confidence_high,
        )

    def _emit(self) -> None:
        self._search_timer.stop()
        self.filter_changed.emit(self.current_filter())

    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()


def _choose(combo: QComboBox, value: object) -> None:
    combo.setCurrentIndex(max(combo.findData(value), 0))


def _class_choice(combo: QComboBox) -> int | None:
    value = combo.currentData()
    return None if value in (None, _ANY) else int(value)
