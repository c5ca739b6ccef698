"""What ``linnaeus`` says to programs: JSON lines, and the training protocol.

Every ``--json`` and ``--json-progress`` output is one JSON object per line,
written by `print_json` (what it prints for people is in `output`).

The GUI runs training as a child process: it builds the command line with
`train_arguments`, and the child prints one JSON object per line, each made by
`encode` from a typed event; the GUI turns each line back into that event with
`decode`. Both sides import this module (TensorFlow-free), so a flag name, a
line's key or a phase name exists in one place only.

Lines: `TrainingProgress` reports (any number, ``phase`` one of
`engine.progress.TRAINING_PHASES`), then exactly one of `TrainingDone`,
`TrainingFailed` or `TrainingCancelled`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from dataclasses import fields
from pathlib import Path
from typing import Any

from linnaeus.engine.errors import TrainingError
from linnaeus.engine.images.augment import load_augmentation
from linnaeus.engine.images.preprocess import RESIZE_POLICIES
from linnaeus.engine.progress import Progress
from linnaeus.engine.progress import TrainingProgress
from linnaeus.engine.training.config import DEFAULT_AUGMENTATION
from linnaeus.engine.training.config import DEFAULT_BUDGET
from linnaeus.engine.training.config import IMBALANCE_METHODS
from linnaeus.engine.training.config import MODEL_CHOICES
from linnaeus.engine.training.config import TrainConfig
from linnaeus.engine.training.config import parse_budget

log = logging.getLogger(__name__)

TRAIN_COMMAND = "train"
PROJECT_FLAG = "--project"  # the main parser's project option, shared by every command
JSON_PROGRESS_FLAG = "--json-progress"
RESUME_FLAG = "--resume"


def print_json(payload: object) -> None:
    """Print ``payload`` as one JSON object on one line of stdout, flushed at once.

    What every ``--json`` and ``--json-progress`` prints: a script reads one object,
    the GUI reads one object per line as the child process writes it.
    """
    sys.stdout.write(json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()


# -- the command line ---------------------------------------------------------

MODEL_HELP = (
    "auto (default: quick on the shipped ImageNet weights, then fine-tuning within --budget; "
    "small-resnet if the --backbone asked for has no weight file), quick (seconds: "
    "a new head on cached backbone features), accurate (fine-tunes the backbone), seed-cnn, "
    "small-resnet (from scratch), pretrain (autoencoder on your images, then from scratch)"
)
BUDGET_HELP = (
    "time budget of the default (auto) training, e.g. 90s, 10m, 1h: the quick model first "
    "(active within seconds), then fine-tuning within what is left of the budget, made the "
    "active model only if it is better on validation; 0 trains the quick model only "
    f"(default {DEFAULT_BUDGET})"
)
_CONFIG = TrainConfig()  # the trainer's defaults


def _flag(default: Any, kind: type, help: str = "", choices: tuple[str, ...] = ()) -> Any:
    """A `TrainOptions` field that is the flag ``--<name>`` of ``linnaeus train``."""
    return field(default=default, metadata={"kind": kind, "help": help, "choices": choices})


@dataclass(frozen=True)
class TrainOptions:
    """What ``linnaeus train`` takes as flags (one flag per field, ``--image-size`` for
    ``image_size``), with the trainer's defaults; None leaves the choice to the model
    (see `TrainConfig.resolved`). ``augment`` is a preset name or an Augmentation JSON file.
    """

    model: str = _flag(_CONFIG.model, str, MODEL_HELP, MODEL_CHOICES)
    backbone: str | None = _flag(
        None, str, "ImageNet backbone for quick/accurate, e.g. mobilenet_v2_0.5"
    )
    epochs: int | None = _flag(None, int, "maximum epochs (early stopping may end sooner)")
    image_size: int | None = _flag(None, int, "square input size in pixels")
    augment: str = _flag(DEFAULT_AUGMENTATION, str, "none, gentle, strong, or a JSON file")
    imbalance: str = _flag(_CONFIG.imbalance, str, choices=IMBALANCE_METHODS)
    batch_size: int = _flag(_CONFIG.batch_size, int)
    learning_rate: float | None = _flag(None, float)
    l1: float = _flag(_CONFIG.l1, float, "L1 weight penalty of the last layer")
    l2: float = _flag(_CONFIG.l2, float, "L2 weight penalty of the last layer")
    dropout: float = _flag(_CONFIG.dropout, float)
    activation: str = _flag(_CONFIG.activation, str, "activation of the seed CNN (elu, relu)")
    grayscale: bool = _flag(False, bool, "train on grayscale images")
    binarize: bool = _flag(_CONFIG.binarize, bool, "binarise images (Otsu threshold)")
    resize: str = _flag(_CONFIG.resize, str, choices=RESIZE_POLICIES)
    seed: int = _flag(_CONFIG.seed, int)
    positive: str | None = _flag(
        None, str, "two classes: the class the threshold must find (default: from the names)"
    )
    budget: str = _flag(DEFAULT_BUDGET, str, BUDGET_HELP)

    def __post_init__(self) -> None:
        parse_budget(self.budget)  # a budget that cannot be read is said now
        for option in fields(self):
            choices = option.metadata["choices"]
            value = getattr(self, option.name)
            if choices and value not in choices:
                raise TrainingError(
                    f"{_flag_name(option.name)} must be one of {', '.join(choices)}, not {value!r}."
                )

    @property
    def budget_s(self) -> float:
        """The time budget in seconds."""
        return parse_budget(self.budget)

    def config(self) -> TrainConfig:
        """The `TrainConfig` these options ask for (reads ``augment`` if it is a file)."""
        values = {option.name: getattr(self, option.name) for option in fields(self)}
        augment, grayscale = values.pop("augment"), values.pop("grayscale")
        values.pop("budget")  # the anytime run's, not one version's (`budget_s`)
        return TrainConfig(
            **values,
            channels=1 if grayscale else 3,
            augmentation=load_augmentation(augment),
        )


def _flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_train_flags(parser: argparse.ArgumentParser) -> None:
    """Add the flags of `TrainOptions` to ``parser`` (the ``train`` command)."""
    for option in fields(TrainOptions):
        meta = option.metadata
        if meta["kind"] is bool:
            parser.add_argument(
                _flag_name(option.name), action="store_true", help=meta["help"] or None
            )
        else:
            parser.add_argument(
                _flag_name(option.name),
                type=meta["kind"],
                default=option.default,
                choices=meta["choices"] or None,
                help=meta["help"] or None,
            )


def train_options(args: argparse.Namespace) -> TrainOptions:
    """The `TrainOptions` of parsed ``train`` arguments."""
    names = [option.name for option in fields(TrainOptions)]
    return TrainOptions(**{name: getattr(args, name) for name in names})


def train_arguments(project: Path, options: TrainOptions, *, resume: bool) -> list[str]:
    """The ``linnaeus`` arguments that train ``project`` with ``options`` and report
    in JSON lines; options left at their defaults are not spelled out. Resuming
    continues the interrupted run with its own stored settings, so ``options`` are
    then ignored."""
    arguments = [TRAIN_COMMAND, PROJECT_FLAG, str(project), JSON_PROGRESS_FLAG]
    if resume:
        return [*arguments, RESUME_FLAG]
    for option in fields(TrainOptions):
        value = getattr(options, option.name)
        if value == option.default:
            continue
        flag = _flag_name(option.name)
        arguments += [flag] if option.metadata["kind"] is bool else [flag, str(value)]
    return arguments


# -- the lines ----------------------------------------------------------------

PHASE = "phase"  # the key of every line: a training phase, or how the run ended
DONE = "done"
FAILED = "error"
CANCELLED = "cancelled"


@dataclass(frozen=True)
class TrainingDone:
    """The last line of a finished run: the new model version, now the active one."""

    model_version: str
    model: str = ""
    classes: tuple[str, ...] = ()
    metrics: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # split -> figures
    duration_s: float | None = None
    device: str = ""
    skipped: tuple[tuple[str, str], ...] = ()  # unreadable images: (path, reason)
    decoded: int = 0  # images decoded this run (the rest came from the cache)
    warnings: tuple[str, ...] = ()  # what the user should know of the figures (leaks)
    note: str = ""  # what the anytime training did after the quick model, in words


@dataclass(frozen=True)
class TrainingFailed:
    """The last line of a run that stopped on an error, in words for the user."""

    message: str
    busy: bool = False  # it did not start: another process is writing to the project


@dataclass(frozen=True)
class TrainingCancelled:
    """The last line of a cancelled run (its checkpoint lets it resume)."""

    message: str = ""


TrainingEnd = TrainingDone | TrainingFailed | TrainingCancelled
TrainingEvent = TrainingProgress | TrainingEnd
_ENDS: dict[str, type[TrainingEnd]] = {
    DONE: TrainingDone,
    FAILED: TrainingFailed,
    CANCELLED: TrainingCancelled,
}


def encode(event: Progress | TrainingEnd) -> dict[str, Any]:
    """The JSON object of one line. A plain `Progress` (e.g. decoding images) is sent
    as a training progress line whose phase is its stage."""
    if isinstance(event, Progress) and not isinstance(event, TrainingProgress):
        event = TrainingProgress(**asdict(event), phase=event.stage)
    if isinstance(event, TrainingProgress):
        return asdict(event)
    line = {PHASE: next(phase for phase, kind in _ENDS.items() if isinstance(event, kind))}
    line |= asdict(event)
    if isinstance(event, TrainingDone):
        line["classes"] = list(event.classes)
        line["warnings"] = list(event.warnings)
        line["metrics"] = {split: dict(figures) for split, figures in event.metrics.items()}
        line["skipped"] = [{"path": path, "reason": reason} for path, reason in event.skipped]
    return line


def decode(line: Mapping[str, Any]) -> TrainingEvent | None:
    """The event a line encodes, or None for a line that is not part of the protocol."""
    phase = line.get(PHASE)
    if not isinstance(phase, str):
        return None
    kind = _ENDS.get(phase, TrainingProgress)
    values = {f.name: line[f.name] for f in fields(kind) if f.name in line}
    if kind is TrainingProgress:
        values = {"stage": phase, "done": 0, "total": 0} | values
    elif kind is TrainingDone:
        values["classes"] = tuple(values.get("classes") or ())
        values["warnings"] = tuple(str(text) for text in values.get("warnings") or ())
        values["skipped"] = tuple(
            (str(item.get("path", "")), str(item.get("reason", "")))
            for item in values.get("skipped") or ()
        )
    try:
        return kind(**values)
    except TypeError as error:  # a required value is missing
        log.warning("ignoring a training line that does not fit the protocol: %s", error)
        return None
