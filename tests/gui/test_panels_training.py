"""The training panel and its child-process runner, with a fake trainer (no TensorFlow)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from linnaeus.engine.cli.protocol import TrainingDone
from linnaeus.engine.cli.protocol import TrainOptions
from linnaeus.engine.evaluation.metrics import AUGMENTED_VIEWS_NOTE
from linnaeus.engine.progress import TRAINING_PHASES
from linnaeus.engine.progress import TrainingProgress
from linnaeus.engine.project import versions
from linnaeus.engine.training.config import IMBALANCE_METHODS
from linnaeus.engine.training.config import MODEL_CHOICES
from linnaeus.gui.panels.positive_class import recorded_choice
from linnaeus.gui.panels.training_curves import PHASE_NAMES
from linnaeus.gui.panels.training_curves import CurveHistory
from linnaeus.gui.panels.training_options import IMBALANCE_WORDS
from linnaeus.gui.panels.training_options import MODEL_WORDS
from linnaeus.gui.panels.training_panel import TrainingPanel
from linnaeus.gui.panels.training_texts import progress_text
from linnaeus.gui.panels.training_texts import summary_text
from linnaeus.gui.processes.child_process import JsonLineBuffer
from linnaeus.gui.processes.child_process import ProcessEnd
from linnaeus.gui.processes.child_process import failure_message
from linnaeus.gui.processes.train_runner import TrainRunner
from tests.gui.fake_trainer import fake_command
from tests.process_factory import held_by_another_process
from tests.training_factory import make_shapes_project

RUN_TIMEOUT_MS = 20_000


def test_every_engine_choice_and_phase_has_words_for_the_user() -> None:
    assert set(MODEL_WORDS) == set(MODEL_CHOICES)
    assert set(IMBALANCE_WORDS) == set(IMBALANCE_METHODS)
    assert set(PHASE_NAMES) == set(TRAINING_PHASES)


@pytest.fixture
def store(tmp_path):
    project = make_shapes_project(tmp_path, {"disk": 12, "square": 12})
    yield project
    project.close()


def make_panel(qtbot, store, *extra: str, kill_after_ms: int = 30_000) -> TrainingPanel:
    runner = TrainRunner(command=fake_command(*extra), kill_after_ms=kill_after_ms)
    panel = TrainingPanel(runner=runner)
    qtbot.addWidget(panel)
    panel.set_project(store)
    return panel


def test_training_updates_curves_and_progress_then_lists_the_new_version(qtbot, store) -> None:
    panel = make_panel(qtbot, store)
    lines = []
    panel.runner.progress_received.connect(lines.append)
    busy = []
    panel.busy_changed.connect(busy.append)
    with qtbot.waitSignal(panel.training_finished, timeout=RUN_TIMEOUT_MS) as finished:
        panel.train_button.click()
        assert panel.is_training() and not panel.train_button.isEnabled()
    assert finished.args == ["v1"]
    assert busy == [True, False] and not panel.is_training()
    assert {progress.phase for progress in lines} == {"decode", "train"}
    epochs, losses = panel.curves.history.series("loss")
    assert epochs == [1, 2, 3] and losses[0] > losses[-1]
    assert panel.curves.history.series("val_accuracy")[0] == [1, 2, 3]
    assert panel.curves.curves["val_loss"].getData()[0].tolist() == [1, 2, 3]
    assert panel.progress.value() == panel.progress.maximum()
    assert (
        "v1 is ready" in panel.result.text() and "validation accuracy 92.0%" in panel.result.text()
    )
    model = panel.versions_model
    assert model.rowCount() == 1 and model.index(0, 7).data() == "● active"
    assert versions.active_version(store).name == "v1"


def test_cancel_ends_with_cancelled_and_resume_continues(qtbot, store) -> None:
    panel = make_panel(qtbot, store, "--behaviour", "slow")
    with qtbot.waitSignal(
        panel.runner.progress_received,
        timeout=RUN_TIMEOUT_MS,
        check_params_cb=lambda progress: progress.phase == "train" and progress.epoch == 2,
    ):
        panel.start_training()
    with qtbot.waitSignal(panel.runner.cancelled, timeout=RUN_TIMEOUT_MS):
        panel.cancel_button.click()
    assert not panel.is_training() and panel.train_button.isEnabled()
    assert "cancelled" in panel.result.text() and "Resume" in panel.result.text()
    assert panel.resume_button.isEnabled()
    assert panel.versions_model.index(0, 2).data() == "cancelled"
    panel.runner._command = fake_command()  # the resumed run goes at full speed
    with qtbot.waitSignal(panel.training_finished, timeout=RUN_TIMEOUT_MS):
        panel.resume_button.click()
    assert panel.versions_model.rowCount() == 1  # the same version, finished
    assert panel.versions_model.index(0, 2).data() == "ready"


def test_a_crashed_trainer_shows_its_message_and_the_panel_lives_on(qtbot, store) -> None:
    panel = make_panel(qtbot, store, "--behaviour", "crash")
    with qtbot.waitSignal(panel.runner.failed, timeout=RUN_TIMEOUT_MS) as failed:
        panel.start_training()
    assert "simulated out of memory" in failed.args[0]
    assert "simulated out of memory" in panel.result.text() and panel.result.kind == "error"
    assert panel.train_button.isEnabled() and not panel.cancel_button.isEnabled()


def test_the_trainers_error_line_is_shown_as_it_is(qtbot, store) -> None:
    panel = make_panel(qtbot, store, "--behaviour", "error")
    with qtbot.waitSignal(panel.runner.failed, timeout=RUN_TIMEOUT_MS) as failed:
        panel.start_training()
    assert failed.args == ["These classes have no training images: square."]


def test_closing_during_training_asks_and_stops_it(qtbot, store, monkeypatch) -> None:
    panel = make_panel(qtbot, store, "--behaviour", "slow")
    assert panel.confirm_close()  # nothing running: no question
    with qtbot.waitSignal(panel.runner.progress_received, timeout=RUN_TIMEOUT_MS):
        panel.start_training()
    answers = [QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Yes]
    monkeypatch.setattr(QMessageBox, "question", lambda *args: answers.pop(0))
    assert not panel.confirm_close() and panel.is_training()
    with qtbot.waitSignal(panel.busy_changed, timeout=RUN_TIMEOUT_MS) as ended:
        assert panel.confirm_close()
    assert ended.args == [False] and not panel.is_training()


def test_a_trainer_that_ignores_sigterm_is_killed(qtbot, store) -> None:
    panel = make_panel(qtbot, store, "--behaviour", "stubborn", kill_after_ms=300)
    with qtbot.waitSignal(panel.runner.progress_received, timeout=RUN_TIMEOUT_MS):
        panel.start_training()
    with qtbot.waitSignal(panel.runner.cancelled, timeout=RUN_TIMEOUT_MS):
        panel.cancel_training()


def test_a_killed_trainer_leaves_its_version_interrupted_never_training(qtbot, store) -> None:
    panel = make_panel(qtbot, store, "--behaviour", "stubborn", kill_after_ms=300)
    seen: list[TrainingProgress] = []
    panel.runner.progress_received.connect(seen.append)
    panel.start_training()
    qtbot.waitUntil(lambda: any(p.phase == "train" and p.epoch == 2 for p in seen), timeout=20_000)
    with qtbot.waitSignal(panel.busy_changed, timeout=RUN_TIMEOUT_MS):
        panel.cancel_training()  # ignored: killed after 300 ms, after its first checkpoint
    (version,) = versions.list_versions(store)
    assert version.status == "interrupted"
    assert panel.versions_model.index(0, 2).data() == "interrupted"
    assert panel.resume_button.isEnabled()


def test_a_project_busy_in_another_process_is_said_and_not_trained(qtbot, store) -> None:
    with held_by_another_process(store.project_dir, "training v4"):
        panel = make_panel(qtbot, store)
        assert panel.result.kind == "info"
        assert panel.result.text().startswith("This project is busy: training v4 since ")
        panel.train_button.click()
        assert not panel.is_training() and panel.train_button.isEnabled()
        assert panel.result.kind == "error" and "training v4" in panel.result.text()
        assert panel.progress_label.text() == "Training did not start."


def test_a_trainer_that_finds_the_project_busy_says_who_holds_it(qtbot, store) -> None:
    runner = TrainRunner(command=fake_command())
    failed: list[str] = []
    runner.failed.connect(failed.append)
    with (
        held_by_another_process(store.project_dir, "exporting v1") as holder,
        qtbot.waitSignal(runner.busy, timeout=RUN_TIMEOUT_MS) as busy,
    ):
        runner.start(store.project_dir)
    assert busy.args[0] == (
        f"This project is busy: exporting v1 since {busy.args[0].split(' since ')[1][:5]} "
        f"(process {holder.pid} on this computer). Wait for it to finish or cancel it."
    )
    assert failed == []


def test_noise_and_split_lines_on_stdout_are_tolerated(qtbot, tmp_path) -> None:
    runner = TrainRunner(command=fake_command("--behaviour", "noise", "--epochs", "1"))
    lines = []
    runner.progress_received.connect(lines.append)
    with qtbot.waitSignal(runner.finished, timeout=RUN_TIMEOUT_MS):
        runner.start(tmp_path)
    assert [p.message for p in lines if p.phase == "decode"][-1] == "split"
    assert runner._process.noise == ["WARNING: a library says something on stdout", "[1, 2, 3]"]


def test_a_trainer_that_cannot_start_is_reported(qtbot, tmp_path) -> None:
    runner = TrainRunner(command=lambda arguments: (str(tmp_path / "no-such-program"), []))
    with qtbot.waitSignal(runner.failed, timeout=RUN_TIMEOUT_MS) as failed:
        runner.start(tmp_path)
    assert failed.args[0].startswith("The trainer could not be started")


def test_custom_augmentation_is_passed_in_a_json_file(qtbot, tmp_path) -> None:
    seen = {}

    def command(arguments):
        path = Path(arguments[arguments.index("--augment") + 1])
        seen["settings"] = json.loads(path.read_text(encoding="utf-8"))
        return sys.executable, ["-c", "pass"]

    runner = TrainRunner(command=command)
    with qtbot.waitSignal(runner.failed, timeout=RUN_TIMEOUT_MS):  # no "done" line: a failure
        runner.start(tmp_path, augmentation={"rotation_range": 15.0})
    assert seen["settings"] == {"rotation_range": 15.0}


@pytest.mark.parametrize(
    ("pieces", "objects", "noise"),
    [
        ([b'{"a": 1}\n{"b"', b": 2}\n"], [{"a": 1}, {"b": 2}], []),
        ([b"hello\n", b'{"a": 1}\r\n', b"[1]\n\n"], [{"a": 1}], ["hello", "[1]"]),
        ([b'{"a": "\xc3', b'\xa9"}\n'], [{"a": "é"}], []),
        ([b'{"a": 1}'], [{"a": 1}], []),  # the unterminated last line, on flush
    ],
)
def test_json_line_buffer(pieces, objects, noise) -> None:
    buffer = JsonLineBuffer()
    found = [line for piece in pieces for line in buffer.feed(piece)] + buffer.flush()
    assert found == objects and list(buffer.noise) == noise


@pytest.mark.parametrize(
    ("end", "expected"),
    [
        (
            ProcessEnd(1, False, ["Traceback (most recent call last):", "RuntimeError: boom"]),
            "The trainer stopped unexpectedly (exit status 1).\nIts last message: RuntimeError: "
            "boom\nThe full output is in the log.",
        ),
        (ProcessEnd(1, False, ["linnaeus: error: No labels."]), "No labels."),
        (
            ProcessEnd(None, False, []),
            "The trainer stopped unexpectedly (it crashed or was stopped by the system).",
        ),
        (
            ProcessEnd(None, False, [], start_error="No such file"),
            "The trainer could not be started: No such file",
        ),
    ],
)
def test_failure_message(end, expected) -> None:
    assert failure_message(end, "The trainer") == expected


def _report(epoch, batch, loss, val_loss=None, phase="train"):
    return TrainingProgress(
        phase, 0, 0, phase=phase, epoch=epoch, epochs=2, batch=batch, batches=2, loss=loss,
        accuracy=0.5, val_loss=val_loss,
    )  # fmt: skip


def test_curve_history_takes_each_epochs_last_values_and_chains_phases() -> None:
    history = CurveHistory()
    reports = [
        TrainingProgress("decode", 5, 10, phase="decode"),
        _report(1, 1, 0.9),
        _report(1, 2, 0.8),
        _report(1, 2, 0.8, val_loss=0.85),
        _report(2, 1, 0.7, val_loss=0.85),  # repeats epoch 1's validation loss
        _report(2, 2, 0.6, val_loss=0.85),
        _report(2, 2, 0.6, val_loss=0.65),
        _report(1, 2, 0.5, val_loss=0.55, phase="fine-tune"),
    ]
    changed = [history.add(report) for report in reports]
    assert changed[0] is False
    assert history.series("loss") == ([1, 2, 3], [0.8, 0.6, 0.5])
    assert history.series("val_loss") == ([1, 2, 3], [0.85, 0.65, 0.55])
    assert history.phase_starts == [(0, "train"), (2, "fine-tune")]


def test_progress_and_summary_texts() -> None:
    report = TrainingProgress(
        "train", 10, 300, phase="train", epoch=3, epochs=30, images_per_s=420.4, eta_s=130
    )
    assert progress_text(report) == (
        "Training · epoch 3 of 30 · 420 images/s · about 2 min 10 s left"
    )
    assert progress_text(TrainingProgress("decode", 5, 1200, phase="decode")) == (
        "Reading images · 5 of 1,200"
    )
    done = TrainingDone(
        model_version="v2",
        metrics={"val": {"accuracy": 0.9444}},
        duration_s=16.4,
        device="CPU (2 cores)",
        skipped=(("a.png", "bad"),),
    )
    assert summary_text(done) == (
        "v2 is ready and is now the active model: validation accuracy 94.4%. Trained in 16 s "
        "on CPU (2 cores). 1 image could not be read and was left out."
    )
    views = {"val": {"accuracy": 0.8, "augmented_views": 400, "training_images": 200}}
    assert summary_text(TrainingDone(model_version="v3", metrics=views)) == (
        f"v3 is ready and is now the active model: validation accuracy 80.0%. "
        f"{AUGMENTED_VIEWS_NOTE}"
    )


def test_the_form_gives_the_trainers_defaults_and_a_custom_augmentation_apart(qtbot) -> None:
    panel = TrainingPanel(runner=TrainRunner(command=fake_command()))
    qtbot.addWidget(panel)
    assert panel.training_options() == TrainOptions()
    assert panel.advanced.custom_augmentation() is None
    panel.model_choice.setCurrentIndex(panel.model_choice.findData("seed-cnn"))
    panel.advanced.epochs.setValue(7)
    panel.set_augmentation({"rotation_range": 15.0})
    assert panel.training_options() == TrainOptions(model="seed-cnn", epochs=7)
    assert panel.advanced.custom_augmentation() == {"rotation_range": 15.0}


def test_a_finished_versions_stored_curves_are_shown(qtbot, store) -> None:
    version = versions.create_version(
        store, kind="accurate", config={}, augmentation={}, classes=["disk", "square"], labels={}
    )
    stored = {
        "head_val_loss": [0.6, 0.5],
        "head_val_accuracy": [0.7, 0.8],
        "fine-tune_loss": [0.4, 0.3, 0.2],
        "fine-tune_val_accuracy": [0.85, 0.9, 0.95],
    }
    versions.update_version(store, version.id, status="done", curves=stored)
    versions.set_active(store, version.id)
    panel = make_panel(qtbot, store)  # opening the project shows the active version's curves
    history = panel.curves.history
    assert history.series("val_loss") == ([], [])  # the last layer's settings are no epochs
    assert history.series("loss") == ([1, 2, 3], [0.4, 0.3, 0.2])
    assert history.series("val_accuracy")[0] == [1, 2, 3]
    assert [phase for _, phase in history.phase_starts] == ["fine-tune"]
    panel.curves.clear()
    panel.versions_view.selectRow(0)  # picking it in the list shows them again
    assert panel.curves.history.series("loss")[1] == [0.4, 0.3, 0.2]


def test_two_classes_show_the_class_to_find_with_the_automatic_pick_named(qtbot, store) -> None:
    store.rename_class("disk", "Parasitized")
    store.rename_class("square", "Uninfected")
    panel = make_panel(qtbot, store)
    field = panel.positive
    assert not field.isHidden() and field.label.text() == "Class to find"
    entries = [field.combo.itemText(i) for i in range(field.combo.count())]
    assert entries == ["Automatic (Parasitized)", "Parasitized", "Uninfected"]
    assert "at least 95%" in field.combo.toolTip() and "sensitivity" in field.combo.toolTip()
    assert panel.training_options().positive is None  # Automatic: the trainer picks
    assert panel.training_options().config().positive is None


def test_a_chosen_class_to_find_reaches_the_trainers_config(qtbot, store) -> None:
    seen: list[list[str]] = []
    fake = fake_command()

    def command(arguments):
        seen.append(arguments)
        return fake(arguments)

    panel = TrainingPanel(runner=TrainRunner(command=command))
    qtbot.addWidget(panel)
    panel.set_project(store)
    field = panel.positive
    field.combo.setCurrentIndex(field.combo.findText("disk"))
    field.combo.activated.emit(field.combo.currentIndex())  # as a user's pick does
    options = panel.training_options()
    assert options.positive == "disk" and options.config().positive == "disk"
    with qtbot.waitSignal(panel.training_finished, timeout=RUN_TIMEOUT_MS):
        panel.train_button.click()
        assert not field.isEnabled()  # not while training
    assert seen[0][seen[0].index("--positive") + 1] == "disk"
    assert field.isEnabled()


def test_the_class_to_find_follows_the_projects_classes(qtbot, store, tmp_path) -> None:
    panel = make_panel(qtbot, store)
    field = panel.positive
    field.combo.setCurrentIndex(field.combo.findText("disk"))
    field.combo.activated.emit(field.combo.currentIndex())
    store.ensure_class("triangle")
    panel.refresh_classes()
    assert field.isHidden() and panel.training_options().positive is None  # three classes
    store.delete_class("triangle")
    store.rename_class("disk", "round")
    panel.refresh_classes()  # two again: the choice is kept, renamed with its class
    assert not field.isHidden() and field.combo.currentText() == "round"
    assert panel.training_options().positive == "round"
    other = make_shapes_project(tmp_path / "other", {"disk": 2, "square": 2})
    panel.set_project(other)  # another project: its own choice, Automatic at first
    assert field.combo.currentText() == "Automatic (square)"
    panel.set_project(None)
    assert field.isHidden() and panel.training_options().positive is None
    panel.set_project(store)  # remembered per project while the application runs
    assert panel.training_options().positive == "round"
    other.close()
    store.delete_class("round")
    panel.refresh_classes()  # one class left: nothing to choose
    assert field.isHidden() and panel.training_options().positive is None


def _trained_to_find(store, positive: str) -> None:
    """Make a finished version, trained to find ``positive``, the active one."""
    version = versions.create_version(
        store,
        kind="quick",
        config={"positive": positive},
        augmentation={},
        classes=["disk", "square"],
        labels={},
    )
    versions.update_version(store, version.id, status="done")
    versions.set_active(store, version.id)


def test_the_class_its_active_version_was_trained_to_find_comes_back(qtbot, store) -> None:
    _trained_to_find(store, "disk")  # chosen: Automatic picks square
    panel = make_panel(qtbot, store)  # as after a restart: nothing chosen while it runs
    field = panel.positive
    assert field.combo.currentText() == "disk"
    assert panel.training_options().positive == "disk"
    store.rename_class("disk", "round")
    panel.refresh_classes()  # kept by class id, as a choice made here is
    assert panel.training_options().positive == "round"
    field.combo.setCurrentIndex(0)
    field.combo.activated.emit(0)  # the user goes back to Automatic: that choice holds
    panel.refresh_classes()
    panel.set_project(store)
    assert field.combo.currentText() == "Automatic (square)"
    assert panel.training_options().positive is None
    _trained_to_find(store, "square")  # what Automatic picks: Automatic it stays
    assert make_panel(qtbot, store).positive.combo.currentText() == "Automatic (square)"


@pytest.mark.parametrize(
    ("names", "recorded", "shown"),
    [
        (["disk", "square"], "disk", "disk"),
        (["disk", "square"], "square", None),  # what Automatic picks
        (["NORMAL", "PNEUMONIA"], "NORMAL", "NORMAL"),
        (["PNEUMONIA", "normal"], "PNEUMONIA", None),
        (["disk", "square"], "round", None),  # a class renamed or removed since
        (["disk", "square"], None, None),  # trained before the class was recorded
        (["disk", "square", "triangle"], "disk", None),
    ],
)
def test_recorded_choice(names, recorded, shown) -> None:
    assert recorded_choice(names, recorded) == shown
