"""Model versions kept in a project: what was trained, on which labels, how well.

Each version has a folder ``models/<id>/`` in the project for its files (the
Keras model, the training checkpoint) and a row in the store with its config,
augmentation, class list, label snapshot, metrics per split, training curves,
duration and device. One version is the project's active model. A version
may carry a name and a note the user gave it; its identifier ("v3", used in
file names) never changes, and a deleted version's number is never given to a
new one (its exported files would otherwise seem to belong to the new one).
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
from linnaeus.engine.project import lock as project_lock
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
_HIGHEST_KEY = "highest_version_id"  # the highest id ever given, deleted ones included
MAX_TITLE_CHARS = 80
MAX_NOTE_CHARS = 2000


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
    title: str = ""  # a name the user gave it ("" if none)
    note: str = ""  # the user's note on it ("" if none)

    @property
    def name(self) -> str:
        """The version's identifier, e.g. "v3" (in file names, the CLI, the protocol)."""
        return f"v{self.id}"

    @property
    def display_name(self) -> str:
        """What people read: "v3 · baseline" when the user named it, else "v3"."""
        return f"{self.name} · {self.title}" if self.title else self.name

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
    "duration_s, device, folder, error, title, note"
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
        title,
        note,
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
        title=title or "",
        note=note or "",
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
            "INSERT INTO model_versions "
            "(id, created_at, kind, config, augmentation, classes, folder) "
            "VALUES (?, ?, ?, ?, ?, ?, '')",
            (
                _next_id(store),
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


def _next_id(store: ProjectStore) -> int:
    """One more than any id ever given: a deleted version's number is not reused."""
    (highest,) = store.execute("SELECT COALESCE(MAX(id), 0) FROM model_versions").fetchone()
    return max(int(highest), int(store.meta(_HIGHEST_KEY) or 0)) + 1


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


def rename_version(store: ProjectStore, version_id: int, title: str) -> ModelVersion:
    """Give a version a name people read beside its number ("" removes it)."""
    text = " ".join(title.split())
    if len(text) > MAX_TITLE_CHARS:
        raise ProjectError(f"A version name has at most {MAX_TITLE_CHARS} characters.")
    return _set_text(store, version_id, "title", text)


def set_note(store: ProjectStore, version_id: int, note: str) -> ModelVersion:
    """Keep a note with a version (what changed, what to remember; "" removes it)."""
    text = note.strip()
    if len(text) > MAX_NOTE_CHARS:
        raise ProjectError(f"A note has at most {MAX_NOTE_CHARS} characters.")
    return _set_text(store, version_id, "note", text)


def _set_text(store: ProjectStore, version_id: int, column: str, text: str) -> ModelVersion:
    get_version(store, version_id)  # an unknown version is explained
    with store.transaction():
        store.execute(
            f"UPDATE model_versions SET {column} = ? WHERE id = ?", (text or None, version_id)
        )
    return get_version(store, version_id)


def successor(store: ProjectStore, version_id: int) -> ModelVersion | None:
    """The version that becomes active if ``version_id`` (the active one) is deleted:
    the newest other finished version, or None (then no model is active)."""
    for version in list_versions(store):
        if version.id != version_id and version.status == "done":
            return version
    return None


def delete_version(
    store: ProjectStore, version_id: int, *, replace_active: bool = False
) -> ModelVersion | None:
    """Remove a version, its predictions and its folder in the project's models
    folder; return the active version afterwards.

    The active version is refused unless ``replace_active``: then `successor`
    becomes active. A version still training is refused, and so is any while
    another process writes to the project (its lock). Exported models in the
    exports folder are kept (they may have been handed on), and nothing outside
    the version's own folder is removed.
    """
    version = get_version(store, version_id)
    if version.status == "training":
        raise ProjectError(f"{version.name} is still training; cancel the training first.")
    active = store.meta(_ACTIVE_KEY) == str(version_id)
    if active and not replace_active:
        raise ProjectError(f"{version.name} is the active model; activate another one first.")
    folder = _own_folder(store, version)
    following = successor(store, version_id) if active else None
    with project_lock.hold(store.project_dir, f"deleting {version.name}"), store.transaction():
        if active:
            if following is None:
                store.delete_meta(_ACTIVE_KEY)
            else:
                store.set_meta(_ACTIVE_KEY, str(following.id))
        highest = max(int(store.meta(_HIGHEST_KEY) or 0), version_id)
        store.set_meta(_HIGHEST_KEY, str(highest))
        store.execute("DELETE FROM model_versions WHERE id = ?", (version_id,))
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
    return active_version(store)


def _own_folder(store: ProjectStore, version: ModelVersion) -> Path | None:
    """The version's folder if it is where versions live (``models/<id>`` in the
    project) and outside the image folder; None otherwise (nothing is removed)."""
    folder = version.folder.resolve()
    expected = (store.project_dir / MODELS_FOLDER / str(version.id)).resolve()
    image_root = store.image_root.resolve() if store.meta("image_root") else None
    if folder != expected or (image_root is not None and folder.is_relative_to(image_root)):
        return None
    return folder
