"""``linnaeus train`` and ``linnaeus models``: training from the command line.

``train --json-progress`` prints one JSON object per line, made by
`engine.cli.protocol` (the GUI runs training as a child process and reads
them back with the same module); SIGTERM and
Ctrl+C cancel cleanly between batches, after a checkpoint is written.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from linnaeus.engine.cli.protocol import JSON_PROGRESS_FLAG
from linnaeus.engine.cli.protocol import RESUME_FLAG
from linnaeus.engine.cli.protocol import TRAIN_COMMAND
from linnaeus.engine.cli.protocol import TrainingCancelled
from linnaeus.engine.cli.protocol import TrainingDone
from linnaeus.engine.cli.protocol import TrainingFailed
from linnaeus.engine.cli.protocol import add_train_flags
from linnaeus.engine.cli.protocol import decode
from linnaeus.engine.cli.protocol import encode
from linnaeus.engine.cli.protocol import print_json
from linnaeus.engine.cli.protocol import train_options
from linnaeus.engine.evaluation.metrics import AUGMENTED_VIEWS_NOTE
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import Progress
from linnaeus.engine.project.store import SPLITS

if TYPE_CHECKING:
    from linnaeus.engine.training.train import TrainResult

WEIGHTS_HELP = (
    "MobileNetV2's ImageNet weights ship with Linnaeus; those of other backbones are looked for "
    "in $LINNAEUS_WEIGHTS, the Linnaeus data folder and the Keras cache (~/.keras/models); "
    "nothing is downloaded."
)


def add_commands(commands: Any, project_options: Any) -> None:
    """Register ``train`` and ``models`` on the main parser's subcommands."""
    sub = commands.add_parser(
        TRAIN_COMMAND,
        help="Train a model on the project's labels.",
        epilog=WEIGHTS_HELP,
        description="Train a classifier on the project's current labels and make it the "
        "active model version. The default trains the quick model first (active within "
        "seconds), then fine-tunes within the time budget (--budget) and makes the fine-tuned "
        "version active only if it is better on the validation split.",
    )
    sub.set_defaults(run=run_train)
    project_options(sub)
    add_train_flags(sub)
    sub.add_argument(
        RESUME_FLAG, action="store_true", help="continue the last interrupted training"
    )
    sub.add_argument(JSON_PROGRESS_FLAG, action="store_true", help="one JSON object per line")

    sub = commands.add_parser("models", help="List the project's model versions.")
    sub.set_defaults(run=run_models)
    project_options(sub)
    sub.add_argument("--activate", metavar="VERSION", help="make this version the active model")


def print_progress(progress: Progress) -> None:
    """An ``on_progress`` that prints each report as one JSON line on stdout."""
    print_json(encode(progress))


def _cancel_on_signals() -> CancelToken:
    token = CancelToken()

    def request_cancel(signum: int, frame: object) -> None:
        if token.cancelled:  # a second signal: stop now
            raise KeyboardInterrupt
        token.cancel()

    signal.signal(signal.SIGTERM, request_cancel)
    signal.signal(signal.SIGINT, request_cancel)
    return token


def run_train(args: argparse.Namespace) -> int:
    from linnaeus.engine.cli.output import ProgressBar
    from linnaeus.engine.errors import Cancelled
    from linnaeus.engine.errors import LinnaeusError
    from linnaeus.engine.errors import ProjectBusyError
    from linnaeus.engine.project.store import ProjectStore
    from linnaeus.engine.training.anytime import train_anytime
    from linnaeus.engine.training.config import TrainConfig
    from linnaeus.engine.training.train import train

    options = None if args.resume else train_options(args)
    config = TrainConfig() if options is None else options.config()
    cancel = _cancel_on_signals()
    lines = args.json_progress
    note = ""
    with ProjectStore.open(args.project) as store, ProgressBar(enabled=not args.json) as bar:
        on_progress = print_progress if lines else bar.update
        try:
            if options is not None and config.model == "auto":  # the default: anytime
                anytime = train_anytime(store, config, budget_s=options.budget_s,
                                        on_progress=on_progress, cancel=cancel)  # fmt: skip
                result, note = anytime.result, anytime.note
            else:
                result = train(
                    store, config, resume=args.resume, cancel=cancel, on_progress=on_progress
                )
        except Cancelled:
            if lines:
                print_json(encode(TrainingCancelled("Training cancelled; resume it.")))
            raise
        except LinnaeusError as error:
            if lines:
                busy = isinstance(error, ProjectBusyError)
                print_json(encode(TrainingFailed(str(error), busy=busy)))
            raise
    summary = training_summary(result, note)
    if lines or args.json:
        print_json(summary)
        return 0
    print_training(summary)
    return 0


def training_done(result: TrainResult, note: str = "") -> TrainingDone:
    """The final report of a training run (``note``: what an anytime training did
    after the quick model)."""
    version = result.version
    return TrainingDone(
        model_version=version.name,
        model=version.kind,
        classes=tuple(version.classes),
        metrics={split: version.metrics[split] for split in SPLITS if split in version.metrics},
        duration_s=version.duration_s,
        device=version.device,
        skipped=tuple(result.skipped),
        decoded=result.decoded,
        note=note,
    )


def training_summary(result: TrainResult, note: str = "") -> dict[str, Any]:
    """The final report of a training run, as printed by --json / --json-progress."""
    return encode(training_done(result, note))


def print_training(summary: Mapping[str, Any]) -> None:
    """The final report of a training run, in words (``summary``: `training_summary`'s)."""
    done = decode(summary)
    assert isinstance(done, TrainingDone)
    print(
        f"Trained {done.model_version} ({done.model}) on {done.device} "
        f"in {done.duration_s:.0f} s; it is now the active model."
    )
    for split, values in done.metrics.items():  # accuracy at the model's decisions
        print(
            f"  {split:5}  accuracy {values['accuracy']:.1%}  loss {values['loss']:.3f}  "
            f"({_counted_on(values)})"
        )
    if any(values.get("augmented_views") for values in done.metrics.values()):
        print(f"  {AUGMENTED_VIEWS_NOTE}")
    for path, reason in done.skipped:
        print(f"  skipped (unreadable): {path}: {reason}")
    if done.note:
        print(done.note)


def _counted_on(figures: Mapping[str, Any]) -> str:
    """What a split's figures were counted on, in words."""
    if figures.get("augmented_views"):
        return (
            f"{figures['images']} augmented views of {figures.get('training_images', '?')} "
            "training images"
        )
    return f"{figures['images']} images"


def run_models(args: argparse.Namespace) -> int:
    from linnaeus.engine.project import versions
    from linnaeus.engine.project.store import ProjectStore

    with ProjectStore.open(args.project) as store:
        if args.activate:
            versions.set_active(store, versions.parse_version(args.activate))
        active = versions.active_version(store)
        listed = versions.list_versions(store)
    rows = [
        {
            "version": v.name,
            "active": active is not None and v.id == active.id,
            "status": v.status,
            "model": v.kind,
            "created_at": v.created_at,
            "classes": v.classes,
            "metrics": v.metrics,
            "duration_s": v.duration_s,
            "device": v.device,
            "file": str(v.model_file),
            "error": v.error,
        }
        for v in listed
    ]
    if args.json:
        print_json({"models": rows})
        return 0
    if not rows:
        print("No models yet: train one with `linnaeus train --project ...`.")
    for row in rows:
        val = row["metrics"].get("val", {}).get("accuracy")
        test = row["metrics"].get("test", {}).get("accuracy")
        views = row["metrics"].get("val", {}).get("augmented_views")
        scores = "  ".join(
            f"{name} {value:.1%}"
            for name, value in (("val (augmented views)" if views else "val", val), ("test", test))
            if value is not None
        )
        mark = "*" if row["active"] else " "
        print(
            f"{mark} {row['version']:>4}  {row['status']:11}  {row['model']:12}  "
            f"{row['created_at'][:16]}  {scores}"
        )
    return 0
