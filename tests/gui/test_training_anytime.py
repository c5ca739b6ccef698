"""The window's side of the anytime training: the time budget field, the progress
words, and curves that show what a user needs (issue 16: the quick model's choice
in words, per-epoch fine-tuning curves against the quick model, legends off the data)."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from linnaeus.engine.cli.protocol import TrainingDone
from linnaeus.engine.cli.protocol import train_arguments
from linnaeus.engine.progress import FINE_TUNE_STAGE
from linnaeus.engine.progress import QUICK_STAGE
from linnaeus.engine.progress import TrainingProgress
from linnaeus.engine.project import versions
from linnaeus.gui.app_settings import BUDGET_MINUTES_KEY as BUDGET_KEY
from linnaeus.gui.app_settings import DEFAULT_BUDGET_MINUTES
from linnaeus.gui.panels.training_curves import NO_EPOCHS
from linnaeus.gui.panels.training_curves import TrainingCurvesView
from linnaeus.gui.panels.training_panel import KEEP_BEST_MS
from linnaeus.gui.panels.training_panel import TrainingPanel
from linnaeus.gui.panels.training_texts import progress_text
from linnaeus.gui.panels.training_texts import summary_text
from linnaeus.gui.processes.train_runner import TrainRunner
from tests.gui.fake_trainer import fake_command
from tests.training_factory import make_shapes_project

QUICK_CURVES = {
    "head_C": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0],
    "head_val_loss": [0.35, 0.38, 0.45, 0.55, 0.63, 0.70],
    "head_val_accuracy": [0.93, 0.93, 0.925, 0.93, 0.93, 0.925],
}
QUICK_METRICS = {"val": {"images": 24, "accuracy": 0.93, "argmax_accuracy": 0.92, "loss": 0.35}}


def make_panel(qtbot, store=None) -> TrainingPanel:
    panel = TrainingPanel(runner=TrainRunner(command=fake_command()))
    qtbot.addWidget(panel)
    if store is not None:
        panel.set_project(store)
    return panel


def epoch(number: int, loss: float, val_loss: float, **extra) -> TrainingProgress:
    return TrainingProgress(
        "fine-tune", 10, 10, phase="fine-tune", epoch=number, epochs=10, batch=10, batches=10,
        loss=loss, accuracy=1 - loss, val_loss=val_loss, val_accuracy=1 - val_loss, **extra,
    )  # fmt: skip


# -- the budget field ------------------------------------------------------------


def test_the_budget_field_is_saved_under_the_application_wide_key(qtbot, tmp_path) -> None:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    panel = make_panel(qtbot)
    assert panel.budget.value() == DEFAULT_BUDGET_MINUTES == 10
    assert panel.training_options().budget == "10m"
    panel.budget.setValue(25)
    settings.beginGroup("panels/Train")  # as the main window saves each panel
    panel.save_state(settings)
    settings.endGroup()
    assert settings.value(BUDGET_KEY) in (25, "25")  # where the Settings dialog writes it

    settings.setValue(BUDGET_KEY, 40)  # e.g. the Settings dialog's default
    again = make_panel(qtbot)
    settings.beginGroup("panels/Train")
    again.restore_state(settings)
    assert settings.group() == "panels/Train"  # left as it was found
    settings.endGroup()
    assert again.budget.value() == 40
    options = again.training_options()
    assert options.budget == "40m" and options.budget_s == 2400
    arguments = train_arguments(tmp_path, options, resume=False)
    assert arguments[arguments.index("--budget") + 1] == "40m"


def test_the_budget_applies_to_the_automatic_model_only(qtbot) -> None:
    panel = make_panel(qtbot)
    panel._store = object()  # a project is open (enables the controls)
    panel._update_buttons()
    assert panel.budget.isEnabled()
    panel.model_choice.setCurrentIndex(panel.model_choice.findData("seed-cnn"))
    assert not panel.budget.isEnabled()
    panel.budget.setValue(0)
    assert panel.budget.text() == "quick model only" and panel.training_options().budget == "0m"


# -- words ------------------------------------------------------------------------


def test_progress_says_which_model_trains_and_the_time_budget_left() -> None:
    quick = TrainingProgress("embed", 120, 400, phase="embed", anytime_stage=QUICK_STAGE,
                             budget_left_s=470)  # fmt: skip
    assert progress_text(quick) == (
        "Quick model: Computing ImageNet features · 120 of 400 · 7 min 50 s of the time budget left"
    )
    fine = epoch(2, 0.3, 0.2, images_per_s=32, eta_s=100, anytime_stage=FINE_TUNE_STAGE,
                 budget_left_s=370)  # fmt: skip
    assert progress_text(fine) == (
        "Better model: Fine-tuning · epoch 2 of 10 · 32 images/s · about 1 min 40 s left · "
        "6 min 10 s of the time budget left"
    )
    note = "v2 (fine-tuned) is not better on validation than v1 (quick); v1 stays active."
    done = TrainingDone(model_version="v1", metrics={"val": {"accuracy": 0.93}}, note=note)
    assert summary_text(done).endswith(note)


# -- curves -----------------------------------------------------------------------


def test_the_quick_model_is_said_in_words_not_drawn_over_settings(qtbot) -> None:
    view = TrainingCurvesView()
    qtbot.addWidget(view)
    view.show_stored(QUICK_CURVES, ("v1", "quick", QUICK_METRICS))
    text = view.summary.text()
    assert "v1 (quick model): validation accuracy 93.0% at its decisions, on 24 images" in text
    assert "the one kept (C = 0.01) has the lowest validation loss, 0.350" in text
    assert NO_EPOCHS in text
    assert view.history.empty and view.plots.isHidden() and view.legend.isHidden()


def test_fine_tuning_curves_per_epoch_against_the_quick_model_legend_off_the_data(qtbot) -> None:
    view = TrainingCurvesView()
    qtbot.addWidget(view)
    view.resize(900, 360)
    view.show()
    for step, loss in enumerate(QUICK_CURVES["head_val_loss"], start=1):  # refit: not drawn
        view.add_progress(TrainingProgress("head", step, 6, phase="head", epoch=step, epochs=6,
                                           val_loss=loss, val_accuracy=0.93))  # fmt: skip
    view.set_reference("v1 (quick model)", QUICK_METRICS)
    for number in range(1, 5):
        view.add_progress(epoch(number, 0.5 / number, 0.3 / number))
    assert view.history.series("loss")[0] == [1, 2, 3, 4]
    assert view.curves["loss"].getData()[0].tolist() == [1, 2, 3, 4]  # training is drawn
    legend = view.legend.text()
    assert "training" in legend and "validation" in legend
    assert "v1 (quick model), validation (to beat)" in legend
    for plot in (view.loss_plot, view.accuracy_plot):
        assert plot.getPlotItem().legend is None  # the legend is a line above the plots
        x_low, x_high = plot.getPlotItem().getViewBox().viewRange()[0]
        assert x_low <= 0.5 and x_high >= 4.5  # no point on an edge
    (_, _), (low, high) = view.loss_plot.getPlotItem().getViewBox().viewRange()
    assert low < 0.3 / 4 and high > 0.5  # every loss inside
    assert view.accuracy_plot.getPlotItem().getViewBox().viewRange()[1][0] < 0.92  # the line


def test_the_quick_model_ready_midway_becomes_the_windows_model(qtbot, tmp_path) -> None:
    store = make_shapes_project(tmp_path, {"disk": 6, "square": 6})
    version = versions.create_version(store, kind="quick", config={}, augmentation={},
                                      classes=["disk", "square"], labels={})  # fmt: skip
    versions.update_version(store, version.id, status="done", metrics=QUICK_METRICS,
                            curves=QUICK_CURVES)  # fmt: skip
    versions.set_active(store, version.id)
    panel = make_panel(qtbot, store)
    ready = TrainingProgress(
        "fine-tune", 0, 0, phase="fine-tune", anytime_stage=FINE_TUNE_STAGE, budget_left_s=500,
        message="v1 (quick) is ready and is the active model; fine-tuning for at most 8 min.",
        model_ready="v1",
    )  # fmt: skip
    with qtbot.waitSignal(panel.active_model_changed) as changed:
        panel.runner.progress_received.emit(ready)
    assert changed.args == ["v1"]
    assert "ready and is the active model" in panel.result.text()
    assert "8 min 20 s of the time budget left" in panel.progress_label.text()
    panel.runner.progress_received.emit(epoch(1, 0.4, 0.3))
    assert "(to beat)" in panel.curves.legend.text()
    store.close()


def test_cancel_during_fine_tuning_gives_the_trainer_time_to_keep_its_best(
    qtbot, monkeypatch
) -> None:
    panel = make_panel(qtbot)
    asked: list[dict] = []
    monkeypatch.setattr(panel, "is_training", lambda: True)
    monkeypatch.setattr(panel.runner, "cancel", lambda **kwargs: asked.append(kwargs))
    panel.runner.progress_received.emit(
        TrainingProgress("fine-tune", 3, 10, phase="fine-tune", epoch=1, epochs=10, batch=3,
                         batches=10, anytime_stage=FINE_TUNE_STAGE)
    )  # fmt: skip
    panel.cancel_training()  # no whole epoch yet: cancelled as any training
    assert asked == [{}] and "saving a checkpoint" in panel.progress_label.text()
    panel.runner.progress_received.emit(epoch(1, 0.4, 0.3, anytime_stage=FINE_TUNE_STAGE))
    panel.cancel_training()
    assert asked[-1] == {"kill_after_ms": KEEP_BEST_MS}
    assert "best fine-tuned epoch" in panel.progress_label.text()


def test_a_finished_fine_tuning_says_which_epoch_it_keeps(qtbot) -> None:
    view = TrainingCurvesView()
    qtbot.addWidget(view)
    stored = {"fine-tune_loss": [0.5, 0.3, 0.2, 0.1], "fine-tune_val_loss": [0.5, 0.3, 0.35, 0.3]}
    view.show_stored(stored, ("v2", "accurate", QUICK_METRICS))
    assert "v2 (fine-tuned): validation accuracy 93.0%" in view.summary.text()
    assert "It keeps epoch 2, the one with the lowest validation loss" in view.summary.text()


def test_a_new_default_in_settings_is_the_train_tabs_budget(make_window, qtbot) -> None:
    window = make_window(workflows=True)
    window.settings.setValue(BUDGET_KEY, 30)  # as the Settings dialog stores it, then:
    window.settings_changed.emit()
    assert window.workflows.training.budget.value() == 30
