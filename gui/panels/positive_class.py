"""The "Class to find" of a two-class project: the class the decision threshold must find.

Left on "Automatic", the trainer picks it from the class names
(`engine.evaluation.decision.positive_class`, named in the first entry);
a class chosen here goes to the trainer as `TrainOptions.positive`
(``linnaeus train --positive``), which becomes `TrainConfig.positive`, recorded in
the model version's config: when the project opens again, that record brings the
choice back.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox
from PySide6.QtWidgets import QHBoxLayout
from PySide6.QtWidgets import QLabel
from PySide6.QtWidgets import QWidget

from linnaeus.engine.evaluation.decision import positive_class
from linnaeus.engine.evaluation.version import TARGET_SENSITIVITY
from linnaeus.engine.project.store import ClassInfo

POSITIVE_EXPLANATION = (
    "The class the model must find. Its decision threshold is set on the validation images "
    f"so that it finds at least {TARGET_SENSITIVITY:.0%} of this class's images, and the "
    "sensitivity the Evaluate tab reports is this class's. Automatic: the class whose name "
    "does not read as a negative (normal, healthy, negative, uninfected, benign...), else "
    "the second class. Only for projects with exactly two classes."
)


def automatic_text(names: Sequence[str]) -> str:
    """The first entry: "Automatic (<the class the trainer picks from the names>)"."""
    return f"Automatic ({names[positive_class(names)]})"


def recorded_choice(names: Sequence[str], recorded: str | None) -> str | None:
    """The class to show chosen for a project with classes ``names`` whose active model
    version was trained to find ``recorded``: that class when it is one of the two and
    not the one Automatic picks (someone chose it), else None (Automatic)."""
    if recorded is None or len(names) != 2 or recorded not in names:
        return None
    return None if recorded == names[positive_class(names)] else recorded


class PositiveClassField(QWidget):
    """A "Class to find" label and combo box: "Automatic (...)", then the project's two
    classes. Hidden unless the project has exactly two classes (`positive` is then None:
    the trainer decides). A choice is kept per project while the application runs, by
    class id, so renaming the class keeps it; removing it goes back to Automatic. Until
    one is made, the class the active model version was trained to find is shown chosen
    when Automatic would pick the other (`recorded_choice`): a choice survives a restart.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel("Class to find", self)
        self.combo = QComboBox(self)
        self.combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.combo.setMinimumContentsLength(12)  # long class names do not widen the panel
        for widget in (self.label, self.combo):
            widget.setToolTip(POSITIVE_EXPLANATION)
        self.combo.activated.connect(self._on_combo_activated)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.label)
        row.addWidget(self.combo, 1)
        self._project: str | None = None
        self._names: dict[int, str] = {}  # class id -> name, of the classes offered
        self._chosen: dict[str, int | None] = {}  # project id -> class id (None: Automatic)
        self.hide()

    def set_classes(
        self, project_id: str | None, classes: Sequence[ClassInfo], recorded: str | None = None
    ) -> None:
        """Offer the classes of project ``project_id`` (None: no project), in the
        project's order (the trainer's): shown only for exactly two. ``recorded``: the
        class the project's active model version was trained to find, if it says."""
        self._project = project_id
        self.combo.clear()
        self._names = {}
        if project_id is None or len(classes) != 2:
            self.hide()
            return
        self._names = {info.id: info.name for info in classes}
        self.combo.addItem(automatic_text([info.name for info in classes]), None)
        for info in classes:
            self.combo.addItem(info.name, info.id)
            self.combo.setItemData(self.combo.count() - 1, info.name, Qt.ItemDataRole.ToolTipRole)
        if project_id not in self._chosen:  # nothing chosen yet while the application runs
            remembered = recorded_choice([info.name for info in classes], recorded)
            if remembered is not None:
                self._chosen[project_id] = next(i.id for i in classes if i.name == remembered)
        chosen = self._chosen.get(project_id)
        self.combo.setCurrentIndex(0 if chosen is None else max(0, self.combo.findData(chosen)))
        self.show()

    def positive(self) -> str | None:
        """The chosen class's name, or None: Automatic, or not a two-class project."""
        return self._names.get(self.combo.currentData())

    def _on_combo_activated(self, _index: int) -> None:
        if self._project is None:
            return
        self._chosen[self._project] = self.combo.currentData()  # Automatic too: a choice
