"""Model versions kept in a project: what was trained, on which labels, how well.

Each version has a folder ``models/<id>/`` in the project for its files (the
Keras model, the training checkpoint) and a row in the store with its config,
augmentation, class list, label snapshot, metrics per split, training curves,
duration and device. One version is the project's active model.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linnaeus.engine.errors import ProjectError
from linnaeus.engine.project.database import utc_now
from linnaeus.engine.project.store import ProjectStore

MODELS_FOLDER = "models"
EXPORTS_FOLDER = "exports"  # inside the project folder: exported models and reports
# "interrupted": its training process ended before it finished (engine.project.leftovers).
STATUSES = ("training", "done", "failed", "cancelled", "interrupted")
# The resumable checkpoint (model with optimizer state) an unfinished run keeps
# in its version's folder; the trainer's other files are named in engine.training.config.
CHECKPOINT_FILE = "checkpoint.keras"
_ACTIVE_KEY = "active_model"


@dataclass(frozen=True)
class ModelVersion:
    """One trained (or training) model of a project."""

    id: int
    created_at: str
    finished_at: str | None
    status: str
    kind: str
    config: dict[str, Any]
    augmentation: dict[str, Any]
    classes: list[str]
    metrics: dict[str, Any]
    curves: dict[str, list[float]]
    duration_s: float | None
    device: str | None
    folder: Path
    error: str | None

    @property
    def name(self) -> str:
        return f"v{self.id}"

    @property
    def model_file(self) -> Path:
        return self.folder / "model.keras"

    @property
    def checkpoint_file(self) -> Path:
        """Where training can resume from, while it has not finished."""
        return self.folder / CHECKPOINT_FILE


def unfinished_checkpoint(folder: Path) -> Path:
    """Where trainings before `engine.atomic.atomic_path` wrote a checkpoint before it
    replaced the last one (one a killed training left is removed as a leftover)."""
    return folder / f".{CHECKPOINT_FILE}"


def exported_model_path(project_dir: Path, version_name: str, int8: bool = False) -> Path:
    """Where a version's exported model goes unless the user chooses another place;
    the desktop application looks there for the model that draws heatmaps."""
    suffix = "-int8" if int8 else ""
    return project_dir / EXPORTS_FOLDER / f"{project_dir.name}-{version_name}{suffix}.onnx"


def report_path(project_dir: Path, version_name: str) -> Path:
    """Where a version's HTML model card goes unless the user chooses another place."""
    return project_dir / EXPORTS_FOLDER / f"{project_dir.name}-{version_name}-report.html"


_COLUMNS = (
    "id, created_at, finished_at, status, kind, config, augmentation, classes, metrics, curves, "
    "duration_s, device, folder, error"
)


def _from_row(store: ProjectStore, row: Sequence[Any]) -> ModelVersion:
    (
        id_,
        created,
        finished,
        status,
        kind,
        config,
        augmentation,
        classes,
        metrics,
        curves,
        duration,
        device,
        folder,
        error,
    ) = row
    return ModelVersion(
        id=id_,
        created_at=created,
        finished_at=finished,
        status=status,
        kind=kind,
        config=json.loads(config),
        augmentation=json.loads(augmentation),
        classes=json.loads(classes),
        metrics=json.loads(metrics) if metrics else {},
        curves=json.loads(curves) if curves else {},
        duration_s=duration,
        device=device,
        folder=store.project_dir / folder,
        error=error,
    )


def create_version(
    store: ProjectStore,
    *,
    kind: str,
    config: Mapping[str, Any],
    augmentation: Mapping[str, Any],
    classes: Sequence[str],
    labels: Mapping[int, tuple[int, str]],
) -> ModelVersion:
    """Register a new version in state 'training' with its label snapshot
    (``labels``: image id -> (class index, split))."""
    with store.transaction():
        cursor = store.execute(
            "INSERT INTO model_versions (created_at, kind, config, augmentation, classes, folder) "
            "VALUES (?, ?, ?, ?, ?, '')",
            (
                utc_now(),
                kind,
                json.dumps(dict(config)),
                json.dumps(dict(augmentation)),
                json.dumps(list(classes)),
            ),
        )
        version_id = int(cursor.lastrowid or 0)
        folder = f"{MODELS_FOLDER}/{version_id}"
        store.execute("UPDATE model_versions SET folder = ? WHERE id = ?", (folder, version_id))
        store.execute_many(
            "INSERT INTO model_labels (model_id, image_id, class_index, split) VALUES (?,?,?,?)",
            [(version_id, image_id, index, split) for image_id, (index, split) in labels.items()],
        )
    (store.project_dir / folder).mkdir(parents=True, exist_ok=True)
    return get_version(store, version_id)


def update_version(store: ProjectStore, version_id: int, **fields: Any) -> ModelVersion:
    """Set columns of a version; dicts and lists are stored as JSON."""
    allowed = {"status", "metrics", "curves", "duration_s", "device", "error", "finished_at"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"unknown model version fields: {sorted(unknown)}")
    if "status" in fields and fields["status"] not in STATUSES:
        raise ValueError(f"unknown status {fields['status']!r}")
    values = [json.dumps(v) if isinstance(v, dict | list) else v for v in fields.values()]
    assignments = ", ".join(f"{name} = ?" for name in fields)
    with store.transaction():
        store.execute(
            f"UPDATE model_versions SET {assignments} WHERE id = ?", (*values, version_id)
        )
    return get_version(store, version_id)


def get_version(store: ProjectStore, version_id: int) -> ModelVersion:
    row = store.execute(
        f"SELECT {_COLUMNS} FROM model_versions WHERE id = ?", (version_id,)
    ).fetchone()
    if row is None:
        raise ProjectError(f"This project has no model version v{version_id}.")
    return _from_row(store, row)


def list_versions(store: ProjectStore) -> list[ModelVersion]:
    """All versions, newest first."""
    rows = store.execute(f"SELECT {_COLUMNS} FROM model_versions ORDER BY id DESC").fetchall()
    return [_from_row(store, row) for row in rows]


def parse_version(text: str) -> int:
    """``"v3"`` or ``"3"`` -> 3."""
    digits = text.strip().lower().removeprefix("v")
    if not digits.isdigit():
        raise ProjectError(f"A model version looks like v3, not {text!r}.")
    return int(digits)


def active_version(store: ProjectStore) -> ModelVersion | None:
    """The project's active model, if one was trained."""
    value = store.meta(_ACTIVE_KEY)
    return get_version(store, int(value)) if value else None


def set_active(store: ProjectStore, version_id: int) -> None:
    version = get_version(store, version_id)
    if version.status != "done":
        raise ProjectError(f"{version.name} did not finish training ({version.status}).")
    store.set_meta(_ACTIVE_KEY, str(version_id))


def label_snapshot(store: ProjectStore, version_id: int) -> dict[int, tuple[int, str]]:
    """Image id -> (class index, split) of the labels a version was trained on."""
    rows = store.execute(
        "SELECT image_id, class_index, split FROM model_labels WHERE model_id = ?", (version_id,)
    )
    return {image_id: (index, split) for image_id, index, split in rows}


def delete_version(store: ProjectStore, version_id: int) -> None:
    """Remove a version and its files (never the active one)."""
    version = get_version(store, version_id)
    if store.meta(_ACTIVE_KEY) == str(version_id):
        raise ProjectError(f"{version.name} is the active model; activate another one first.")
    with store.transaction():
        store.execute("DELETE FROM model_versions WHERE id = ?", (version_id,))
    shutil.rmtree(version.folder, ignore_errors=True)
