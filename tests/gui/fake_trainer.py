"""A stand-in for the ``linnaeus`` command line in GUI tests: no TensorFlow, fast.

Run as ``python fake_trainer.py COMMAND ...`` with the arguments the GUI gives
``linnaeus``:
- ``train --project P --json-progress [--model M] [--epochs N] [--resume]``
  (and every other flag of the real ``train``, parsed by the same
  `engine.cli.protocol` table) prints progress lines made by the protocol's
  encoder, as engine/cli/train.py does (decode, then epochs of batches with
  loss/accuracy and, at each epoch's end, validation figures), registers a
  finished model version with predictions in the project (when P is a
  project) and ends with a `TrainingDone` line. SIGTERM ends it as the real
  one does: a `TrainingCancelled` line and exit status 130.
- ``export --project P --out F.onnx [--int8] --json`` writes a tiny real ONNX
  model (tests/onnx_factory.py) for the project's classes and prints the JSON
  (with ``crash`` or ``error`` it fails as an install without TensorFlow would;
  ``slow-export`` takes 10 s);
- ``report --project P --out F.html --json`` writes a small HTML file.
Train and export hold the project's lock as the real commands do, and fail
with the busy line when another process holds it.
``--behaviour`` (test only) makes it misbehave: ``crash`` (a traceback after the
first epoch), ``error`` (an error line, as for too few labels), ``noise``
(non-JSON lines and JSON lines split across writes), ``slow`` (long batches),
``stubborn`` (ignores SIGTERM, so only a kill stops it).

Imported by tests: `fake_command` makes the GUI's runners start this script
instead of ``linnaeus``; `add_trained_version` gives a project a finished
model version with known predictions, as training would leave it.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from linnaeus.engine.cli.protocol import JSON_PROGRESS_FLAG
from linnaeus.engine.cli.protocol import PROJECT_FLAG
from linnaeus.engine.cli.protocol import RESUME_FLAG
from linnaeus.engine.cli.protocol import TRAIN_COMMAND
from linnaeus.engine.cli.protocol import TrainingCancelled
from linnaeus.engine.cli.protocol import TrainingDone
from linnaeus.engine.cli.protocol import TrainingEnd
from linnaeus.engine.cli.protocol import TrainingFailed
from linnaeus.engine.cli.protocol import add_train_flags
from linnaeus.engine.cli.protocol import encode
from linnaeus.engine.progress import Progress
from linnaeus.engine.progress import TrainingProgress
from linnaeus.engine.project.versions import CHECKPOINT_FILE

ROOT = Path(__file__).resolve().parents[2]
BATCHES = 4
EPOCHS = 3  # when --epochs is not given
CANCELLED = 130


def emit_json(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def emit(event: Progress | TrainingEnd) -> None:
    """Print one line of the training protocol."""
    emit_json(encode(event))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="linnaeus")
    parser.add_argument("command", choices=(TRAIN_COMMAND, "export", "report"))
    parser.add_argument(PROJECT_FLAG, type=Path, required=True)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--behaviour",
        default="ok",
        choices=("ok", "crash", "error", "noise", "slow", "stubborn", "slow-export"),
    )
    if argv[:1] == [TRAIN_COMMAND]:
        add_train_flags(parser)  # the real trainer's flags, refused as it would
        parser.add_argument(JSON_PROGRESS_FLAG, action="store_true")
        parser.add_argument(RESUME_FLAG, action="store_true")
        return holding_lock(parser.parse_args(argv), "training", train)
    parser.add_argument("--model")  # a model version
    parser.add_argument("--out", type=Path)
    parser.add_argument("--int8", action="store_true")
    args, _ = parser.parse_known_args(argv)  # the real exporter's other options are accepted
    return holding_lock(args, "exporting", export) if args.command == "export" else report(args)


def holding_lock(
    args: argparse.Namespace, what: str, run: Callable[[argparse.Namespace], int]
) -> int:
    """Run a command that writes to the project under its lock, as the real ones do,
    and fail as they do when another process holds it (after half a second)."""
    if not (args.project / "linnaeus.db").is_file():
        return run(args)
    from linnaeus.engine.errors import ProjectBusyError
    from linnaeus.engine.project import lock

    try:
        with lock.hold(args.project, what, wait_s=0.5):
            return run(args)
    except ProjectBusyError as busy:
        if args.command == TRAIN_COMMAND:
            emit(TrainingFailed(str(busy), busy=True))
        print(f"linnaeus: error: {busy}", file=sys.stderr)
        return 1


def train(args: argparse.Namespace) -> int:
    stop = {"requested": False}

    def on_term(signum: int, frame: object) -> None:
        stop["requested"] = True

    ignore = args.behaviour == "stubborn"
    signal.signal(signal.SIGTERM, signal.SIG_IGN if ignore else on_term)
    if args.behaviour == "error":
        emit(TrainingFailed("These classes have no training images: square."))
        print("linnaeus: error: These classes have no training images: square.", file=sys.stderr)
        return 1
    pause = {"slow": 0.25, "stubborn": 0.25}.get(args.behaviour, 0.01)
    for done in (10, 20):
        emit(Progress("decode", done, 20, f"Prepared {done} of 20"))
        time.sleep(pause)
    if args.behaviour == "noise":
        print("WARNING: a library says something on stdout", flush=True)
        line = json.dumps(encode(Progress("decode", 20, 20, "split")))
        sys.stdout.write(line[:20])
        sys.stdout.flush()
        time.sleep(0.05)
        sys.stdout.write(line[20:] + "\n[1, 2, 3]\n\n")
        sys.stdout.flush()
    project = FakeProject.open(args.project, args.model, args.resume)
    epochs = args.epochs or EPOCHS
    start = time.monotonic()
    val: dict[str, float | None] = {"val_loss": None, "val_accuracy": None}
    for epoch in range(1, epochs + 1):
        for batch in range(1, BATCHES + 1):
            time.sleep(pause)
            if stop["requested"]:
                project.finish("cancelled")
                emit(TrainingCancelled("Training cancelled; resume it."))
                print("linnaeus: cancelled; everything saved before stays saved.", file=sys.stderr)
                return CANCELLED
            emit(progress(epoch, epochs, batch, start, val))
        if args.behaviour == "crash":
            raise RuntimeError("simulated out of memory in the trainer")
        val = {"val_loss": 1.0 / (epoch + 1) + 0.1, "val_accuracy": 0.55 + 0.4 * epoch / epochs}
        emit(progress(epoch, epochs, BATCHES, start, val))
        project.checkpoint()
    version = project.finish("done")
    emit(
        TrainingDone(
            model_version=version,
            model=args.model,
            classes=("disk", "square"),
            duration_s=time.monotonic() - start,
            device="CPU (fake)",
            decoded=20,
            metrics={
                "train": {"images": 56, "accuracy": 0.98, "loss": 0.05},
                "val": {"images": 12, "accuracy": 0.92, "loss": 0.2},
                "test": {"images": 12, "accuracy": 0.9, "loss": 0.25},
            },
        )
    )
    return 0


def progress(
    epoch: int, epochs: int, batch: int, start: float, val: dict[str, float | None]
) -> TrainingProgress:
    step = (epoch - 1) * BATCHES + batch
    elapsed = max(time.monotonic() - start, 1e-3)
    return TrainingProgress(
        stage="train",
        done=step,
        total=epochs * BATCHES,
        message=f"train: epoch {epoch}/{epochs}",
        phase="train",
        epoch=epoch,
        epochs=epochs,
        batch=batch,
        batches=BATCHES,
        loss=1.0 / (step / BATCHES + 1),
        accuracy=0.5 + 0.45 * step / (epochs * BATCHES),
        images_per_s=32 * step / elapsed,
        eta_s=(epochs * BATCHES - step) * elapsed / step,
        **val,
    )


class FakeProject:
    """The model version a run leaves in the project, as the real trainer does:
    registered in state "training", a checkpoint file each epoch, then "done" with
    plausible predictions (and active), or "cancelled"."""

    def __init__(self, store: Any, version: Any) -> None:
        self.store, self.version = store, version

    @classmethod
    def open(cls, project: Path, model: str, resume: bool) -> FakeProject:
        if not (project / "linnaeus.db").is_file():
            return cls(None, None)
        sys.path.insert(0, str(ROOT))
        from linnaeus.engine.project import versions
        from linnaeus.engine.project.store import ProjectStore

        store = ProjectStore.open(project)
        if resume:
            unfinished = [v for v in versions.list_versions(store) if v.status != "done"]
            return cls(store, unfinished[0])
        classes = [c.name for c in store.classes()]
        images = [i for i in store.images(status="ok") if i.label in classes and i.split]
        labels = {i.id: (classes.index(i.label), str(i.split)) for i in images}
        version = versions.create_version(
            store,
            kind=model,
            config={"model": model},
            augmentation={},
            classes=classes,
            labels=labels,
        )
        return cls(store, version)

    def checkpoint(self) -> None:
        if self.version is not None:
            (self.version.folder / CHECKPOINT_FILE).write_bytes(b"fake")

    def finish(self, status: str) -> str:
        if self.store is None:
            return "v1"
        import numpy as np

        from linnaeus.engine.project import predictions
        from linnaeus.engine.project import versions

        version, store = self.version, self.store
        if status == "done":
            ids = sorted(versions.label_snapshot(store, version.id))
            labels = [versions.label_snapshot(store, version.id)[i][0] for i in ids]
            rng = np.random.default_rng(version.id)
            probabilities = rng.dirichlet(np.ones(len(version.classes)), len(ids))
            probabilities[np.arange(len(ids)), labels] += 2.0  # mostly right
            probabilities /= probabilities.sum(axis=1, keepdims=True)
            predictions.save_predictions(store, version.id, ids, probabilities)
            metrics = {
                "val": {"images": 12, "accuracy": 0.92, "loss": 0.2},
                "test": {"images": 12, "accuracy": 0.9, "loss": 0.25},
            }
            versions.update_version(
                store,
                version.id,
                status="done",
                metrics=metrics,
                duration_s=1.5,
                device="CPU (fake)",
            )
            versions.set_active(store, version.id)
        else:
            versions.update_version(store, version.id, status=status, duration_s=0.5)
        store.close()
        return str(version.name)


def export(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT))
    from linnaeus.engine.project.store import ProjectStore
    from tests.onnx_factory import make_model

    if args.behaviour in ("crash", "error"):
        print(
            "linnaeus: error: Exporting needs TensorFlow, which is not installed.", file=sys.stderr
        )
        return 1
    with ProjectStore.open(args.project) as store:
        classes = [c.name for c in store.classes()]
    time.sleep(10 if args.behaviour == "slow-export" else 0.1)
    make_model(args.out, classes)
    emit_json(
        {
            "model_version": "v1",
            "onnx": str(args.out),
            "keras": "model.keras",
            "max_abs_difference": 2.4e-7,
            "images_checked": 32,
            "int8": args.int8,
            "int8_accuracy_change": -0.004 if args.int8 else None,
            "size_bytes": args.out.stat().st_size,
            "seconds": 0.1,
        }
    )
    return 0


def report(args: argparse.Namespace) -> int:
    args.out.write_text("<html><body>Model card</body></html>", encoding="utf-8")
    emit_json({"report": str(args.out), "model_version": "v1"})
    return 0


def add_trained_version(store: Any, wrong: int = 2) -> Any:
    """A finished, active version whose predictions are right except for the first
    ``wrong`` images of the first class in each split (predicted as the second class)."""
    import numpy as np

    from linnaeus.engine.project import predictions
    from linnaeus.engine.project import versions

    classes = [c.name for c in store.classes()]
    images = [i for i in store.images(status="ok") if i.label in classes]
    labels = {i.id: (classes.index(i.label), i.split) for i in images}
    version = versions.create_version(
        store, kind="quick", config={}, augmentation={}, classes=classes, labels=labels
    )
    probabilities = np.full((len(images), len(classes)), 0.1 / (len(classes) - 1), np.float32)
    seen: dict[str, int] = {}
    for row, image in enumerate(images):
        label = classes.index(image.label)
        if label == 0:
            seen[image.split] = seen.get(image.split, 0) + 1
        mistaken = label == 0 and seen[image.split] <= wrong
        target = 1 if mistaken else label
        # spread the right scores; the mistakes are the most confident of all, so the
        # threshold chosen on validation (two classes) decides them as the argmax does
        probabilities[row, target] = 1.5 if mistaken else 0.9 - 0.05 * (row % 5)
        probabilities[row] /= probabilities[row].sum()
    predictions.save_predictions(store, version.id, [i.id for i in images], probabilities)
    versions.update_version(store, version.id, status="done", metrics={})
    versions.set_active(store, version.id)
    return versions.get_version(store, version.id)


def fake_command(*extra: str) -> Callable[[Sequence[str]], tuple[str, list[str]]]:
    """A command factory for the GUI's runners that starts this script instead of
    ``linnaeus``, with ``extra`` arguments (e.g. "--behaviour", "crash")."""

    def command(arguments: Sequence[str]) -> tuple[str, list[str]]:
        return sys.executable, [str(Path(__file__).resolve()), *arguments, *extra]

    return command


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
