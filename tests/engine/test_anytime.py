"""The default training, anytime: the quick model first, then fine-tuning within a
time budget, activated only when better on validation; cancel keeps the best so far.

The deadline's arithmetic is tested on a fake clock; the whole flow on tiny images
(the data thresholds lowered, so an 80-image project may fine-tune).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace

import pytest

from linnaeus.engine.cli.protocol import TrainingDone
from linnaeus.engine.cli.protocol import TrainOptions
from linnaeus.engine.cli.protocol import add_train_flags
from linnaeus.engine.cli.protocol import decode
from linnaeus.engine.cli.protocol import encode
from linnaeus.engine.cli.protocol import train_arguments
from linnaeus.engine.cli.protocol import train_options
from linnaeus.engine.errors import OutOfTime
from linnaeus.engine.errors import TrainingError
from linnaeus.engine.images.augment import PRESETS
from linnaeus.engine.progress import FINE_TUNE_STAGE
from linnaeus.engine.progress import QUICK_STAGE
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import TrainingProgress
from linnaeus.engine.project import versions
from linnaeus.engine.project.versions import ModelVersion
from linnaeus.engine.training import anytime
from linnaeus.engine.training.anytime import better_on_validation
from linnaeus.engine.training.anytime import fine_tune_refusal
from linnaeus.engine.training.anytime import train_anytime
from linnaeus.engine.training.callbacks import ProgressReporter
from linnaeus.engine.training.config import TrainConfig
from linnaeus.engine.training.config import budget_text
from linnaeus.engine.training.config import parse_budget
from linnaeus.engine.training.deadline import STOPPED_AT_DEADLINE
from linnaeus.engine.training.deadline import Deadline
from linnaeus.engine.training.schedule import WarmupCosine
from tests.training_factory import make_shapes_project

# -- the budget -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("10m", 600), ("1h", 3600), ("1h30m", 5400), ("2min", 120), ("0", 0),
     (" 45 s ", 45), ("1.5h", 5400)],
)  # fmt: skip
def test_budgets_are_read_with_their_unit(text: str, seconds: float) -> None:
    assert parse_budget(text) == seconds
    assert parse_budget(budget_text(seconds)) == seconds


@pytest.mark.parametrize("text", ["10", "ten minutes", "", "5x", "m", "-3m"])
def test_a_budget_without_a_unit_is_refused_with_examples(text: str) -> None:
    with pytest.raises(TrainingError, match="90s, 10m, 1h"):
        parse_budget(text)


def test_the_budget_flag_goes_from_the_window_to_the_trainer_and_back(tmp_path) -> None:
    parser = argparse.ArgumentParser()
    add_train_flags(parser)
    assert train_options(parser.parse_args([])).budget_s == 600  # the default: 10m
    options = TrainOptions(budget="90s")
    arguments = train_arguments(tmp_path, options, resume=False)
    assert arguments[arguments.index("--budget") + 1] == "90s"
    parsed = train_options(parser.parse_args(arguments[arguments.index("--json-progress") + 1 :]))
    assert parsed == options and parsed.budget_s == 90
    assert "budget" not in parsed.config().to_dict()  # the run's, not one version's
    with pytest.raises(TrainingError, match="time budget"):
        TrainOptions(budget="soon")


def test_the_stage_the_budget_left_and_the_note_survive_a_json_line() -> None:
    progress = TrainingProgress(
        "fine-tune", 0, 0, phase="fine-tune", anytime_stage=FINE_TUNE_STAGE,
        budget_left_s=312.5, model_ready="v1", message="v1 is ready",
    )  # fmt: skip
    done = TrainingDone(model_version="v1", note="Fine-tuning was not tried: ...")
    for event in (progress, done):
        assert decode(json.loads(json.dumps(encode(event)))) == event


# -- the deadline, on a fake clock -----------------------------------------------


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeModel:
    stop_training: bool = False


@dataclass
class Epochs:
    """Drives a `Deadline` as ``model.fit`` would: ``steps`` batches of ``step_s``
    seconds, then a validation pass of ``validation_s``, per epoch."""

    deadline: Deadline
    clock: Clock
    steps: int = 10
    step_s: float = 1.0
    validation_s: float = 2.0
    epochs: int = 20
    ended: list[int] = field(default_factory=list)
    schedule: WarmupCosine | None = None

    def __post_init__(self) -> None:
        self.model = FakeModel()
        self.deadline.set_model(self.model)
        self.deadline.set_params(
            {"epochs": self.epochs, "steps": self.steps, "schedule": self.schedule}
        )

    def run(self, on_batch=None) -> None:
        for epoch in range(self.epochs):
            self.deadline.on_epoch_begin(epoch)
            for batch in range(self.steps):
                self.clock.now += self.step_s
                if on_batch is not None:
                    on_batch(epoch, batch)
                self.deadline.on_train_batch_end(batch)
                if self.model.stop_training:
                    break
            self.deadline.on_test_begin()
            self.clock.now += self.validation_s
            self.deadline.on_test_end()
            self.deadline.on_epoch_end(epoch)
            self.ended.append(epoch)
            if self.model.stop_training:
                return


def deadline_at(at: float, clock: Clock, cancel: CancelToken | None = None) -> Deadline:
    return Deadline(at, images_after=0, batch_size=10, val_images=20, cancel=cancel, clock=clock)


def test_no_epoch_starts_that_cannot_end_by_the_deadline() -> None:
    clock = Clock()
    deadline = deadline_at(50.0, clock)  # epochs of 12 s: four fit in 48 s, a fifth does not
    fit = Epochs(deadline, clock)
    fit.run()
    assert fit.ended == [0, 1, 2, 3] and deadline.stopped == STOPPED_AT_DEADLINE
    assert clock.now <= 50.0


def test_a_budget_too_short_for_every_epoch_shortens_the_learning_rate_plan_to_fit() -> None:
    clock = Clock()
    schedule = WarmupCosine(1e-3, total_steps=20 * 10, warmup_steps=10)
    deadline = deadline_at(50.0, clock)  # four epochs of 12 s fit, not twenty
    fit = Epochs(deadline, clock, schedule=schedule)
    rates: list[float] = []
    fit.run(lambda epoch, batch: rates.append(schedule.rate(epoch * 10 + batch)))
    assert deadline.planned_epochs == 4 and schedule.total_steps == 40  # from epoch 1's end
    assert fit.ended == [0, 1, 2, 3] and clock.now <= 50.0
    assert rates[-1] < 0.1e-3  # the decay ran to its end within the budget
    reports: list[TrainingProgress] = []
    reporter = ProgressReporter(reports.append, "fine-tune", epochs=20, steps=10, batch_size=10)
    reporter.set_params(fit.deadline.params)  # the loop gives every callback the same params
    reporter.on_epoch_end(0)
    assert (reports[-1].epochs, reports[-1].total) == (4, 40)  # "epoch 1/4", not 1/20


def test_a_budget_that_holds_every_epoch_leaves_the_plan_alone() -> None:
    clock = Clock()
    schedule = WarmupCosine(1e-3, total_steps=3 * 10)
    deadline = deadline_at(1000.0, clock)
    Epochs(deadline, clock, epochs=3, schedule=schedule).run()
    assert deadline.planned_epochs == 3 and schedule.total_steps == 30 and not deadline.stopped


def test_the_last_epoch_ends_without_being_called_a_deadline_stop() -> None:
    clock = Clock()
    deadline = deadline_at(1000.0, clock)
    fit = Epochs(deadline, clock, epochs=3)
    fit.run()
    assert fit.ended == [0, 1, 2] and deadline.stopped is None


def test_a_first_epoch_that_cannot_end_in_time_stops_the_run_at_once() -> None:
    clock = Clock()
    fit = Epochs(deadline_at(30.0, clock), clock, steps=100)  # 100 s an epoch
    with pytest.raises(OutOfTime, match="too short to fine-tune"):
        fit.run()
    assert clock.now <= 5.0 and fit.ended == []


def test_cancel_after_a_whole_epoch_stops_and_lets_the_run_measure_the_best() -> None:
    clock, cancel = Clock(), CancelToken()
    deadline = deadline_at(1000.0, clock, cancel)

    def cancel_in_epoch_2(epoch: int, batch: int) -> None:
        if epoch == 1 and batch == 3:
            cancel.cancel()

    fit = Epochs(deadline, clock)
    fit.run(cancel_in_epoch_2)
    assert fit.ended == [0, 1] and deadline.stopped_on_cancel
    assert cancel.cancelled and not deadline.run_cancel.cancelled  # the run measures


def test_cancel_in_the_first_epoch_cancels_the_run() -> None:
    clock, cancel = Clock(), CancelToken()
    deadline = deadline_at(1000.0, clock, cancel)
    fit = Epochs(deadline, clock)
    fit.deadline.on_epoch_begin(0)
    cancel.cancel()
    deadline.on_train_batch_end(0)
    assert not fit.model.stop_training and deadline.run_cancel.cancelled  # the checkpointer's


# -- the rule and the refusals -----------------------------------------------------


@pytest.mark.parametrize(
    ("candidate", "incumbent", "better"),
    [({"accuracy": 0.93, "loss": 0.30}, {"accuracy": 0.91, "loss": 0.20}, True),
     ({"accuracy": 0.90, "loss": 0.10}, {"accuracy": 0.91, "loss": 0.20}, False),
     ({"accuracy": 0.91, "loss": 0.10}, {"accuracy": 0.91, "loss": 0.20}, True),
     ({"accuracy": 0.91, "loss": 0.20}, {"accuracy": 0.91, "loss": 0.20}, False),
     ({}, {"accuracy": 0.91, "loss": 0.20}, False)],
)  # fmt: skip
def test_better_means_more_accurate_at_decisions_then_lower_loss(
    candidate, incumbent, better
) -> None:
    assert better_on_validation(candidate, incumbent) is better


def quick_version(train: int, val: int, **val_extra) -> ModelVersion:
    metrics = {"train": {"images": train}, "val": {"images": val, **val_extra}}
    return ModelVersion(id=1, created_at="", finished_at=None, status="done",
                        kind="quick", config={}, augmentation={}, classes=["a", "b"],
                        metrics=metrics, curves={}, duration_s=1.0, device="CPU", error="",
                        folder=None)  # type: ignore[arg-type]  # fmt: skip


@pytest.mark.parametrize(
    ("version", "left", "budget", "words"),
    [(quick_version(500, 100), 500, 0, "quick model only"),
     (quick_version(60, 15), 500, 600, "at least 100 training and 20 validation"),
     (quick_version(500, 100, augmented_views=40), 500, 600, "too small for a validation"),
     (quick_version(500, 100), 20, 60, "20 s of the 1m time budget")],
)  # fmt: skip
def test_too_little_data_or_time_is_said_plainly(version, left, budget, words) -> None:
    assert words in fine_tune_refusal(version, left, budget)
    assert fine_tune_refusal(quick_version(500, 100), 500, 600) is None


# -- the whole flow, on tiny images ------------------------------------------------

TINY = TrainConfig(image_size=32, batch_size=16, epochs=4, augmentation=PRESETS["none"])


@pytest.fixture
def small_enough(monkeypatch) -> None:
    """Let an 80-image project fine-tune (its 56 training and 12 validation images)."""
    monkeypatch.setattr(anytime, "MIN_TRAIN_IMAGES", 10)
    monkeypatch.setattr(anytime, "MIN_VAL_IMAGES", 4)


def test_quick_model_first_then_fine_tuning_stops_at_the_deadline(
    tmp_path, small_enough, monkeypatch
) -> None:
    """The clock jumps when the second fine-tuning epoch ends: no third one starts.
    The fine-tuned version is not better (forced): the quick one stays active."""
    monkeypatch.setattr(anytime, "better_on_validation", lambda new, old: False)
    store = make_shapes_project(tmp_path)
    clock = Clock(0.0)
    reports: list[TrainingProgress] = []

    def follow(progress: TrainingProgress) -> None:
        reports.append(progress)
        ended = progress.batch == progress.batches
        if progress.phase == "fine-tune" and progress.epoch == 2 and ended:
            clock.now = 995.0  # 5 s of the budget left: too little for another epoch

    import time

    start = time.monotonic()
    clock_fn = lambda: clock.now + (time.monotonic() - start)  # noqa: E731
    result = train_anytime(store, TINY, budget_s=1000, on_progress=follow, clock=clock_fn)
    quick, fine = result.quick, result.fine_tuned
    assert quick.kind == "quick" and fine is not None and fine.kind == "accurate"
    assert fine.status == "done" and len(fine.curves["fine-tune_loss"]) == 2
    assert versions.active_version(store).id == quick.id
    assert "not better on validation" in result.note
    assert "The time budget held 2 of the 4 fine-tuning epochs" in result.note
    ready = [p for p in reports if p.model_ready]
    assert [p.model_ready for p in ready] == ["v1"]
    assert {p.anytime_stage for p in reports} == {QUICK_STAGE, FINE_TUNE_STAGE}
    assert all(p.budget_left_s is not None for p in reports)


def test_cancel_midway_keeps_the_best_epoch_when_it_is_better(
    tmp_path, small_enough, monkeypatch
) -> None:
    monkeypatch.setattr(anytime, "better_on_validation", lambda new, old: True)
    store = make_shapes_project(tmp_path)
    cancel = CancelToken()

    def cancel_in_epoch_2(progress: TrainingProgress) -> None:
        if progress.phase == "fine-tune" and progress.epoch == 2:
            cancel.cancel()

    result = train_anytime(store, TINY, budget_s=3600, on_progress=cancel_in_epoch_2,
                           cancel=cancel)  # fmt: skip
    fine = result.fine_tuned
    assert fine is not None and fine.status == "done"
    assert versions.active_version(store).id == fine.id == result.result.version.id
    assert "cancelled: its best epoch so far" in result.note


def test_too_little_data_stops_after_the_quick_model_and_says_so(tmp_path) -> None:
    store = make_shapes_project(tmp_path)
    result = train_anytime(store, TINY, budget_s=600)
    assert result.fine_tuned is None and result.result.version.kind == "quick"
    assert "at least 100 training" in result.note
    assert [v.kind for v in versions.list_versions(store)] == ["quick"]


def test_without_imagenet_weights_the_default_trains_from_scratch_once(
    tmp_path, monkeypatch
) -> None:
    from linnaeus.engine.training import backbones

    monkeypatch.setattr(backbones, "package_weights_dir", lambda: tmp_path / "shipped")
    monkeypatch.setenv("LINNAEUS_WEIGHTS", str(tmp_path / "none"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr("platformdirs.user_data_path", lambda *a, **k: tmp_path / "data")
    store = make_shapes_project(tmp_path, {"disk": 10, "square": 10})
    result = train_anytime(store, replace(TINY, epochs=1), budget_s=600)
    assert result.result.version.kind == "small-resnet" and result.fine_tuned is None
    assert [v.kind for v in versions.list_versions(store)] == ["small-resnet"]
