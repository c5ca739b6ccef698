"""Classifying a folder on a Ray cluster: ``linnaeus predict MODEL FOLDER --ray ADDRESS``.

The driver does what a single-machine run does (`engine.onnx.classify`: the
one classify path, the CSV, ``--sort-into``, the suggestions, progress and
cancel); only the model calls move. `RayClassifier` is a `Classifier` whose
batches of files (the same batches, in the same order) are each decoded and
classified by one of a pool of Ray actors, each holding the model in its own
onnxruntime session. The actors read the files themselves, so every node must
see FOLDER at the same path (a shared or mounted folder); the model file is
sent to them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from linnaeus.engine.cluster.runtime import ActorPool
from linnaeus.engine.onnx.inference import Classifier
from linnaeus.engine.onnx.results import Prediction


class ClassifyActor:
    """One Ray actor: the model in an onnxruntime session of one thread."""

    def __init__(self, model: bytes, path: str) -> None:
        if Path(path).is_file():
            self.classifier = Classifier(Path(path), threads=1)
            return
        with tempfile.TemporaryDirectory(prefix="linnaeus-ray-") as scratch:  # another node
            copy = Path(scratch) / Path(path).name
            copy.write_bytes(model)
            self.classifier = Classifier(copy, threads=1)  # keeps the model in memory

    def provider(self) -> str:
        return self.classifier.provider

    def classify_files(self, folder: str, relatives: list[str]) -> list[Prediction]:
        return self.classifier.classify_files(Path(folder), relatives)


class RayClassifier(Classifier):
    """A `Classifier` whose folders are classified by the actors of ``pool``
    (`start_pool`); everything else (explanations, single files) runs here."""

    def __init__(self, model_path: Path, pool: ActorPool) -> None:
        super().__init__(model_path)
        self.pool = pool
        providers = sorted(set(pool.each("provider")))
        self.provider = f"{', '.join(providers)} on {pool.size} Ray workers"
        self.threads = pool.threads  # `classify_folder`'s threads, each waiting on an actor

    def classify_files(self, folder: Path, relatives: list[str]) -> list[Prediction]:
        return self.pool.call("classify_files", str(folder.absolute()), relatives)


def start_pool(model_path: Path, workers: int) -> Any:
    """A pool of ``workers`` actors holding the model at ``model_path``
    (use as a context manager: `engine.cluster.runtime.actor_pool`)."""
    from linnaeus.engine.cluster.runtime import actor_pool

    path = model_path.absolute()
    return actor_pool(ClassifyActor, workers, path.read_bytes(), str(path))
