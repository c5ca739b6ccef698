"""The training panel: one "Train" button, live curves, and the project's model versions."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtCore import Qt
from PySide6.QtCore import Signal
from PySide6.QtGui import QFont
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QAbstractItemView
from PySide6.QtWidgets import QComboBox
from PySide6.QtWidgets import QHBoxLayout
from PySide6.QtWidgets import QHeaderView
from PySide6.QtWidgets import QLabel
from PySide6.QtWidgets import QMessageBox
from PySide6.QtWidgets import QProgressBar
from PySide6.QtWidgets import QPushButton
from PySide6.QtWidgets import QSplitter
from PySide6.QtWidgets import QTableView
from PySide6.QtWidgets import QToolButton
from PySide6.QtWidgets import QVBoxLayout
from PySide6.QtWidgets import QWidget

from linnaeus.engine.cli.protocol import TrainingDone
from linnaeus.engine.cli.protocol import TrainOptions
from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.progress import FINE_TUNE_STAGE
from linnaeus.engine.progress import TrainingProgress
from linnaeus.engine.project import leftovers
from linnaeus.engine.project import lock as project_lock
from linnaeus.engine.project import versions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.training.config import MODEL_CHOICES
from linnaeus.engine.training.config import resumable_version
from linnaeus.gui.panels.model_versions import ModelVersionsModel
from linnaeus.gui.panels.positive_class import PositiveClassField
from linnaeus.gui.panels.training_curves import TrainingCurvesView
from linnaeus.gui.panels.training_options import BUDGET_EXPLANATION
from linnaeus.gui.panels.training_options import MODEL_WORDS
from linnaeus.gui.panels.training_options import BudgetField
from linnaeus.gui.panels.training_options import TrainingOptionsForm
from linnaeus.gui.panels.training_options import add_choices
from linnaeus.gui.panels.training_options import save_budget_minutes
from linnaeus.gui.panels.training_options import saved_budget_minutes
from linnaeus.gui.panels.training_texts import progress_text
from linnaeus.gui.panels.training_texts import summary_text
from linnaeus.gui.panels.version_actions import VersionActions
from linnaeus.gui.processes.train_runner import TrainRunner
from linnaeus.gui.widgets.message_line import MessageLine

# How long a cancelled fine-tuning may take to measure its best epoch before it is killed.
KEEP_BEST_MS = 10 * 60_000


class TrainingPanel(QWidget):
    """Train a model on the project's current labels and follow it live.

    The main window gives it the open project with `set_project` and connects:
    - ``training_finished(str)``: a new model version (e.g. "v4") finished and is
      now the active model: refresh the grid's predictions and the evaluation;
    - ``active_model_changed(str)``: the user made another version active;
    - ``busy_changed(bool)``: a training started (True) or ended (False).
    Before the window closes it calls `confirm_close()`, which asks while a
    training runs. Before switching projects, ask while `is_training()`;
    `set_project` cancels a running training.
    Call `refresh_classes` when the project's classes change.
    Slot ``set_augmentation(dict)`` takes the Augmentation panel's
    ``augmentation_changed``. Training runs as a child process (`TrainRunner`;
    tests pass one with a fake trainer).
    """

    training_finished = Signal(str)
    active_model_changed = Signal(str)
    busy_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None, *, runner: TrainRunner | None = None):
        super().__init__(parent)
        self._store: ProjectStore | None = None
        self._phase: str | None = None
        self._fine_tuned_epochs = 0  # whole epochs of an anytime training's fine-tuning
        self.runner = runner or TrainRunner()
        self.runner.setParent(self)
        self.runner.progress_received.connect(self._on_runner_progress_received)
        self.runner.finished.connect(self._on_runner_finished)
        self.runner.failed.connect(self._on_runner_failed)
        self.runner.busy.connect(self._on_runner_busy)
        self.runner.cancelled.connect(self._on_runner_cancelled)

        self.model_choice = QComboBox(self)
        add_choices(self.model_choice, MODEL_CHOICES, MODEL_WORDS)
        self.model_explanation = QLabel(self)
        self.model_explanation.setWordWrap(True)
        self.model_explanation.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.model_explanation.setMinimumHeight(4 * self.fontMetrics().lineSpacing())
        self.model_explanation.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.model_choice.currentIndexChanged.connect(self._on_model_choice_changed)
        self.budget = BudgetField(self)
        self.budget_label = QLabel("Time budget", self)
        self.budget_label.setToolTip(BUDGET_EXPLANATION)
        self.positive = PositiveClassField(self)  # two-class projects only
        self.train_button = QPushButton("Train", self)
        font = QFont(self.train_button.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.3)
        self.train_button.setFont(font)
        self.train_button.setMinimumHeight(44)
        self.train_button.setToolTip("Train a new model version on the current labels.")
        self.train_button.clicked.connect(self._on_train_button_clicked)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop training after saving a checkpoint.")
        self.cancel_button.clicked.connect(self.cancel_training)
        self.resume_button = QPushButton("Resume", self)
        self.resume_button.setToolTip("Continue the last cancelled or interrupted training.")
        self.resume_button.clicked.connect(self._on_resume_button_clicked)
        self.advanced_toggle = QToolButton(self)
        self.advanced_toggle.setText("Advanced settings")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_toggle.setAutoRaise(True)
        self.advanced_toggle.toggled.connect(self._on_advanced_toggle_toggled)
        self.advanced = TrainingOptionsForm(self)
        self.advanced.hide()

        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.progress.hide()  # shown while a training runs
        self.progress_label = QLabel("Press Train to train a model on the current labels.", self)
        self.progress_label.setWordWrap(True)
        self.curves = TrainingCurvesView(self)
        self.result = MessageLine(self)

        self._make_versions_view()
        self._layout()
        self._on_model_choice_changed()
        self._update_buttons()

    def _make_versions_view(self) -> None:
        """The model versions table, its Make active button and its right-click menu."""
        self.versions_model = ModelVersionsModel(self)
        self.versions_view = QTableView(self)
        self.versions_view.setModel(self.versions_model)
        self.versions_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.versions_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.versions_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.versions_view.verticalHeader().hide()
        self.versions_view.setAlternatingRowColors(True)
        header = self.versions_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.versions_view.selectionModel().selectionChanged.connect(self._update_buttons)
        self.versions_view.selectionModel().selectionChanged.connect(self._show_selected_curves)
        self.versions_view.doubleClicked.connect(self._on_make_active_button_clicked)
        self.make_active_button = QPushButton("Make active", self)
        self.make_active_button.setToolTip(
            "Use the selected version for the grid's predictions and the evaluation."
        )
        self.make_active_button.clicked.connect(self._on_make_active_button_clicked)
        self.version_actions = VersionActions(  # right-click: rename, note, delete
            self.versions_view, self.versions_model, is_training=self.is_training, parent=self
        )
        self.version_actions.make_active_requested.connect(self._on_make_active_button_clicked)
        self.version_actions.versions_changed.connect(self.refresh_versions)
        self.version_actions.active_changed.connect(self.active_model_changed)
        self.version_actions.message.connect(self.result.show_message)

    def _layout(self) -> None:
        controls = QWidget(self)
        left = QVBoxLayout(controls)
        left.setContentsMargins(0, 0, 0, 0)
        left.addWidget(QLabel("Model", controls))
        left.addWidget(self.model_choice)
        left.addWidget(self.model_explanation)
        budget = QHBoxLayout()
        budget.addWidget(self.budget_label)
        budget.addWidget(self.budget, 1)
        left.addLayout(budget)
        left.addWidget(self.positive)
        left.addWidget(self.train_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.resume_button)
        left.addLayout(buttons)
        left.addWidget(self.advanced_toggle)
        left.addWidget(self.advanced)
        left.addStretch(1)
        controls.setFixedWidth(max(300, self.advanced.sizeHint().width() + 8))

        live = QWidget(self)
        right = QVBoxLayout(live)
        right.setContentsMargins(0, 0, 0, 0)
        right.addWidget(self.progress)
        right.addWidget(self.progress_label)
        right.addWidget(self.curves, 1)
        right.addWidget(self.result)

        top = QWidget(self)
        row = QHBoxLayout(top)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(controls)
        row.addWidget(live, 1)

        bottom = QWidget(self)
        table = QVBoxLayout(bottom)
        table.setContentsMargins(0, 0, 0, 0)
        title = QHBoxLayout()
        title.addWidget(QLabel("<b>Model versions</b>", bottom))
        title.addWidget(self.version_actions.hint)
        title.addStretch(1)
        title.addWidget(self.make_active_button)
        table.addLayout(title)
        table.addWidget(self.versions_view)
        table.addWidget(self.version_actions.note_label)

        self.splitter = splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(top)
        splitter.addWidget(bottom)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

    # -- public -------------------------------------------------------------

    def set_project(self, store: ProjectStore | None) -> None:
        """Show this project's versions (None: no project). A running training is cancelled."""
        if self.is_training():
            self.cancel_training()
        self._store = store
        self.version_actions.set_store(store)
        self.curves.clear()
        self.result.clear()
        self.progress.reset()
        self.progress.hide()  # shown while a training runs
        self.refresh_versions()
        self.refresh_classes()
        active = versions.active_version(store) if store is not None else None
        if active is not None:
            self._show_curves(active)
        busy = project_lock.busy_message(store.project_dir) if store is not None else None
        if busy is not None:  # e.g. training in another window
            self.result.show_message("info", busy)

    def refresh_classes(self) -> None:
        """Read the project's classes again (the class to find of two-class projects, and
        the one its active model version was trained to find)."""
        store = self._store
        active = versions.active_version(store) if store else None
        self.positive.set_classes(
            store.project_id if store else None,
            store.classes() if store else [],
            active.config.get("positive") if active else None,
        )

    def save_state(self, settings: QSettings) -> None:
        """Remember the model choice, the advanced settings and the layout."""
        settings.setValue("model", self.model_choice.currentData())
        settings.setValue("advanced_shown", self.advanced_toggle.isChecked())
        settings.setValue("splitter", self.splitter.saveState())
        save_budget_minutes(settings, self.budget.value())
        self.advanced.save_state(settings)

    def restore_state(self, settings: QSettings) -> None:
        index = self.model_choice.findData(settings.value("model"))
        if index >= 0:
            self.model_choice.setCurrentIndex(index)
        self.advanced_toggle.setChecked(settings.value("advanced_shown", False, type=bool))
        if settings.value("splitter"):
            self.splitter.restoreState(settings.value("splitter"))
        self.budget.setValue(saved_budget_minutes(settings))
        self.advanced.restore_state(settings)

    def set_augmentation(self, settings: dict[str, Any]) -> None:
        """Train with these `Augmentation` settings (``Augmentation.to_dict()``)."""
        self.advanced.set_augmentation(settings)

    def set_budget_minutes(self, minutes: int) -> None:
        """Train the default (anytime) model within this many minutes from now on."""
        self.budget.setValue(minutes)

    def is_training(self) -> bool:
        return self.runner.is_running

    def confirm_close(self) -> bool:
        """Whether the window may close: asks while a training runs, and stops it if so
        (the main window calls this before closing)."""
        if not self.is_training():
            return True
        answer = QMessageBox.question(
            self,
            "Training is running",
            "Closing stops the training. Resume continues it later from its last finished "
            "epoch.\n\nStop training and close?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return False
        self.runner.kill()  # the last epoch's checkpoint is on disk already
        return True

    def training_options(self) -> TrainOptions:
        """The options the next training starts with."""
        return replace(
            self.advanced.options(),
            model=self.model_choice.currentData(),
            budget=self.budget.budget(),
            positive=self.positive.positive(),
        )

    def start_training(self, resume: bool = False) -> None:
        """Start a new training (or resume the interrupted one) on the project."""
        if self._store is None or self.is_training():
            return
        busy = project_lock.busy_message(self._store.project_dir)
        if busy is not None:
            self._on_runner_busy(busy, ended=False)
            return
        if not resume:
            self.curves.clear()
        self.result.clear()
        self._phase = None
        self._fine_tuned_epochs = 0
        self.progress.show()
        self.progress.setRange(0, 0)  # busy until the first line
        self.progress_label.setText("Starting the trainer…")
        self.runner.start(
            self._store.project_dir,
            self.training_options(),
            resume=resume,
            augmentation=self.advanced.custom_augmentation(),
        )
        self._update_buttons()
        self.busy_changed.emit(True)

    def cancel_training(self) -> None:
        """Ask the trainer to stop after saving a checkpoint (Resume continues from it).
        Fine-tuning after the quick model keeps its best epoch so far if it is better:
        the trainer is given time to measure it."""
        if not self.is_training():
            return
        if self._fine_tuned_epochs:
            self.runner.cancel(kill_after_ms=KEEP_BEST_MS)
            text = "Stopping: measuring the best fine-tuned epoch so far (kept if it is better)…"
        else:
            self.runner.cancel()
            text = "Stopping: saving a checkpoint first…"
        self.cancel_button.setEnabled(False)
        self.progress_label.setText(text)

    def refresh_versions(self) -> None:
        """Read the model versions again (after another part of the app changed them)."""
        self.versions_model.training = self.is_training()
        self.versions_model.refresh(self._store)
        self._update_buttons()

    # -- slots --------------------------------------------------------------

    def _show_selected_curves(self) -> None:
        """A version picked in the list shows its curves (not while a training draws)."""
        selected = self._selected_version()
        if selected is not None and not self.is_training():
            self._show_curves(selected)

    def _show_curves(self, version: versions.ModelVersion) -> None:
        self.curves.show_stored(version.curves, (version.name, version.kind, version.metrics))

    def _on_model_choice_changed(self) -> None:
        self.model_explanation.setText(MODEL_WORDS[self.model_choice.currentData()][1])
        self._update_buttons()

    def _on_advanced_toggle_toggled(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        arrow = Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow
        self.advanced_toggle.setArrowType(arrow)

    def _on_train_button_clicked(self) -> None:
        self.start_training(resume=False)

    def _on_resume_button_clicked(self) -> None:
        self.start_training(resume=True)

    def _on_runner_progress_received(self, progress: TrainingProgress) -> None:
        if progress.phase != self._phase:  # the new version is listed once it exists
            self._phase = progress.phase
            self.refresh_versions()
        if progress.model_ready:
            self._on_model_ready(progress)
        if progress.anytime_stage == FINE_TUNE_STAGE and progress.phase == "fine-tune":
            ended = progress.batch == progress.batches and progress.epoch > 0
            self._fine_tuned_epochs = max(self._fine_tuned_epochs, progress.epoch - (not ended))
        self.curves.add_progress(progress)
        if progress.total > 0:
            self.progress.setRange(0, progress.total)
            self.progress.setValue(min(progress.done, progress.total))
        else:
            self.progress.setRange(0, 0)
        self.progress_label.setText(progress_text(progress))

    def _on_model_ready(self, progress: TrainingProgress) -> None:
        """The quick model is ready and active while fine-tuning goes on: the window
        uses it now, and the curves show what fine-tuning has to beat."""
        self.refresh_versions()
        ready = next((v for v in self.versions_model.versions if v.name == progress.model_ready),
                     None)  # fmt: skip
        if ready is not None:
            self.curves.set_reference(f"{ready.name} (quick model)", ready.metrics)
        self.result.show_message("info", progress.message)
        self.active_model_changed.emit(progress.model_ready)

    def _on_runner_finished(self, done: TrainingDone) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress_label.setText("Finished.")
        self.result.show_message("warning" if done.warnings else "success", summary_text(done))
        self._ended()
        self.training_finished.emit(done.model_version)

    def _on_runner_failed(self, message: str) -> None:
        self.progress.setRange(0, 1)
        self.progress.reset()
        self.progress_label.setText("Training stopped.")
        self.result.show_message("error", f"Training failed: {message}")
        self._ended()

    def _on_runner_busy(self, message: str, *, ended: bool = True) -> None:
        """Training did not start: another process writes to the project."""
        self.progress.setRange(0, 1)
        self.progress.reset()
        self.progress.hide()
        self.progress_label.setText("Training did not start.")
        self.result.show_message("error", message)
        if ended:
            self._ended()

    def _on_runner_cancelled(self) -> None:
        self.progress.setRange(0, 1)
        self.progress.reset()
        self.progress_label.setText("Training cancelled.")
        self._ended()
        hint = " Press Resume to continue from the last saved epoch."
        self.result.show_message(
            "info", "Training cancelled." + (hint if self.resume_button.isEnabled() else "")
        )

    def _ended(self) -> None:
        if self._store is not None:  # a trainer that crashed leaves its version "training"
            leftovers.tidy(self._store)
        self.refresh_versions()
        self.busy_changed.emit(False)

    def _on_make_active_button_clicked(self) -> None:
        version = self._selected_version()
        if self._store is None or version is None or version.status != "done":
            return
        try:
            versions.set_active(self._store, version.id)
        except LinnaeusError as error:
            self.result.show_message("error", str(error))
            return
        self.refresh_versions()
        self.active_model_changed.emit(version.name)

    def _selected_version(self) -> versions.ModelVersion | None:
        rows = self.versions_view.selectionModel().selectedRows()
        return self.versions_model.version_at(rows[0].row()) if rows else None

    def _update_buttons(self) -> None:
        running = self.is_training()
        has_project = self._store is not None
        self.train_button.setEnabled(has_project and not running)
        self.cancel_button.setEnabled(running)
        resumable = resumable_version(self.versions_model.versions) if has_project else None
        self.resume_button.setEnabled(not running and resumable is not None)
        if resumable is not None:
            self.resume_button.setToolTip(
                f"Continue training {resumable.name} from its last saved epoch."
            )
        self.model_choice.setEnabled(not running)
        anytime = self.model_choice.currentData() == "auto"  # the budget is the default's
        self.budget.setEnabled(not running and anytime)
        self.budget_label.setEnabled(not running and anytime)
        self.advanced.setEnabled(not running)
        self.positive.setEnabled(not running)
        self.version_actions.update_actions()
        selected = self._selected_version()
        self.make_active_button.setEnabled(
            selected is not None
            and selected.status == "done"
            and not self.versions_model.is_active(selected)
        )
