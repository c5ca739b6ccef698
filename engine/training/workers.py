"""Training on several machines: ``TF_CONFIG`` names the workers, each runs
``linnaeus train`` on the same project (a shared folder), and together they
train one model version under MultiWorkerMirroredStrategy.

The chief (worker 0, or the task of type "chief") trains as on one machine
(`engine.training.train.train`): it holds the project's lock and alone writes
the version, its checkpoints, the caches and the store rows. Every other worker
runs `train_as_worker`: it reads the same project and labels, keeps its pixel
and feature caches and its version folder in a scratch folder of its own
(removed at the end), and runs the same recipe step for step, so that the
collective operations of both match; nothing it writes reaches the project.
Only the epoch training (`engine.training.loop`) is spread over the workers;
what comes before it (the quick model's features and head) each worker
computes for itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import ignore_progress
from linnaeus.engine.project import versions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.training.config import TrainConfig


@dataclass(frozen=True)
class Role:
    """This process's place in a ``TF_CONFIG`` cluster."""

    workers: int  # machines training together (1: not a cluster)
    chief: bool  # writes the version (the only one when workers == 1)
    name: str  # e.g. "worker 1"


def cluster_role(environ: dict[str, str] | None = None) -> Role:
    """Read ``TF_CONFIG``: how many workers train together and whether this one is
    the chief (a "chief" task, else worker 0)."""
    text = (environ if environ is not None else os.environ).get("TF_CONFIG", "") or "{}"
    try:
        config = json.loads(text)
    except ValueError:
        return Role(1, True, "this machine")
    cluster = config.get("cluster", {})
    workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    task = config.get("task", {})
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    chief = kind == "chief" or (kind == "worker" and index == 0 and not cluster.get("chief"))
    return Role(max(workers, 1), chief or workers <= 1, f"{kind} {index}")


class _ScratchStore:
    """The project as a non-chief worker sees it: read from the project, cached
    and written under ``scratch`` instead of the project folder."""

    def __init__(self, store: ProjectStore, scratch: Path) -> None:
        self._store = store
        self.project_dir = scratch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def train_as_worker(
    store: ProjectStore,
    config: TrainConfig,
    *,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> str:
    """Take part in the chief's training of ``config`` as a non-chief worker; the
    `weights_digest` of the model it ended with (the chief's is the same)."""
    import keras

    from linnaeus.engine.training import runs
    from linnaeus.engine.training.augmented_views import add_augmented_views
    from linnaeus.engine.training.augmented_views import lacks_validation
    from linnaeus.engine.training.data import collect_examples
    from linnaeus.engine.training.data import load_pixels
    from linnaeus.engine.training.device import configure_devices

    config = config.resolved()
    examples = collect_examples(store)
    device = configure_devices()
    keras.utils.set_random_seed(config.seed)
    scratch = Path(tempfile.mkdtemp(prefix="linnaeus-worker-"))
    try:
        local: Any = _ScratchStore(store, scratch)
        loaded = load_pixels(local, examples, config.input_format, on_progress=on_progress,
                             cancel=cancel)  # fmt: skip
        if lacks_validation(loaded.examples):
            loaded, _ = add_augmented_views(local, loaded, config, on_progress=on_progress,
                                            cancel=cancel)  # fmt: skip
        version = _scratch_version(scratch, config, loaded.examples.classes)
        with device.strategy.scope():
            runs.run(local, config, version, loaded, device, resume=False,
                     on_progress=on_progress, cancel=cancel)  # fmt: skip
        return weights_digest(version.model_file)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _scratch_version(scratch: Path, config: TrainConfig, classes: list[str]) -> Any:
    """A version record that lives only in ``scratch`` (never in the store)."""
    folder = scratch / "version"
    folder.mkdir()
    return versions.ModelVersion(
        id=0, created_at="", finished_at=None, status="training", kind=config.model,
        config=config.to_dict(), augmentation=config.augmentation.to_dict(),
        classes=list(classes), metrics={}, curves={}, duration_s=None, device=None,
        folder=folder, error=None,
    )  # fmt: skip


def weights_digest(model_file: Path) -> str:
    """SHA-256 of a saved Keras model's weights, in layer order: equal for the
    model of every worker of one training."""
    import keras

    digest = hashlib.sha256()
    for weights in keras.models.load_model(model_file, compile=False).get_weights():
        digest.update(np.ascontiguousarray(weights).tobytes())
    return digest.hexdigest()
