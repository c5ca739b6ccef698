"""``linnaeus --self-test``: can this installation do the whole job, offline?

An installer is only done when the installed program works on a machine with
nothing else on it. The self-test runs the job end to end on a few generated
images in a temporary folder: the desktop window draws its start page
(offscreen, in a child process, so a Qt crash is reported rather than fatal),
onnxruntime and TensorFlow import, the ImageNet weights are found, a project is
created, a model trains for one epoch, is exported to ONNX and classifies new
images with onnxruntime alone. The packaging test runs it inside the installed
bundle; a user can run it to answer "does it work here?" for a support request.

Each step is timed; the first one that fails ends the run and is named.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from linnaeus.engine.errors import LinnaeusError

GUI_TIMEOUT_S = 180  # a cold start of a bundle from a slow disk takes a while
NEW_IMAGES_PER_CLASS = 2


class SelfTestFailed(LinnaeusError):
    """A step of the self-test failed; `step` names it."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"self-test failed at step {step!r}: {reason}")
        self.step = step
        self.reason = reason


@dataclass(frozen=True)
class StepResult:
    """One step that passed: its name, how long it took and what it found."""

    name: str
    seconds: float
    detail: str


class SelfTestRun:
    """The temporary folder of one run and what its steps have made so far."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.store = None  # the project (a ProjectStore) once created
        self.backbone: str | None = None
        self.version = None  # the trained ModelVersion
        self.onnx_path: Path | None = None


def gui_command(arguments: list[str]) -> list[str]:
    """``linnaeus ARGUMENTS`` run by this installation: a bundle is its own command
    line; otherwise this interpreter runs the CLI module (never another `linnaeus`
    found on PATH)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, *arguments]
    return [sys.executable, "-m", "linnaeus.engine.cli.main", *arguments]


def check_desktop(run: SelfTestRun) -> str:
    """The desktop window starts and draws its start page, offscreen."""
    screenshot = run.work_dir / "start-page.png"
    environment = os.environ | {"QT_QPA_PLATFORM": "offscreen"}
    try:
        finished = subprocess.run(
            gui_command(["gui", "--screenshot", str(screenshot)]),
            env=environment,
            capture_output=True,
            text=True,
            timeout=GUI_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise LinnaeusError(f"the window did not draw within {GUI_TIMEOUT_S} s") from None
    if finished.returncode != 0 or not screenshot.is_file():
        tail = " | ".join(finished.stderr.strip().splitlines()[-3:]) or "no message"
        raise LinnaeusError(f"the window exited with status {finished.returncode}: {tail}")
    import cv2

    image = cv2.imread(str(screenshot))
    if image is None:
        raise LinnaeusError(f"the window's screenshot {screenshot} is not a readable PNG")
    height, width = image.shape[:2]
    return f"start page drawn offscreen, {width}x{height} px"


def check_onnxruntime(run: SelfTestRun) -> str:
    import onnxruntime

    providers = ", ".join(onnxruntime.get_available_providers())
    return f"onnxruntime {onnxruntime.__version__} ({providers})"


def check_tensorflow(run: SelfTestRun) -> str:
    import keras
    import tensorflow

    return f"TensorFlow {tensorflow.__version__}, Keras {keras.__version__}"


def check_weights(run: SelfTestRun) -> str:
    from linnaeus.engine.training.backbones import available_backbones
    from linnaeus.engine.training.backbones import find_weights
    from linnaeus.engine.training.backbones import weight_search_dirs

    found = available_backbones()
    if not found:
        searched = ", ".join(str(d) for d in weight_search_dirs())
        return f"none found (searched {searched}); training a model from scratch"
    run.backbone = found[0]
    return f"{', '.join(found)}; using {find_weights(found[0])}"


def make_project(run: SelfTestRun) -> str:
    from linnaeus.engine.dataset.importer import import_images
    from linnaeus.engine.demo.images import make_demo_images
    from linnaeus.engine.project.store import ProjectStore

    images = run.work_dir / "images"
    made = make_demo_images(images, per_class=12, size=48, wrong_fraction=0.0, seed=0)
    run.store = ProjectStore.create(run.work_dir / "project", images)
    report = import_images(run.store)
    if report.unreadable or report.added != sum(made.counts.values()):
        raise LinnaeusError(f"imported {report.added} images, unreadable: {report.unreadable}")
    return f"{report.added} generated images of {len(made.counts)} classes imported"


def train_one_epoch(run: SelfTestRun) -> str:
    from linnaeus.engine.images.augment import PRESETS
    from linnaeus.engine.training.config import TrainConfig
    from linnaeus.engine.training.train import train

    small = {"epochs": 1, "batch_size": 16, "augmentation": PRESETS["none"]}
    if run.backbone:
        config = TrainConfig(model="quick", backbone=run.backbone, image_size=64, **small)
    else:
        config = TrainConfig(model="small-resnet", image_size=48, **small)
    result = train(run.store, config)
    run.version = result.version
    accuracy = result.version.metrics.get("val", {}).get("accuracy")
    shown = f", validation accuracy {accuracy:.2f}" if accuracy is not None else ""
    return f"model {config.model} trained for 1 epoch{shown}"


def export_model(run: SelfTestRun) -> str:
    from linnaeus.engine.onnx.export import export_onnx

    report = export_onnx(run.store, run.version, run.work_dir / "model.onnx", parity_images=8)
    run.onnx_path = report.path
    return (
        f"{report.size_bytes / 1e6:.1f} MB, largest difference from Keras "
        f"{report.max_abs_difference:.1e} on {report.images_checked} images"
    )


def classify(run: SelfTestRun) -> str:
    from linnaeus.engine.demo.images import make_demo_images
    from linnaeus.engine.onnx.inference import Classifier

    folder = run.work_dir / "new-images"
    made = make_demo_images(
        folder, per_class=NEW_IMAGES_PER_CLASS, size=48, wrong_fraction=0.0, seed=1
    )
    classifier = Classifier(run.onnx_path)
    predictions = list(classifier.classify_folder(folder))
    failed = [p for p in predictions if p.label is None]
    if failed or len(predictions) != sum(made.counts.values()):
        raise LinnaeusError(f"classified {len(predictions)} images, failures: {failed[:3]}")
    right = sum(p.label == p.path.split("/")[0] for p in predictions)
    return f"{len(predictions)} new images classified ({right} right) with {classifier.provider}"


Step = tuple[str, Callable[[SelfTestRun], str]]

STEPS: tuple[Step, ...] = (
    ("desktop window", check_desktop),
    ("onnxruntime", check_onnxruntime),
    ("TensorFlow", check_tensorflow),
    ("backbone weights", check_weights),
    ("project", make_project),
    ("train", train_one_epoch),
    ("export", export_model),
    ("classify", classify),
)


def run_self_test(
    *,
    work_dir: Path | None = None,
    on_step: Callable[[StepResult], None] = lambda result: None,
) -> list[StepResult]:
    """Run every step in `STEPS` in order, in ``work_dir`` (default: a temporary
    folder, removed afterwards); `on_step` hears of each passed step. Raises
    SelfTestFailed naming the first step that fails."""
    if work_dir is None:
        with tempfile.TemporaryDirectory(prefix="linnaeus-self-test-") as temporary:
            return run_self_test(work_dir=Path(temporary), on_step=on_step)
    run = SelfTestRun(work_dir)
    results = []
    try:
        for name, step in STEPS:
            started = time.perf_counter()
            try:
                detail = step(run)
            except Exception as error:  # any failure is the answer, not a crash
                reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
                raise SelfTestFailed(name, reason or type(error).__name__) from error
            results.append(StepResult(name, time.perf_counter() - started, detail))
            on_step(results[-1])
    finally:
        if run.store is not None:
            run.store.close()
    return results


def format_step(result: StepResult) -> str:
    """One line of the self-test's report: ``ok  <step>  <seconds>  <detail>``."""
    return f"  ok  {result.name:<17} {result.seconds:6.1f} s  {result.detail}"
