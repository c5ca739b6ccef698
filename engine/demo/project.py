"""The built-in demo project: generated images, imported, ready to explore.

`run_demo` is what ``linnaeus demo`` (and the README's first command) runs.
It is idempotent: run again, it re-imports the same images instead of failing.
The images go beside the project folder (``demo-project-images`` beside
``demo-project``), never inside it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import replace
from pathlib import Path
from typing import Any

from linnaeus.engine.dataset.importer import ImportOptions
from linnaeus.engine.dataset.importer import ImportReport
from linnaeus.engine.dataset.importer import import_images
from linnaeus.engine.demo.images import make_demo_images
from linnaeus.engine.errors import ProjectError
from linnaeus.engine.evaluation.label_issues import version_label_issues
from linnaeus.engine.evaluation.version import version_relabel_queue
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import ignore_progress
from linnaeus.engine.project import lock as project_lock
from linnaeus.engine.project import versions
from linnaeus.engine.project.store import DATABASE_NAME
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.training.config import TrainConfig
from linnaeus.engine.training.train import TrainResult
from linnaeus.engine.training.train import train

NEW_IMAGES_FOLDER = "new-images"  # a fresh folder the exported model classifies
DEMO_IMAGE_SIZE = 96
_MISLABELLED_KEY = "demo_mislabelled"
_OLD_IMAGES_FOLDER = "images"  # where the demo kept its images inside the project, once


@dataclass(frozen=True)
class DemoResult:
    """The demo project, what is known about its images, and its trained model."""

    project_dir: Path
    report: ImportReport
    mislabelled: list[dict[str, str]]  # path, true class, folder label
    training: TrainResult | None
    found: list[dict[str, str]]  # wrong labels the relabel queue puts first, with the suggestion
    shipped: dict[str, Any] | None  # the exported model, report and new-folder classification


def demo_images_dir(project_dir: Path) -> Path:
    """Where the demo project's images go: beside it, as ``<project>-images``
    (an image folder is never inside its project folder)."""
    project_dir = project_dir.absolute()
    return project_dir.with_name(f"{project_dir.name}-images")


def run_demo(
    project_dir: Path,
    *,
    per_class: int = 80,
    seed: int = 0,
    train_model: bool = True,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> DemoResult:
    """Make (or refresh) the demo project in ``project_dir``: images in
    `demo_images_dir`, imported with a fixed split, and (``train_model``) a
    model trained on them with the default choice; all under the project's lock."""
    project_dir = project_dir.absolute()
    _refuse_old_layout(project_dir)
    try:
        project_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ProjectError(f"Cannot create the project folder {project_dir}: {error}") from None
    with project_lock.hold(project_dir, "building the demo project"):
        store = _demo_store(project_dir, per_class, seed, on_progress, cancel)
        with store:
            report = import_images(
                store, ImportOptions(seed=seed), on_progress=on_progress, cancel=cancel
            )
            mislabelled = json.loads(store.meta(_MISLABELLED_KEY) or "[]")
            training = None
            if train_model:
                config = TrainConfig(seed=seed).resolved()
                if config.model not in ("quick", "accurate"):
                    config = replace(config, image_size=DEMO_IMAGE_SIZE)  # the images' own size
                training = train(store, config, on_progress=on_progress, cancel=cancel)
            found = _found_wrong_labels(store, training, mislabelled) if training else []
            shipped = None
            if training:
                shipped = _ship(store, training, seed, on_progress=on_progress, cancel=cancel)
    return DemoResult(project_dir, report, mislabelled, training, found, shipped)


def _demo_store(
    project_dir: Path,
    per_class: int,
    seed: int,
    on_progress: ProgressCallback,
    cancel: CancelToken | None,
) -> ProjectStore:
    """The demo project, made with its images if there is none yet."""
    if (project_dir / DATABASE_NAME).exists():
        return ProjectStore.open(project_dir)
    images = demo_images_dir(project_dir)
    demo = make_demo_images(images, per_class=per_class, size=DEMO_IMAGE_SIZE, seed=seed,
                            on_progress=on_progress, cancel=cancel)  # fmt: skip
    store = ProjectStore.create(project_dir, images)
    mislabelled = [
        {"path": path, "true_class": true, "label": given} for path, true, given in demo.mislabelled
    ]
    store.set_meta(_MISLABELLED_KEY, json.dumps(mislabelled))
    return store


def _refuse_old_layout(project_dir: Path) -> None:
    """A demo project made before its images moved out of it cannot be opened."""
    if (project_dir / DATABASE_NAME).exists() and (project_dir / _OLD_IMAGES_FOLDER).is_dir():
        raise ProjectError(
            f"The demo project in {project_dir} was made by an older Linnaeus, with its images "
            f"inside the project folder. Delete the folder {project_dir} and make the demo again."
        )


def _ship(
    store: ProjectStore,
    training: TrainResult,
    seed: int,
    *,
    on_progress: ProgressCallback,
    cancel: CancelToken | None,
) -> dict[str, Any]:
    """The rest of the job: export the model to ONNX, write the model card, and
    classify a new folder of demo images with the ONNX model alone."""
    from linnaeus.engine.onnx.classify import classify
    from linnaeus.engine.onnx.export import export_version
    from linnaeus.engine.report.model_card import write_report

    version = training.version
    onnx_path = versions.exported_model_path(store.project_dir, version.name)
    onnx_path.parent.mkdir(exist_ok=True)
    exported = export_version(store, version, onnx_path, on_progress=on_progress, cancel=cancel)
    report = write_report(store, versions.get_version(store, version.id),
                          versions.report_path(store.project_dir, version.name),
                          on_progress=on_progress)  # fmt: skip
    new_folder = store.project_dir / NEW_IMAGES_FOLDER
    if not new_folder.exists():
        make_demo_images(new_folder, per_class=10, size=DEMO_IMAGE_SIZE, wrong_fraction=0.0,
                         seed=seed + 1)  # fmt: skip
    csv_path = store.project_dir / f"{NEW_IMAGES_FOLDER}-predictions.csv"
    classified = classify(exported.path, new_folder, csv_path, keep_predictions=True,
                          on_progress=on_progress, cancel=cancel)  # fmt: skip
    right = sum(p.label == p.path.split("/")[0] for p in classified.predictions)
    return {
        "onnx": str(exported.path), "max_abs_difference": exported.max_abs_difference,
        "report": str(report), "new_images": classified.images, "new_images_right": right,
        "predictions_csv": str(csv_path), "provider": classified.provider,
    }  # fmt: skip


def _found_wrong_labels(
    store: ProjectStore, training: TrainResult, mislabelled: list[dict[str, str]]
) -> list[dict[str, str]]:
    """The planted wrong labels among the first entries of Check labels (as many
    entries as there are wrong labels), with the suggested class: the held-out
    label check where the version has one (`labels issues`), else the relabel queue."""
    version = training.version
    issues = version_label_issues(store, version)
    if issues is not None:
        first = [(issue.image_id, issue.suggested) for issue in issues]
    else:
        first = [(item.image_id, item.predicted) for item in version_relabel_queue(store, version)]
    wrong = {m["path"]: m for m in mislabelled}
    found = []
    for image_id, suggested in first[: len(mislabelled)]:
        path = store.image(image_id).path
        if path in wrong:
            found.append(wrong[path] | {"suggested": version.classes[suggested]})
    return found
