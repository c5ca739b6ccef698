"""``linnaeus train`` and ``linnaeus models``: training from the command line.

``train --json-progress`` prints one JSON object per line (the GUI runs
training as a child process and reads exactly these lines); SIGTERM and
Ctrl+C cancel cleanly between batches, after a checkpoint is written.
"""

from __future__ import annotations

import argparse
import signal
from dataclasses import asdict
from typing import Any

from linnaeus.engine.cli.output import print_json
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import Progress
from linnaeus.engine.progress import TrainingProgress

MODEL_HELP = (
    "auto (default: quick if ImageNet weights are installed, else small-resnet), quick (seconds: "
    "a new head on cached backbone features), accurate (fine-tunes the backbone), seed-cnn, "
    "small-resnet (from scratch), pretrain (autoencoder on your images, then from scratch)"
)
WEIGHTS_HELP = (
    "ImageNet weights are looked for in $LINNAEUS_WEIGHTS, the Linnaeus data folder and the "
    "Keras cache (~/.keras/models); nothing is downloaded."
)


def add_commands(commands: Any, project_options: Any) -> None:
    """Register ``train`` and ``models`` on the main parser's subcommands."""
    from linnaeus.engine.training.data import IMBALANCE_METHODS
    from linnaeus.engine.training.train import MODEL_CHOICES

    sub = commands.add_parser(
        "train",
        help="Train a model on the project's labels.",
        epilog=WEIGHTS_HELP,
        description="Train a classifier on the project's current labels and make it the "
        "active model version.",
    )
    sub.set_defaults(run=run_train)
    project_options(sub)
    sub.add_argument("--model", default="auto", choices=MODEL_CHOICES, help=MODEL_HELP)
    sub.add_argument(
        "--backbone", help="ImageNet backbone for quick/accurate, e.g. mobilenet_v2_0.5"
    )
    sub.add_argument("--epochs", type=int, help="maximum epochs (early stopping may end sooner)")
    sub.add_argument("--image-size", type=int, help="square input size in pixels")
    sub.add_argument("--augment", default="gentle", help="none, gentle, strong, or a JSON file")
    sub.add_argument("--imbalance", default="class-weights", choices=IMBALANCE_METHODS)
    sub.add_argument("--batch-size", type=int, default=32)
    sub.add_argument("--learning-rate", type=float)
    sub.add_argument("--l1", type=float, default=0.0, help="L1 weight penalty of the last layer")
    sub.add_argument("--l2", type=float, default=0.0, help="L2 weight penalty of the last layer")
    sub.add_argument("--dropout", type=float, default=0.2)
    sub.add_argument("--activation", default="elu", help="activation of the seed CNN (elu, relu)")
    sub.add_argument("--grayscale", action="store_true", help="train on grayscale images")
    sub.add_argument("--binarize", action="store_true", help="binarise images (Otsu threshold)")
    sub.add_argument("--resize", default="stretch", choices=("stretch", "pad"))
    sub.add_argument("--seed", type=int, default=0)
    sub.add_argument("--resume", action="store_true", help="continue the last interrupted training")
    sub.add_argument("--json-progress", action="store_true", help="one JSON object per line")

    sub = commands.add_parser("models", help="List the project's model versions.")
    sub.set_defaults(run=run_models)
    project_options(sub)
    sub.add_argument("--activate", metavar="VERSION", help="make this version the active model")


def _config(args: argparse.Namespace) -> Any:
    from linnaeus.engine.images.augment import load_augmentation
    from linnaeus.engine.training.train import TrainConfig

    return TrainConfig(
        model=args.model,
        backbone=args.backbone,
        epochs=args.epochs,
        image_size=args.image_size,
        channels=1 if args.grayscale else 3,
        resize=args.resize,
        binarize=args.binarize,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        augmentation=load_augmentation(args.augment),
        imbalance=args.imbalance,
        l1=args.l1,
        l2=args.l2,
        dropout=args.dropout,
        activation=args.activation,
        seed=args.seed,
    )


class JsonLines:
    """An ``on_progress`` that prints each report as one JSON line on stdout."""

    def update(self, progress: Progress) -> None:
        if isinstance(progress, TrainingProgress):
            line = asdict(progress)
            line.pop("stage")
        else:
            line = {
                "phase": progress.stage,
                "done": progress.done,
                "total": progress.total,
                "message": progress.message,
            }
        print_json(line)


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
    from linnaeus.engine.project.store import ProjectStore
    from linnaeus.engine.training.train import train

    config = None if args.resume else _config(args)
    cancel = _cancel_on_signals()
    lines = JsonLines() if args.json_progress else None
    with ProjectStore.open(args.project) as store, ProgressBar(enabled=not args.json) as bar:
        try:
            result = train(
                store,
                config or _default_config(),
                resume=args.resume,
                cancel=cancel,
                on_progress=lines.update if lines else bar.update,
            )
        except Cancelled:
            if lines:
                print_json({"phase": "cancelled", "message": "Training cancelled; resume it."})
            raise
        except LinnaeusError as error:
            if lines:
                print_json({"phase": "error", "message": str(error)})
            raise
    summary = training_summary(result)
    if lines or args.json:
        print_json(summary)
        return 0
    print_training(summary)
    return 0


def training_summary(result: Any) -> dict[str, Any]:
    """The final report of a training run, as printed by --json / --json-progress."""
    version = result.version
    return {
        "phase": "done",
        "model_version": version.name,
        "model": version.kind,
        "classes": version.classes,
        "metrics": version.metrics,
        "duration_s": version.duration_s,
        "device": version.device,
        "skipped": [{"path": p, "reason": r} for p, r in result.skipped],
        "decoded": result.decoded,
    }


def _default_config() -> Any:
    from linnaeus.engine.training.train import TrainConfig

    return TrainConfig()


def print_training(summary: dict[str, Any]) -> None:
    print(
        f"Trained {summary['model_version']} ({summary['model']}) on {summary['device']} "
        f"in {summary['duration_s']:.0f} s; it is now the active model."
    )
    for split, values in summary["metrics"].items():
        print(
            f"  {split:5}  accuracy {values['accuracy']:.1%}  loss {values['loss']:.3f}  "
            f"({values['images']} images)"
        )
    for item in summary["skipped"]:
        print(f"  skipped (unreadable): {item['path']}: {item['reason']}")


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
        scores = "  ".join(
            f"{name} {value:.1%}"
            for name, value in (("val", val), ("test", test))
            if value is not None
        )
        mark = "*" if row["active"] else " "
        print(
            f"{mark} {row['version']:>4}  {row['status']:9}  {row['model']:12}  "
            f"{row['created_at'][:16]}  {scores}"
        )
    return 0
