"""The built-in demo project: generated images, imported, ready to explore.

`run_demo` is what ``linnaeus demo`` (and the README's first command) runs.
It is idempotent: run again, it re-imports the same images instead of failing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import replace
from pathlib import Path

from linnaeus.engine.demo import make_demo_images
from linnaeus.engine.importer import ImportOptions
from linnaeus.engine.importer import ImportReport
from linnaeus.engine.importer import import_images
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import ignore_progress
from linnaeus.engine.store import DATABASE_NAME
from linnaeus.engine.store import ProjectStore
from linnaeus.engine.training import TrainConfig
from linnaeus.engine.training import TrainResult
from linnaeus.engine.training import train
from linnaeus.engine.version_evaluation import version_relabel_queue

IMAGES_FOLDER = "images"
DEMO_IMAGE_SIZE = 96
_MISLABELLED_KEY = "demo_mislabelled"


@dataclass(frozen=True)
class DemoResult:
    """The demo project, what is known about its images, and its trained model."""

    project_dir: Path
    report: ImportReport
    mislabelled: list[dict[str, str]]  # path, true class, folder label
    training: TrainResult | None
    found: list[dict[str, str]]  # wrong labels the relabel queue puts first, with the suggestion


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
    ``project_dir/images``, imported with a fixed split, and (``train_model``)
    a model trained on them with the default choice."""
    project_dir = project_dir.absolute()
    images = project_dir / IMAGES_FOLDER
    if not (project_dir / DATABASE_NAME).exists():
        demo = make_demo_images(
            images,
            per_class=per_class,
            size=DEMO_IMAGE_SIZE,
            seed=seed,
            on_progress=on_progress,
            cancel=cancel,
        )
        store = ProjectStore.create(project_dir, images)
        mislabelled = [
            {"path": path, "true_class": true, "label": given}
            for path, true, given in demo.mislabelled
        ]
        store.set_meta(_MISLABELLED_KEY, json.dumps(mislabelled))
    else:
        store = ProjectStore.open(project_dir)
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
    return DemoResult(project_dir, report, mislabelled, training, found)


def _found_wrong_labels(
    store: ProjectStore, training: TrainResult, mislabelled: list[dict[str, str]]
) -> list[dict[str, str]]:
    """The planted wrong labels among the first entries of the relabel queue
    (as many entries as there are wrong labels), with the model's suggestion."""
    version = training.version
    queue = version_relabel_queue(store, version)[: len(mislabelled)]
    wrong = {m["path"]: m for m in mislabelled}
    found = []
    for item in queue:
        path = store.image(item.image_id).path
        if path in wrong:
            found.append(wrong[path] | {"suggested": version.classes[item.predicted]})
    return found
