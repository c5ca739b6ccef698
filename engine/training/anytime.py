"""The default training, anytime: the quick model first, then a better one within a
time budget the user sets (``linnaeus train --budget 10m``, the window's budget field).

1. The quick model (`quick`: a new last layer on cached backbone features) is
   trained and becomes the active version: usable within seconds.
2. When the data and the time left allow (`fine_tune_refusal` says why not, in
   words), the `accurate` recipe fine-tunes the backbone within what is left of
   the budget: `engine.training.deadline` starts no epoch that cannot end in time
   and keeps the best epoch.
3. The fine-tuned version becomes the active one only if it is
   `better_on_validation` than the quick one (the one rule).

Cancel keeps the best so far: during the quick model it cancels as any training
does; during fine-tuning the quick version stays active, and a fine-tuning with
at least one whole epoch is measured and kept if it is better on validation, else
marked cancelled (Resume continues it).

TensorFlow loads only when a training starts (`train`), as there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import replace
from typing import Any

from linnaeus.engine.errors import Cancelled
from linnaeus.engine.errors import OutOfTime
from linnaeus.engine.progress import FINE_TUNE_STAGE
from linnaeus.engine.progress import QUICK_STAGE
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import Progress
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import TrainingProgress
from linnaeus.engine.progress import duration_words
from linnaeus.engine.progress import ignore_progress
from linnaeus.engine.project import lock as project_lock
from linnaeus.engine.project import versions
from linnaeus.engine.project.image_files import readable_images
from linnaeus.engine.project.store import SPLITS
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.versions import ModelVersion
from linnaeus.engine.training.config import TrainConfig
from linnaeus.engine.training.config import budget_text

# Fine-tuning is tried only with this much data (below, it rarely beats the quick
# model and a validation split this small cannot tell them apart) and time left.
MIN_TRAIN_IMAGES = 100
MIN_VAL_IMAGES = 20
MIN_FINE_TUNE_S = 60.0


@dataclass(frozen=True)
class AnytimeResult:
    """The end of an anytime training: ``result`` is the active version's (a
    `train.TrainResult`), ``quick`` the first version trained (the quick model, or the
    from-scratch one where no ImageNet weights exist), ``note`` says in words what
    happened after it."""

    result: Any
    quick: ModelVersion
    fine_tuned: ModelVersion | None
    note: str


def better_on_validation(candidate: Mapping[str, Any], incumbent: Mapping[str, Any]) -> bool:
    """The rule that makes a fine-tuned version replace the quick one (``candidate``
    and ``incumbent``: their validation figures, as stored with each version): a
    higher accuracy at the model's own decisions on the validation split, or the
    same accuracy with a lower validation loss."""
    new, old = candidate.get("accuracy"), incumbent.get("accuracy")
    if new is None or old is None:
        return False
    if new != old:
        return bool(new > old)
    new_loss, old_loss = candidate.get("loss"), incumbent.get("loss")
    return new_loss is not None and old_loss is not None and new_loss < old_loss


def fine_tune_refusal(quick: ModelVersion, seconds_left: float, budget_s: float) -> str | None:
    """Why fine-tuning is not tried after ``quick`` (in words), or None to try it."""
    if budget_s <= 0:
        return "No time budget: the quick model only."
    figures = quick.metrics
    if figures.get("val", {}).get("augmented_views"):
        return (
            "Fine-tuning was not tried: the classes are too small for a validation split, "
            "so a fine-tuned model could not be judged on images it never trained on."
        )
    train_images = figures.get("train", {}).get("images", 0)
    val_images = figures.get("val", {}).get("images", 0)
    if train_images < MIN_TRAIN_IMAGES or val_images < MIN_VAL_IMAGES:
        return (
            f"Fine-tuning was not tried: it needs at least {MIN_TRAIN_IMAGES} training and "
            f"{MIN_VAL_IMAGES} validation images to pay off and to be judged; this project "
            f"has {train_images} and {val_images}."
        )
    if seconds_left < MIN_FINE_TUNE_S:
        return (
            f"Fine-tuning was not tried: {duration_words(seconds_left)} of the "
            f"{budget_text(budget_s)} time budget were left after the quick model; "
            f"give it at least {MIN_FINE_TUNE_S:.0f} s more to fine-tune."
        )
    return None


@project_lock.holding_lock("training")
def train_anytime(
    store: ProjectStore,
    config: TrainConfig = TrainConfig(),  # noqa: B008 (frozen: safe to share)
    *,
    budget_s: float,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> AnytimeResult:
    """The quick model, then (data and time allowing) a fine-tuned one within
    ``budget_s`` seconds from now, made active only if better on validation;
    holds the project's lock throughout. Without ImageNet weights, ``config``'s
    ``auto`` trains from scratch, once."""
    from linnaeus.engine.training.train import train

    deadline = clock() + budget_s
    if config.resolved().model != "quick":  # no ImageNet weights: the from-scratch default
        alone = train(store, config, on_progress=on_progress, cancel=cancel)
        return AnytimeResult(alone, alone.version, None, "")
    quick = train(store, replace(config, model="quick"), cancel=cancel,
                  on_progress=_staged(on_progress, QUICK_STAGE, deadline, clock))  # fmt: skip
    refusal = fine_tune_refusal(quick.version, deadline - clock(), budget_s)
    if refusal is not None:
        return AnytimeResult(quick, quick.version, None, refusal)
    report = _staged(on_progress, FINE_TUNE_STAGE, deadline, clock)
    report(_ready(quick.version, deadline - clock()))
    stop = _deadline(store, quick.version, config, deadline, cancel, clock)
    try:
        fine = train(store, replace(config, model="accurate"), on_progress=report,
                     cancel=stop.run_cancel, callbacks=[stop], activate=False)  # fmt: skip
    except Cancelled:
        note = f"Fine-tuning was cancelled; {_named(quick.version)} stays the active model."
        return AnytimeResult(quick, quick.version, None, note)
    except OutOfTime as error:
        _mark_stopped(store, str(error))
        note = f"{error} {_named(quick.version)} stays the active model."
        return AnytimeResult(quick, quick.version, None, note)
    from linnaeus.engine.training.deadline import STOPPED_AT_DEADLINE

    chosen = _choose(store, quick, fine, cancelled=stop.stopped_on_cancel)
    if stop.stopped != STOPPED_AT_DEADLINE:
        return chosen
    held = f" The time budget held {stop.epochs_done} of the {stop.params['epochs']} " \
           "fine-tuning epochs; a longer budget may give a better model."  # fmt: skip
    return replace(chosen, note=chosen.note + held)


def _deadline(
    store: ProjectStore,
    quick: ModelVersion,
    config: TrainConfig,
    deadline: float,
    cancel: CancelToken | None,
    clock: Callable[[], float],
) -> Any:
    """The fine-tuning's `Deadline` callback: after training, the run predicts every
    readable image and each split's images again."""
    from linnaeus.engine.training.deadline import Deadline

    labelled = sum(quick.metrics.get(split, {}).get("images", 0) for split in SPLITS)
    return Deadline(
        deadline,
        images_after=len(readable_images(store)) + labelled,
        batch_size=config.batch_size,
        val_images=quick.metrics.get("val", {}).get("images", 0),
        cancel=cancel,
        clock=clock,
    )


def _choose(store: ProjectStore, quick: Any, fine: Any, *, cancelled: bool) -> AnytimeResult:
    """Make the fine-tuned version active if it is better on validation."""
    old, new = quick.version, fine.version
    compared = _compared(new, old)
    if better_on_validation(new.metrics.get("val", {}), old.metrics.get("val", {})):
        versions.set_active(store, new.id)
        kept = " (cancelled: its best epoch so far)" if cancelled else ""
        note = f"{_named(new)}{kept} is better on validation than {_named(old)} " \
               f"({compared}) and is now the active model."  # fmt: skip
        return AnytimeResult(fine, old, new, note)
    if cancelled:  # as any cancelled training: Resume continues it
        versions.update_version(store, new.id, status="cancelled")
        note = f"Fine-tuning was cancelled and its best epoch so far is not better on " \
               f"validation ({compared}); {_named(old)} stays the active model."  # fmt: skip
    else:
        note = f"{_named(new)} is not better on validation than {_named(old)} " \
               f"({compared}); {_named(old)} stays the active model."  # fmt: skip
    return AnytimeResult(quick, old, new, note)


def _compared(new: ModelVersion, old: ModelVersion) -> str:
    """E.g. "validation accuracy 93.1% against 91.0%"; with the losses on a tie."""
    a, b = new.metrics.get("val", {}), old.metrics.get("val", {})
    if a.get("accuracy") is None or b.get("accuracy") is None:
        return "no validation figures"
    text = f"validation accuracy {a['accuracy']:.1%} against {b['accuracy']:.1%}"
    if a["accuracy"] == b["accuracy"] and a.get("loss") is not None and b.get("loss") is not None:
        text += f", validation loss {a['loss']:.3g} against {b['loss']:.3g}"
    return text


def _named(version: ModelVersion) -> str:
    return f"{version.name} ({'fine-tuned' if version.kind == 'accurate' else version.kind})"


def _mark_stopped(store: ProjectStore, message: str) -> None:
    """The fine-tuning the budget stopped in its first epoch: cancelled, not failed."""
    latest = versions.list_versions(store)[0]
    if latest.kind == "accurate" and latest.status == "failed":
        versions.update_version(store, latest.id, status="cancelled", error=message[:500])


def _ready(quick: ModelVersion, seconds_left: float) -> TrainingProgress:
    """The report that the quick model is ready and active, and fine-tuning starts."""
    return TrainingProgress(
        stage=FINE_TUNE_STAGE,
        done=0,
        total=0,
        phase="fine-tune",
        message=f"{_named(quick)} is ready and is the active model; fine-tuning for at most "
        f"{duration_words(seconds_left)}.",
        model_ready=quick.name,
    )


def _staged(
    on_progress: ProgressCallback, stage: str, deadline: float, clock: Callable[[], float]
) -> ProgressCallback:
    """``on_progress`` with each report saying its stage and the time budget left."""

    def report(progress: Progress) -> None:
        if not isinstance(progress, TrainingProgress):
            progress = TrainingProgress(**asdict(progress), phase=progress.stage)
        left = max(deadline - clock(), 0.0)
        on_progress(replace(progress, anytime_stage=stage, budget_left_s=left))

    return report
