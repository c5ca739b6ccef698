"""A model version's stored predictions as its exported model makes them, and its
evaluation (no TensorFlow).

The temperature and, for two classes, the decision threshold are fitted on
the validation split once and saved with the version (`calibrate_version`);
the test split is then measured with them, as a radiologist would report it.
`version_predictions` gives every stored prediction calibrated and decided by
that rule: the grid's marks and filters, the Check labels list, the Evaluate tab
and the model card all read it, so they agree with `linnaeus predict`.
`linnaeus.engine.onnx.saved_threshold` replaces the threshold (the Evaluate
tab's "Use this threshold") with the version and in its exported models.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace
from typing import Any

import numpy as np

from linnaeus.engine.errors import ProjectError
from linnaeus.engine.evaluation.decision import DecisionRule
from linnaeus.engine.evaluation.decision import choose_threshold
from linnaeus.engine.evaluation.metrics import Evaluation
from linnaeus.engine.evaluation.metrics import QueueItem
from linnaeus.engine.evaluation.metrics import evaluate_predictions
from linnaeus.engine.evaluation.metrics import fit_temperature
from linnaeus.engine.evaluation.metrics import logits_from_probabilities
from linnaeus.engine.evaluation.metrics import relabel_queue
from linnaeus.engine.evaluation.metrics import softmax
from linnaeus.engine.project import versions
from linnaeus.engine.project.image_files import labelled_images
from linnaeus.engine.project.predictions import load_predictions
from linnaeus.engine.project.predictions import split_predictions
from linnaeus.engine.project.predictions import view_predictions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.versions import ModelVersion

TARGET_SENSITIVITY = 0.95
CHOSEN_ON_VALIDATION = "validation"  # calibration["chosen_on"]: by `choose_threshold`
CHOSEN_BY_HAND = "user"  # calibration["chosen_on"]: "Use this threshold" in the Evaluate tab


@dataclass(frozen=True)
class VersionPredictions:
    """A version's stored predictions as its exported model gives them: calibrated
    probabilities (N x K) and the class index its decision rule picks, per image."""

    version_name: str
    rule: DecisionRule
    image_ids: np.ndarray
    probabilities: np.ndarray
    predicted: np.ndarray


def calibrate_version(store: ProjectStore, version: ModelVersion) -> dict[str, Any]:
    """The version's temperature and (two classes) decision rule, fitted on the
    validation split the first time and saved in its metrics under "calibration":
    temperature, threshold, positive_class, target_sensitivity, chosen_on
    ("validation" or "user") and validation_threshold (the one chosen on validation)."""
    saved = version.metrics.get("calibration")
    if saved and _usable(saved, version):
        return dict(saved)
    val = split_predictions(store, version, "val")
    temperature = 1.0
    if len(val.image_ids) >= 2:
        temperature = fit_temperature(logits_from_probabilities(val.probabilities), val.labels)
    threshold = positive = None
    if len(version.classes) == 2:
        index = positive_index(version)
        positive = version.classes[index]
        scaled = calibrated_probabilities(val.probabilities, temperature)
        threshold = 0.5  # no positive validation image: the plain argmax rule, never test data
        if len(val.image_ids) and (val.labels == index).any():
            threshold = choose_threshold(val.labels == index, scaled[:, index], TARGET_SENSITIVITY)
    calibration = {"temperature": temperature, "threshold": threshold, "positive_class": positive,
                   "target_sensitivity": TARGET_SENSITIVITY, "chosen_on": CHOSEN_ON_VALIDATION,
                   "validation_threshold": threshold}  # fmt: skip
    versions.update_version(
        store, version.id, metrics=version.metrics | {"calibration": calibration}
    )
    return calibration


def positive_index(version: ModelVersion) -> int:
    """The index of a two-class version's positive class: the one recorded in its
    config when it was trained (`TrainConfig.positive`), else the second class, as
    every version trained before the class was recorded decided."""
    recorded = version.config.get("positive")
    if recorded is None or recorded not in version.classes:
        return 1
    return version.classes.index(recorded)


def _usable(saved: dict[str, Any], version: ModelVersion) -> bool:
    """Whether a saved calibration can decide: a threshold strictly inside (0, 1) for
    two classes (an earlier rule could save exactly 1.0, which no export accepts)."""
    threshold = saved.get("threshold")
    if len(version.classes) != 2:
        return threshold is None
    return isinstance(threshold, int | float) and 0.0 < threshold < 1.0


def decision_rule(version: ModelVersion, calibration: dict[str, Any]) -> DecisionRule:
    """The rule the version decides by (and is exported with)."""
    if len(version.classes) != 2:
        return DecisionRule(tuple(version.classes))
    return DecisionRule(
        tuple(version.classes), calibration["threshold"], calibration["positive_class"]
    )


def calibrated_probabilities(
    probabilities: np.ndarray, calibration: dict[str, Any] | float
) -> np.ndarray:
    """Stored probabilities at the version's temperature (a calibration or a temperature),
    as its exported model computes them."""
    temperature = calibration if isinstance(calibration, float) else calibration["temperature"]
    if temperature == 1.0 or len(probabilities) == 0:
        return probabilities
    return softmax(logits_from_probabilities(probabilities), temperature)


def version_predictions(store: ProjectStore, version: ModelVersion) -> VersionPredictions:
    """Every stored prediction of ``version``, calibrated and decided (by image id)."""
    calibration = calibrate_version(store, version)
    ids, stored = load_predictions(store, version.id)
    probabilities = calibrated_probabilities(np.asarray(stored, np.float64), calibration)
    rule = decision_rule(version, calibration)
    predicted = rule.decide(probabilities) if len(ids) else np.zeros(0, np.int64)
    return VersionPredictions(version.name, rule, ids, probabilities, predicted)


def evaluate_version(
    store: ProjectStore, version: ModelVersion, split: str = "test", *, bootstrap: int = 1000
) -> Evaluation:
    """Evaluate a version on a split with the temperature and (binary) decision
    threshold saved with it (`calibrate_version`); a version validated on augmented
    views is evaluated on them for "val" (and the evaluation says so)."""
    calibration = calibrate_version(store, version)
    data = split_predictions(store, version, split)
    on_views = split == "val" and view_predictions(version) is not None
    if len(data.image_ids) == 0:
        raise ProjectError(_no_images(version, split))
    evaluation = evaluate_predictions(
        data.labels, calibrated_probabilities(data.probabilities, calibration), version.classes,
        split=split, positive_class=calibration["positive_class"],
        threshold=calibration["threshold"],
        target_sensitivity=calibration.get("target_sensitivity", TARGET_SENSITIVITY),
        chosen_on=calibration.get("chosen_on", CHOSEN_ON_VALIDATION), bootstrap=bootstrap,
        temperature=calibration["temperature"],
    )  # fmt: skip
    return replace(evaluation, augmented_views=True) if on_views else evaluation


def _no_images(version: ModelVersion, split: str) -> str:
    """Why ``version`` cannot be evaluated on ``split``, and what to look at instead."""
    words = {"val": "validation", "train": "training"}.get(split, split)
    if view_predictions(version) is None:
        return f"{version.name} has no predictions for {words} images."
    return (
        f"{version.name} has no {words} images: some classes have too few images for a "
        f"{words} split. Evaluate it on the validation split: augmented views of the "
        "training images (optimistic figures)."
    )


def decided_split_figures(store: ProjectStore, version: ModelVersion) -> dict[str, Any]:
    """The version's metrics (calibrated on validation now, if it was not) with each
    split's accuracy counted at its decisions (the argmax one kept as
    "argmax_accuracy"), for the versions table and the end of a training."""
    calibration = calibrate_version(store, version)
    metrics = versions.get_version(store, version.id).metrics  # with the calibration
    rule = decision_rule(version, calibration)
    for split in ("train", "val", "test"):
        data = split_predictions(store, version, split)
        if split not in metrics or len(data.image_ids) == 0:
            continue
        probabilities = calibrated_probabilities(data.probabilities, calibration)
        decided = float(np.mean(rule.decide(probabilities) == data.labels))
        argmax = float(np.mean(probabilities.argmax(axis=1) == data.labels))
        metrics[split] = metrics[split] | {"accuracy": decided, "argmax_accuracy": argmax}
    return metrics


def version_relabel_queue(store: ProjectStore, version: ModelVersion) -> list[QueueItem]:
    """Labelled images ranked for review under the *current* labels: images whose
    label differs from the model's decision first, highest loss first."""
    predictions = version_predictions(store, version)
    ids = predictions.image_ids
    index = {name: i for i, name in enumerate(version.classes)}
    current = {row.image_id: row.label for row in labelled_images(store)}
    keep = [n for n, i in enumerate(ids) if current.get(int(i)) in index]
    labels = np.array([index[current[int(ids[n])]] for n in keep], dtype=np.int64)
    return relabel_queue(ids[keep], labels, predictions.probabilities[keep], predictions.rule)
