"""The project's SQLite file: how it is opened and how values are written into it.

Times are ISO 8601 UTC text; image paths are relative to the image root with
'/' separators, stored as text, or as raw bytes for the rare file name that
is not valid UTF-8.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime
from datetime import timezone
from pathlib import Path

from linnaeus.engine.disk_space import disk_full_error
from linnaeus.engine.disk_space import is_disk_full
from linnaeus.engine.errors import ProjectError
from linnaeus.engine.project import schema

DATABASE_NAME = "linnaeus.db"
CHUNK = 500  # ids per ``IN (...)`` query and rows per progress step


def connect(project_dir: Path) -> sqlite3.Connection:
    """Open the project's database in WAL mode with foreign keys, migrated to the
    current schema; ProjectError if it cannot be opened."""
    path = project_dir / DATABASE_NAME
    try:
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute("PRAGMA busy_timeout = 10000")
        schema.migrate(connection)
    except sqlite3.DatabaseError as error:
        if is_disk_full(error, project_dir):
            raise disk_full_error(project_dir) from error
        raise ProjectError(f"Cannot open the project database {path}: {error}") from None
    return connection


def utc_now() -> str:
    """Current time as an ISO 8601 UTC string, the format of every time stored."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def to_db_path(relative: str) -> str | bytes:
    """The stored form of a relative path: text, or raw bytes if not valid UTF-8."""
    try:
        relative.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(relative)
    return relative


def from_db_path(value: str | bytes) -> str:
    """Inverse of `to_db_path`."""
    return os.fsdecode(value) if isinstance(value, bytes) else value


def display_path(relative: str) -> str:
    """A relative path safe to print or write as UTF-8 (undecodable bytes shown as �)."""
    return relative.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
