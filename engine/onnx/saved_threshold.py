"""Saving a two-class version's decision threshold: with the version, and in the
models exported from it into the project's exports folder.

The Evaluate tab's "Use this threshold" (undoable) calls `set_threshold`;
evaluation, the grid and new exports then read it from the version, and the
exported files' metadata is rewritten so that ``linnaeus predict`` and Classify
follow without a new export. Files copied elsewhere keep the threshold they
were exported with.
"""

from __future__ import annotations

from typing import Any

from linnaeus.engine.errors import ProjectError
from linnaeus.engine.evaluation.decision import check_threshold
from linnaeus.engine.evaluation.version import CHOSEN_BY_HAND
from linnaeus.engine.evaluation.version import CHOSEN_ON_VALIDATION
from linnaeus.engine.evaluation.version import calibrate_version
from linnaeus.engine.onnx.format import ModelFileError
from linnaeus.engine.onnx.format import write_decision_rule
from linnaeus.engine.project import versions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.versions import ModelVersion


def set_threshold(
    store: ProjectStore,
    version: ModelVersion,
    threshold: float,
    *,
    chosen_on: str = CHOSEN_BY_HAND,
) -> ModelVersion:
    """Make ``threshold`` the two-class version's decision threshold: saved with the
    version (its evaluation, the grid and new exports use it) and written into
    its exported models in the project's exports folder (predict follows).
    ``chosen_on`` says who chose it: "user", or "validation" to go back."""
    if len(version.classes) != 2:
        raise ProjectError(f"{version.name} has {len(version.classes)} classes; a decision "
                           "threshold is for two-class models.")  # fmt: skip
    if chosen_on not in (CHOSEN_BY_HAND, CHOSEN_ON_VALIDATION):
        raise ValueError(f"unknown threshold origin {chosen_on!r}")
    calibration = calibrate_version(store, version) | {
        "threshold": check_threshold(threshold), "chosen_on": chosen_on,
    }  # fmt: skip
    version = versions.update_version(
        store, version.id, metrics=version.metrics | {"calibration": calibration}
    )
    _update_exported_models(store, version, calibration)
    return version


def _update_exported_models(
    store: ProjectStore, version: ModelVersion, calibration: dict[str, Any]
) -> None:
    """Write the decision rule into the version's exported models in the project's
    exports folder (float and int8), those that are this version's."""
    for int8 in (False, True):
        path = versions.exported_model_path(store.project_dir, version.name, int8)
        if not path.is_file():
            continue
        try:
            write_decision_rule(path, calibration["threshold"], calibration["positive_class"],
                                model_version=version.name)  # fmt: skip
        except ModelFileError as error:
            raise ProjectError(
                f"The threshold is saved with {version.name}, but {path.name} could not be "
                f"updated ({error}); export {version.name} again."
            ) from None
