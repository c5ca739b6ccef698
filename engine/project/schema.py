"""The project database schema and its migrations.

Each entry of `MIGRATIONS` moves the schema from version ``i`` to ``i + 1``;
`migrate` applies the missing ones in one transaction and records the version
in SQLite's ``user_version``. Never edit a released migration: append one.
"""

from __future__ import annotations

import sqlite3

from linnaeus.engine.errors import ProjectError

_V1 = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE classes (
    id       INTEGER PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    position INTEGER NOT NULL,
    colour   TEXT NOT NULL,
    shortcut TEXT UNIQUE
);

-- path is relative to the image root with '/' separators. It is TEXT, or a
-- BLOB of the raw bytes for the rare file name that is not valid UTF-8.
CREATE TABLE images (
    id           INTEGER PRIMARY KEY,
    path         NOT NULL UNIQUE,
    content_hash TEXT,
    byte_size    INTEGER,
    mtime_ns     INTEGER,
    width        INTEGER,
    height       INTEGER,
    channels     INTEGER,
    bit_depth    INTEGER,
    format       TEXT,
    status       TEXT NOT NULL DEFAULT 'ok'
                 CHECK (status IN ('ok', 'unreadable', 'missing')),
    error        TEXT,
    label_id     INTEGER REFERENCES classes(id) ON DELETE SET NULL,
    group_id     TEXT,
    split        TEXT CHECK (split IN ('train', 'val', 'test')),
    split_source TEXT CHECK (split_source IN ('folder', 'csv', 'random')),
    added_at     TEXT NOT NULL
);
CREATE INDEX images_content_hash ON images(content_hash);
CREATE INDEX images_label ON images(label_id);
CREATE INDEX images_status ON images(status);

-- One undoable action: a single or batch label change, or an import.
CREATE TABLE edits (
    id          INTEGER PRIMARY KEY,
    created_at  TEXT NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('import', 'user', 'model-suggestion')),
    description TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'done' CHECK (state IN ('done', 'undone', 'discarded'))
);

-- Every label change ever made. action says whether the row is the change
-- itself ('set') or its undo / redo. Class names are kept as they were then.
CREATE TABLE label_history (
    id           INTEGER PRIMARY KEY,
    image_id     INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    edit_id      INTEGER NOT NULL REFERENCES edits(id) ON DELETE CASCADE,
    old_class_id INTEGER REFERENCES classes(id) ON DELETE SET NULL,
    new_class_id INTEGER REFERENCES classes(id) ON DELETE SET NULL,
    old_name     TEXT,
    new_name     TEXT,
    changed_at   TEXT NOT NULL,
    source       TEXT NOT NULL CHECK (source IN ('import', 'user', 'model-suggestion')),
    action       TEXT NOT NULL DEFAULT 'set' CHECK (action IN ('set', 'undo', 'redo'))
);
CREATE INDEX label_history_image ON label_history(image_id);
CREATE INDEX label_history_edit ON label_history(edit_id);
"""


def _model_versions_table(name: str, statuses: str) -> str:
    """The model versions table as migrations 2 and 4 make it (never change it:
    a released migration must stay as it was)."""
    return f"""
CREATE TABLE {name} (
    id           INTEGER PRIMARY KEY,
    created_at   TEXT NOT NULL,
    finished_at  TEXT,
    status       TEXT NOT NULL DEFAULT 'training'
                 CHECK (status IN ({statuses})),
    kind         TEXT NOT NULL,
    config       TEXT NOT NULL,
    augmentation TEXT NOT NULL,
    classes      TEXT NOT NULL,
    metrics      TEXT,
    curves       TEXT,
    duration_s   REAL,
    device       TEXT,
    folder       TEXT NOT NULL,
    error        TEXT
);
"""


# Model versions: what each trained model is, what it was trained on (a label
# snapshot) and how it did. The files live in the project's models/ folder.
_V2 = (
    _model_versions_table("model_versions", "'training', 'done', 'failed', 'cancelled'")
    + """
CREATE TABLE model_labels (
    model_id    INTEGER NOT NULL REFERENCES model_versions(id) ON DELETE CASCADE,
    image_id    INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    class_index INTEGER NOT NULL,
    split       TEXT NOT NULL,
    PRIMARY KEY (model_id, image_id)
) WITHOUT ROWID;
"""
)

# Predictions of each model version for every readable image (labelled or
# not): what the grid shows, what evaluation and the relabel queue read.
_V3 = """
CREATE TABLE predictions (
    model_id      INTEGER NOT NULL REFERENCES model_versions(id) ON DELETE CASCADE,
    image_id      INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    predicted     INTEGER NOT NULL,
    confidence    REAL NOT NULL,
    probabilities BLOB NOT NULL,
    PRIMARY KEY (model_id, image_id)
) WITHOUT ROWID;
CREATE INDEX predictions_confidence ON predictions(model_id, confidence);
"""

# A model version may be "interrupted": its training process ended before it
# finished (engine.project.leftovers). SQLite cannot change a CHECK constraint,
# so the table is rebuilt (foreign keys are off while migrations run).
_V4 = (
    _model_versions_table(
        "model_versions_v4", "'training', 'done', 'failed', 'cancelled', 'interrupted'"
    )
    + """
INSERT INTO model_versions_v4 SELECT * FROM model_versions;
DROP TABLE model_versions;
ALTER TABLE model_versions_v4 RENAME TO model_versions;
"""
)

# A model version may carry a name the user gave it (shown beside "v3", which
# stays its identifier in file names) and a free-text note.
_V5 = """
ALTER TABLE model_versions ADD COLUMN title TEXT;
ALTER TABLE model_versions ADD COLUMN note TEXT;
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(connection: sqlite3.Connection) -> int:
    """Bring the database to `SCHEMA_VERSION`; return the version it had before.

    ``connection`` must be in autocommit mode (``isolation_level=None``) so that
    the explicit transaction here covers the DDL statements too. Two processes
    opening one old project at once migrate it once.
    """
    found = _schema_version(connection)
    if found == SCHEMA_VERSION:
        return found
    # Rebuilding a table drops it: with foreign keys on, that would delete the rows
    # that refer to it. They are checked once the new tables are in place.
    foreign_keys = connection.execute("PRAGMA foreign_keys").fetchone()[0]
    connection.execute("PRAGMA foreign_keys = OFF")
    try:
        return _migrate(connection)
    finally:
        connection.execute(f"PRAGMA foreign_keys = {int(foreign_keys)}")


def _migrate(connection: sqlite3.Connection) -> int:
    # executescript() would commit on its own; run statement by statement so
    # that all migrations land in this one transaction or none do.
    connection.execute("BEGIN IMMEDIATE")
    try:
        found = _schema_version(connection)  # another process may have migrated meanwhile
        for version in range(found, SCHEMA_VERSION):
            for statement in _statements(MIGRATIONS[version]):
                connection.execute(statement)
        if connection.execute("PRAGMA foreign_key_check").fetchone() is not None:
            raise sqlite3.DatabaseError("a migration broke a reference between tables")
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return found


def _schema_version(connection: sqlite3.Connection) -> int:
    found = int(connection.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise ProjectError(
            f"This project was written by a newer Linnaeus (schema {found}, this version "
            f"understands up to {SCHEMA_VERSION}). Update Linnaeus to open it."
        )
    return found


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (no ';' inside our literals)."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
