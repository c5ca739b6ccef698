"""What the training panel says: a progress report and a finished training in words."""

from __future__ import annotations

from linnaeus.engine.cli.protocol import TrainingDone
from linnaeus.engine.evaluation.metrics import AUGMENTED_VIEWS_NOTE
from linnaeus.engine.progress import EPOCH_PHASES
from linnaeus.engine.progress import FINE_TUNE_STAGE
from linnaeus.engine.progress import QUICK_STAGE
from linnaeus.engine.progress import TrainingProgress
from linnaeus.gui.panels.training_curves import phase_name
from linnaeus.gui.widgets.formatting import format_duration
from linnaeus.gui.widgets.formatting import format_percent
from linnaeus.gui.widgets.formatting import format_rate

# engine.progress's anytime stages, in the user's words
STAGE_NAMES = {QUICK_STAGE: "Quick model", FINE_TUNE_STAGE: "Better model"}


def progress_text(progress: TrainingProgress) -> str:
    """What a progress report says, e.g. "Training · epoch 3 of 30 · 420 images/s ·
    about 2 min 10 s left"; in an anytime training, which model is being trained and
    the time budget left, e.g. "Better model: Fine-tuning · epoch 2 of 10 · … ·
    6 min 10 s of the time budget left"."""
    phase = progress.phase
    parts = [phase_name(phase) or "Working"]
    stage = STAGE_NAMES.get(progress.anytime_stage)
    if stage is not None:
        parts[0] = f"{stage}: {parts[0]}"
    if phase == "head" and progress.epochs:
        parts.append(f"step {progress.epoch} of {progress.epochs}")
    elif phase in EPOCH_PHASES and progress.epochs:
        parts.append(f"epoch {progress.epoch} of {progress.epochs}")
    elif progress.total:
        parts.append(f"{progress.done:,} of {progress.total:,}")
    rate = format_rate(progress.images_per_s)
    if rate:
        parts.append(rate)
    if progress.eta_s is not None:
        parts.append(f"about {format_duration(progress.eta_s)} left")
    if progress.budget_left_s is not None:
        parts.append(f"{format_duration(progress.budget_left_s)} of the time budget left")
    return " · ".join(parts)


def summary_text(done: TrainingDone) -> str:
    """The summary of a finished training, from the trainer's last report."""
    scores = [
        f"{name} accuracy {format_percent(done.metrics[split].get('accuracy'))}"
        for split, name in (("val", "validation"), ("test", "test"))
        if split in done.metrics
    ]
    text = f"{done.model_version or 'The new model'} is ready and is now the active model"
    text += ": " + ", ".join(scores) + "." if scores else "."
    if done.metrics.get("val", {}).get("augmented_views"):
        text += f" {AUGMENTED_VIEWS_NOTE}"
    if done.duration_s is not None:
        text += f" Trained in {format_duration(done.duration_s)}"
        text += f" on {done.device}." if done.device else "."
    if done.skipped:
        one = len(done.skipped) == 1
        text += (
            f" {len(done.skipped)} image{'' if one else 's'} could not be read and "
            f"{'was' if one else 'were'} left out."
        )
    if done.note:
        text += f" {done.note}"
    return text
