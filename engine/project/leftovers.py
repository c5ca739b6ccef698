"""What a process that ended abruptly left in a project, and settling it.

A training that is killed (or crashes, or loses its power) leaves its model
version in state "training" with no process behind it; an export, a report or
a results file cut short leaves a hidden temporary file beside where it was
going. `tidy` runs when a project is opened, when a training ends in the
window and before one is resumed, and only while no other process holds the
project's lock (so nothing is still at work): it marks such versions
"interrupted" (their checkpoint is there: training can resume) or "failed"
(nothing to resume), and deletes stale temporary files (`engine.atomic`) from
the project folder, its exports folder and its version folders, with an
unfinished checkpoint that a killed training left. Nothing else is deleted.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from linnaeus.engine.atomic import remove_stale_temporaries
from linnaeus.engine.errors import ProjectError
from linnaeus.engine.project import lock as project_lock
from linnaeus.engine.project import versions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.versions import EXPORTS_FOLDER
from linnaeus.engine.project.versions import MODELS_FOLDER

log = logging.getLogger(__name__)

INTERRUPTED_ERROR = (
    "The training stopped before it finished (its process ended); resume it to continue."
)
FAILED_ERROR = (
    "The training stopped before it finished (its process ended) and saved nothing to "
    "resume from; train again."
)


@dataclass(frozen=True)
class Tidied:
    """What `tidy` settled."""

    interrupted: list[str]  # version names now "interrupted"
    failed: list[str]  # version names now "failed"
    removed: list[Path]  # files deleted


def tidy(store: ProjectStore) -> Tidied:
    """Settle what ended processes left in the project (see the module's docstring);
    nothing while another process holds its lock."""
    try:
        with project_lock.hold(store.project_dir, "tidying up", wait_s=0):
            interrupted, failed = _settle_versions(store)
            removed = _remove_leftover_files(store.project_dir)
    except (ProjectError, OSError, sqlite3.Error) as busy_or_read_only:  # never fails an open
        log.info("not tidying %s: %s", store.project_dir, busy_or_read_only)
        return Tidied([], [], [])
    return Tidied(interrupted, failed, removed)


def _settle_versions(store: ProjectStore) -> tuple[list[str], list[str]]:
    """Versions "training" with no process behind them (the caller holds the lock)."""
    interrupted, failed = [], []
    for version in versions.list_versions(store):
        if version.status != "training":
            continue
        if version.checkpoint_file.is_file():
            versions.update_version(
                store, version.id, status="interrupted", error=INTERRUPTED_ERROR
            )
            interrupted.append(version.name)
        else:
            versions.update_version(store, version.id, status="failed", error=FAILED_ERROR)
            failed.append(version.name)
    if interrupted or failed:
        log.info("versions whose training process ended: interrupted %s, failed %s",
                 interrupted, failed)  # fmt: skip
    return interrupted, failed


def _remove_leftover_files(project_dir: Path) -> list[Path]:
    removed = remove_stale_temporaries(project_dir)
    removed += remove_stale_temporaries(project_dir / EXPORTS_FOLDER)
    try:
        folders = sorted(p for p in (project_dir / MODELS_FOLDER).iterdir() if p.is_dir())
    except OSError:  # no models yet
        folders = []
    for folder in folders:
        removed += remove_stale_temporaries(folder)
        unfinished = versions.unfinished_checkpoint(folder)
        if unfinished.is_file():  # no training runs: the caller holds the lock
            try:
                unfinished.unlink()
            except OSError as error:
                log.info("cannot remove %s: %s", unfinished, error)
            else:
                removed.append(unfinished)
    return removed
