"""The class bar: one button per class, with its key, to label the selected images.

The buttons stand in a column (any number of classes fits, scrolling), each
with its key, name and image count.

Keys: the class's shortcut (1-9, then letters, as the store assigns them)
labels the selection; Enter accepts the model's suggestion; Backspace removes
the label. "H" is kept for the heatmap, so a class whose shortcut is "h" is
reached by its button only. The keys work while the grid or the viewer has
the keyboard focus, never while you type in a text field.

The "⋯" beside a class (or a right-click on its button) opens its menu:
rename, recolour, merge or delete; "+ Add a class…" adds one. The window's
Classes menu offers the same (`fill_classes_menu`), and a line under the
buttons says so. Every change is undoable; the bar only emits what the user
asked for and never touches the store itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence

from PySide6.QtCore import QPoint
from PySide6.QtCore import Qt
from PySide6.QtCore import Signal
from PySide6.QtGui import QAction
from PySide6.QtGui import QColor
from PySide6.QtGui import QIcon
from PySide6.QtGui import QKeySequence
from PySide6.QtGui import QPalette
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QColorDialog
from PySide6.QtWidgets import QFrame
from PySide6.QtWidgets import QGridLayout
from PySide6.QtWidgets import QInputDialog
from PySide6.QtWidgets import QLabel
from PySide6.QtWidgets import QMenu
from PySide6.QtWidgets import QPushButton
from PySide6.QtWidgets import QScrollArea
from PySide6.QtWidgets import QToolButton
from PySide6.QtWidgets import QVBoxLayout
from PySide6.QtWidgets import QWidget

from linnaeus.engine.project.store import ClassInfo
from linnaeus.gui.widgets.headings import heading

RESERVED_KEYS = frozenset({"h"})  # the heatmap key
MAX_VISIBLE_CLASSES = 10  # more scroll
ACCEPT_KEYS = (QKeySequence(Qt.Key.Key_Return), QKeySequence(Qt.Key.Key_Enter))
UNLABEL_KEY = QKeySequence(Qt.Key.Key_Backspace)
CLASS_HINT = (
    "⋯ or right-click a class to rename, recolour, merge or delete it (also: Classes menu)."
)


def class_key(info: ClassInfo) -> str | None:
    """The key that labels with this class in the GUI, if any."""
    if info.shortcut is None or info.shortcut.lower() in RESERVED_KEYS:
        return None
    return info.shortcut


class ClassBar(QWidget):
    """Buttons and keys that label the selection; see the module docstring."""

    label_chosen = Signal(str)  # class name
    accept_suggestion_requested = Signal()
    unlabel_requested = Signal()
    add_requested = Signal(str)
    rename_requested = Signal(str, str)  # old, new
    recolour_requested = Signal(str, str)  # name, colour "#rrggbb"
    merge_requested = Signal(str, str)  # source, target
    delete_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._classes: list[ClassInfo] = []
        self._targets: list[QWidget] = []
        self._class_actions: list[QAction] = []
        self.accept_action = QAction("Accept suggestion", self)
        self.accept_action.setShortcuts(list(ACCEPT_KEYS))
        self.accept_action.setToolTip("Label the selection with the model's prediction (Enter)")
        self.accept_action.triggered.connect(self.accept_suggestion_requested)
        self.unlabel_action = QAction("Remove label", self)
        self.unlabel_action.setShortcut(UNLABEL_KEY)
        self.unlabel_action.setToolTip("Make the selected images unlabelled (Backspace)")
        self.unlabel_action.triggered.connect(self.unlabel_requested)
        for action in (self.accept_action, self.unlabel_action):
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)

        self._rows = QGridLayout()
        self._rows.setContentsMargins(0, 0, 0, 0)
        self._rows.setHorizontalSpacing(6)
        self._rows.setVerticalSpacing(3)
        self._rows.setColumnStretch(0, 1)
        rows = QWidget()
        rows.setLayout(self._rows)
        self._scroll = QScrollArea()
        self._scroll.setWidget(rows)
        self._scroll.setWidgetResizable(True)
        self._scroll.setFrameShape(QFrame.Shape.NoFrame)
        self._scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._count_labels: list[QLabel] = []
        add = _wide_button("+  Add a class…", "Add a class")
        add.clicked.connect(self._on_add_clicked)
        accept = _wide_button("Accept suggestion   (Enter)", self.accept_action.toolTip())
        accept.clicked.connect(self.accept_action.trigger)
        unlabel = _wide_button(
            f"{self.unlabel_action.text()}   (Backspace)", self.unlabel_action.toolTip()
        )
        unlabel.clicked.connect(self.unlabel_action.trigger)
        self.accept_button = accept
        self.hint = QLabel(CLASS_HINT, wordWrap=True)
        self.hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(heading("Label the selected images"))
        layout.addWidget(self._scroll)
        layout.addWidget(self.hint)
        layout.addWidget(add)
        layout.addSpacing(6)
        layout.addWidget(accept)
        layout.addWidget(unlabel)

    # -- classes ------------------------------------------------------------

    def set_classes(
        self, classes: Sequence[ClassInfo], counts: Mapping[int, int] | None = None
    ) -> None:
        """Show one button per class (with its image count) and bind its key."""
        self._classes = list(classes)
        while self._rows.count():
            item = self._rows.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        for action in self._class_actions:
            for target in self._targets:
                target.removeAction(action)
            action.deleteLater()
        self._class_actions = []
        self._count_labels = []
        for row, info in enumerate(self._classes):
            action = self._make_action(info)
            self._class_actions.append(action)
            key = class_key(info)
            text = f"{key.upper() if key else '  '}    {info.name}"
            button = _wide_button(text, action.toolTip())
            button.setIcon(action.icon())
            button.setObjectName(f"class-{info.name}")
            button.clicked.connect(action.trigger)
            button.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
            button.customContextMenuRequested.connect(
                lambda at, b=button, name=info.name: self._show_class_menu(b, name, at)
            )
            count = QLabel(alignment=Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            count.setToolTip(f"Readable images labelled {info.name}")
            self._count_labels.append(count)
            self._rows.addWidget(button, row, 0)
            self._rows.addWidget(count, row, 1)
            self._rows.addWidget(self._menu_button(info.name), row, 2)
        self._rows.setRowStretch(len(self._classes), 1)
        for target in self._targets:
            target.addActions(self._class_actions)
        self.set_counts(counts or {})
        row_height = self._rows.itemAt(0).widget().sizeHint().height() + 3 if self._classes else 0
        self._scroll.setFixedHeight(min(len(self._classes), MAX_VISIBLE_CLASSES) * row_height)

    def set_counts(self, counts: Mapping[int, int]) -> None:
        """Show how many readable images each class has."""
        for info, label in zip(self._classes, self._count_labels, strict=True):
            label.setText(f"{counts.get(info.id, 0):,}")

    def set_shortcut_targets(self, widgets: Iterable[QWidget]) -> None:
        """The widgets in which the class keys work (and their children)."""
        self._targets = list(widgets)
        for target in self._targets:
            target.addActions([*self._class_actions, self.accept_action, self.unlabel_action])

    @property
    def class_actions(self) -> list[QAction]:
        return list(self._class_actions)

    def _make_action(self, info: ClassInfo) -> QAction:
        action = QAction(_swatch(info.colour), info.name, self)
        key = class_key(info)
        if key:
            action.setShortcut(QKeySequence(key.upper()))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        tip = f"Label the selection as {info.name}" + (f" (key {key.upper()})" if key else "")
        action.setToolTip(tip + ". Right-click to rename, recolour, merge or delete.")
        action.triggered.connect(lambda _=False, name=info.name: self.label_chosen.emit(name))
        return action

    # -- class menu ---------------------------------------------------------

    def _menu_button(self, name: str) -> QToolButton:
        """The "⋯" beside a class: its menu, findable without a right-click."""
        button = QToolButton()
        button.setText("⋯")
        button.setObjectName(f"class-menu-{name}")
        button.setToolTip(f"Rename, recolour, merge or delete {name}")
        button.setAutoRaise(True)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys go on working in the grid
        button.clicked.connect(
            lambda _=False, b=button: self.class_menu(name).exec(
                b.mapToGlobal(b.rect().bottomLeft())
            )
        )
        return button

    def fill_classes_menu(self, menu: QMenu) -> None:
        """Fill the window's Classes menu: add, then each class's actions by what they do."""
        menu.clear()
        menu.addAction("Add a class…", self._on_add_clicked)
        menu.addSeparator()
        names = [info.name for info in self._classes]
        for title, chosen in (
            ("Rename", self._on_rename_chosen),
            ("Change colour of", self._on_recolour_chosen),
        ):
            submenu = menu.addMenu(title)
            for info in self._classes:
                submenu.addAction(
                    _swatch(info.colour), info.name, lambda n=info.name, c=chosen: c(n)
                )
            submenu.setEnabled(bool(names))
        merge = menu.addMenu("Merge")
        for info in self._classes:
            self._add_merge_targets(merge.addMenu(_swatch(info.colour), f"{info.name} into"),
                                    info.name)  # fmt: skip
        merge.setEnabled(len(names) > 1)
        delete = menu.addMenu("Delete (its images become unlabelled)")
        for info in self._classes:
            delete.addAction(
                _swatch(info.colour), info.name,
                lambda n=info.name: self.delete_requested.emit(n),
            )  # fmt: skip
        delete.setEnabled(bool(names))

    def _add_merge_targets(self, menu: QMenu, source: str) -> None:
        for other in self._classes:
            if other.name != source:
                menu.addAction(
                    _swatch(other.colour), other.name,
                    lambda target=other.name: self.merge_requested.emit(source, target),
                )  # fmt: skip

    def _show_class_menu(self, button: QPushButton, name: str, at: QPoint) -> None:
        self.class_menu(name).exec(button.mapToGlobal(at))

    def class_menu(self, name: str) -> QMenu:
        menu = QMenu(self)
        menu.addAction("Rename…", lambda: self._on_rename_chosen(name))
        menu.addAction("Colour…", lambda: self._on_recolour_chosen(name))
        merge = menu.addMenu("Merge into")
        self._add_merge_targets(merge, name)
        merge.setEnabled(len(self._classes) > 1)
        menu.addSeparator()
        menu.addAction(
            "Delete (its images become unlabelled)", lambda: self.delete_requested.emit(name)
        )
        return menu

    def _on_add_clicked(self) -> None:
        name, ok = QInputDialog.getText(self, "Add a class", "Name of the new class:")
        if ok and name.strip():
            self.add_requested.emit(name.strip())

    def _on_rename_chosen(self, name: str) -> None:
        new, ok = QInputDialog.getText(self, "Rename class", f"New name for {name}:", text=name)
        if ok and new.strip() and new.strip() != name:
            self.rename_requested.emit(name, new.strip())

    def _on_recolour_chosen(self, name: str) -> None:
        current = next((c.colour for c in self._classes if c.name == name), "#808080")
        colour = QColorDialog.getColor(QColor(current), self, f"Colour of {name}")
        if colour.isValid():
            self.recolour_requested.emit(name, colour.name())


def _swatch(colour: str) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(QColor(colour))
    return QIcon(pixmap)


def _wide_button(text: str, tip: str) -> QPushButton:
    button = QPushButton(text)
    button.setToolTip(tip)
    button.setStyleSheet("text-align: left; padding: 3px 8px;")
    button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys go on working in the grid
    return button
