"""Evaluating a model version from its stored predictions (no TensorFlow).

The temperature and, for two classes, the decision threshold are fitted on
the validation split once and saved with the version; the test split is then
measured with them, as a radiologist would report it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from linnaeus.engine.errors import ProjectError
from linnaeus.engine.evaluation.metrics import Evaluation
from linnaeus.engine.evaluation.metrics import QueueItem
from linnaeus.engine.evaluation.metrics import choose_threshold
from linnaeus.engine.evaluation.metrics import evaluate_predictions
from linnaeus.engine.evaluation.metrics import fit_temperature
from linnaeus.engine.evaluation.metrics import logits_from_probabilities
from linnaeus.engine.evaluation.metrics import relabel_queue
from linnaeus.engine.evaluation.metrics import softmax
from linnaeus.engine.project import versions
from linnaeus.engine.project.image_files import labelled_images
from linnaeus.engine.project.predictions import load_predictions
from linnaeus.engine.project.predictions import split_predictions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.versions import ModelVersion

TARGET_SENSITIVITY = 0.95


def evaluate_version(
    store: ProjectStore, version: ModelVersion, split: str = "test", *, bootstrap: int = 1000
) -> Evaluation:
    """Evaluate a version on a split with the temperature and (binary) decision
    threshold chosen on the validation split, which are saved with the version."""
    calibration = calibrate_version(store, version)
    data = split_predictions(store, version, split)
    if len(data.image_ids) == 0:
        raise ProjectError(f"{version.name} has no predictions for {split} images.")
    probabilities = _apply_temperature(data.probabilities, calibration["temperature"])
    return evaluate_predictions(
        data.labels, probabilities, version.classes, split=split,
        positive_class=calibration["positive_class"], threshold=calibration["threshold"],
        target_sensitivity=TARGET_SENSITIVITY, bootstrap=bootstrap,
        temperature=calibration["temperature"],
    )  # fmt: skip


def calibrate_version(store: ProjectStore, version: ModelVersion) -> dict[str, Any]:
    """Temperature and binary threshold fitted on validation, stored in the
    version's metrics under "calibration" (computed once)."""
    saved = version.metrics.get("calibration")
    if saved:
        return dict(saved)
    val = split_predictions(store, version, "val")
    temperature = 1.0
    if len(val.image_ids) >= 2:
        temperature = fit_temperature(logits_from_probabilities(val.probabilities), val.labels)
    threshold = positive = None
    if len(version.classes) == 2:
        positive = version.classes[1]
        scaled = _apply_temperature(val.probabilities, temperature)
        threshold = 0.5  # no positive validation image: the plain argmax rule, never test data
        if len(val.image_ids) and (val.labels == 1).any():
            threshold = choose_threshold(val.labels == 1, scaled[:, 1], TARGET_SENSITIVITY)
    calibration = {"temperature": temperature, "threshold": threshold, "positive_class": positive,
                   "target_sensitivity": TARGET_SENSITIVITY}  # fmt: skip
    versions.update_version(
        store, version.id, metrics=version.metrics | {"calibration": calibration}
    )
    return calibration


def _apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    if temperature == 1.0 or len(probabilities) == 0:
        return probabilities
    return softmax(logits_from_probabilities(probabilities), temperature)


def version_relabel_queue(store: ProjectStore, version: ModelVersion) -> list[QueueItem]:
    """Labelled images ranked for review under the *current* labels: images the
    model disagrees with first, highest loss first."""
    ids, probabilities = load_predictions(store, version.id)
    index = {name: i for i, name in enumerate(version.classes)}
    current = {row.image_id: row.label for row in labelled_images(store)}
    keep = [n for n, i in enumerate(ids) if current.get(int(i)) in index]
    labels = np.array([index[current[int(ids[n])]] for n in keep], dtype=np.int64)
    return relabel_queue(ids[keep], labels, probabilities[keep])
