"""Project store: schema, classes, labels, history, undo/redo, atomicity."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from linnaeus.engine.errors import LabelError
from linnaeus.engine.errors import ProjectError
from linnaeus.engine.project import schema
from linnaeus.engine.project.database import DATABASE_NAME
from linnaeus.engine.project.folders import check_project_folder
from linnaeus.engine.project.label_edits import LabelChanges
from linnaeus.engine.project.label_edits import describe_labelling
from linnaeus.engine.project.store import ProjectStore
from tests.engine.conftest import add_images


def test_new_project_uses_wal_foreign_keys_and_current_schema(store: ProjectStore) -> None:
    assert store.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION


def test_project_inside_image_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    with pytest.raises(ProjectError, match="inside the image folder"):
        ProjectStore.create(tmp_path / "images" / "project", tmp_path / "images")


@pytest.mark.parametrize(
    ("where", "must_be_empty", "problem"),
    [
        ("new", True, None),
        ("empty", True, None),
        ("full", False, None),  # the command line may make a project beside other files
        ("full", True, "not empty"),
        ("images/sub", False, "inside the image folder"),
        ("project", False, "already holds"),
    ],
)
def test_project_folder_checks(
    tmp_path: Path, where: str, must_be_empty: bool, problem: str | None
) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "empty").mkdir()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / DATABASE_NAME).write_bytes(b"")
    folder, images = tmp_path / where, tmp_path / "images"
    if problem is None:
        check_project_folder(folder, images, must_be_empty=must_be_empty)
    else:
        with pytest.raises(ProjectError, match=problem):
            check_project_folder(folder, images, must_be_empty=must_be_empty)


def test_a_missing_image_folder_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="is not a folder"):
        ProjectStore.create(tmp_path / "project", tmp_path / "nowhere")
    assert not (tmp_path / "project").exists()


def test_opening_a_folder_that_is_not_a_project_says_so(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="not a Linnaeus project"):
        ProjectStore.open(tmp_path)


def test_a_newer_schema_is_refused_with_a_message(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    ProjectStore.create(tmp_path / "p", tmp_path / "images").close()
    with sqlite3.connect(tmp_path / "p" / DATABASE_NAME) as db:
        db.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    with pytest.raises(ProjectError, match="newer Linnaeus"):
        ProjectStore.open(tmp_path / "p")


def test_a_corrupt_database_gives_a_project_error(tmp_path: Path) -> None:
    (tmp_path / DATABASE_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ProjectError, match="Cannot open the project database"):
        ProjectStore.open(tmp_path)


def test_classes_get_colours_and_shortcuts_in_order(store: ProjectStore) -> None:
    names = [f"c{i}" for i in range(11)]
    for name in names:
        store.ensure_class(name)
    classes = store.classes()
    assert [c.name for c in classes] == names
    assert [c.shortcut for c in classes] == [*"123456789", "a", "b"]
    assert len({c.colour for c in classes[:10]}) == 10
    assert store.ensure_class("c3").id == classes[3].id


def test_set_label_undo_redo_and_history(store: ProjectStore) -> None:
    a, b = add_images(store, ["a.png", "b.png"])
    store.set_labels([a, b], "cat")
    store.set_labels([a], "dog")
    assert store.image(a).label == "dog"

    assert store.undo().description.startswith("label 1 image")
    assert store.image(a).label == "cat"
    store.undo()
    assert (store.image(a).label, store.image(b).label) == (None, None)
    assert store.undo() is None

    store.redo()
    assert (store.image(a).label, store.image(b).label) == ("cat", "cat")
    store.redo()
    assert store.image(a).label == "dog"
    assert store.redo() is None

    history = store.history(a)
    assert [(h.old_label, h.new_label, h.action) for h in history] == [
        ("cat", "dog", "redo"),
        (None, "cat", "redo"),
        ("cat", None, "undo"),
        ("dog", "cat", "undo"),
        ("cat", "dog", "set"),
        (None, "cat", "set"),
    ]
    assert all(h.source == "user" for h in history)


def test_each_edit_says_which_images_it_changed_and_their_classes(store: ProjectStore) -> None:
    a, b = add_images(store, ["a.png", "b.png"])
    store.set_labels([a], "cat")
    edit = store.set_labels([a, b], "cat")  # only b changes
    cat = store.class_named("cat").id
    assert edit.changes == LabelChanges((b,), (cat,))
    assert edit.description == "label 1 image(s) as cat"
    assert store.undo().changes == LabelChanges((b,), (None,))
    assert store.redo().changes == LabelChanges((b,), (cat,))
    assert store.undoable_edit().changes == LabelChanges()  # looked up, not done
    assert "changes" not in edit.summary()


def test_edit_descriptions() -> None:
    assert describe_labelling({1: "cat", 2: "cat"}, "user") == "label 2 image(s) as cat"
    assert describe_labelling({1: "cat", 2: "dog"}, "user", 1) == (
        "label 1 image(s) as several classes"
    )
    assert describe_labelling({1: None}, "user") == "label 1 image(s) as unlabelled"
    assert describe_labelling({1: "cat"}, "model-suggestion").startswith("accept suggestion")


def test_a_new_edit_clears_redo(store: ProjectStore) -> None:
    (a,) = add_images(store, ["a.png"])
    store.set_labels([a], "cat")
    store.undo()
    store.set_labels([a], "dog")
    assert store.redo() is None
    assert store.image(a).label == "dog"


def test_unchanged_labels_make_no_edit(store: ProjectStore) -> None:
    (a,) = add_images(store, ["a.png"])
    store.set_labels([a], "cat")
    assert store.set_labels([a], "cat") is None


def test_import_edits_are_not_undone(store: ProjectStore) -> None:
    (a,) = add_images(store, ["a.png"])
    store.apply_labels({a: "cat"}, source="import")
    assert store.undo() is None
    assert store.image(a).label == "cat"


def test_unknown_image_is_a_label_error(store: ProjectStore) -> None:
    with pytest.raises(LabelError, match="no image with id 99"):
        store.set_labels([99], "cat")
    with pytest.raises(LabelError, match=r"no image 'nope\.png'"):
        store.image_by_path("nope.png")


def test_rename_merge_delete_classes(store: ProjectStore) -> None:
    a, b, c = add_images(store, ["a.png", "b.png", "c.png"])
    store.apply_labels({a: "cat", b: "kitten", c: "dog"})
    store.rename_class("dog", "hound")
    assert store.image(c).label == "hound"
    with pytest.raises(LabelError, match="already exists"):
        store.rename_class("hound", "cat")

    store.merge_classes("kitten", "cat")
    assert store.image(b).label == "cat"
    assert [cl.name for cl in store.classes()] == ["cat", "hound"]
    store.undo()  # the merge comes back, class included
    assert store.image(b).label == "kitten"

    store.delete_class("hound")
    assert store.image(c).label is None
    store.undo()
    assert store.image(c).label == "hound"


def test_label_split_counts(store: ProjectStore) -> None:
    a, b, _c = add_images(store, ["a.png", "b.png", "c.png"])
    store.set_labels([a, b], "cat")
    store.set_splits({a: "train", b: "test"}, "random")
    assert store.label_split_counts() == {
        "cat": {"train": 1, "test": 1},
        "(unlabelled)": {"(none)": 1},
    }


def test_non_utf8_paths_round_trip(store: ProjectStore) -> None:
    odd = b"latin1_\xe9t\xe9.png".decode("utf-8", "surrogateescape")
    (a,) = add_images(store, [odd])
    assert store.image(a).path == odd
    assert store.image_by_path(odd).id == a


KILLER = textwrap.dedent(
    """
    import sys, time
    from linnaeus.engine.project.store import ProjectStore
    store = ProjectStore.open(sys.argv[1])
    ids = store.image_ids()
    def report(progress):
        print(progress.done, flush=True)
        time.sleep(0.2)
    store.set_labels(ids, "batch", on_progress=report)
    print("finished", flush=True)
    """
)


def test_killed_batch_relabel_leaves_all_or_nothing(store: ProjectStore) -> None:
    ids = add_images(store, [f"img{i:05}.png" for i in range(3000)])
    store.set_labels(ids, "before")
    process = subprocess.Popen(
        [sys.executable, "-c", KILLER, str(store.project_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    first = process.stdout.readline()  # one chunk written, the rest to come
    assert first.strip() == "500"
    process.kill()
    process.wait()

    reopened = ProjectStore.open(store.project_dir)
    labels = {reopened.image(i).label for i in ids}
    reopened.close()
    assert labels == {"before"}  # the batch was not committed: none of it is there


def test_a_version_1_project_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    database = tmp_path / DATABASE_NAME
    with sqlite3.connect(database) as db:
        for statement in schema._statements(schema.MIGRATIONS[0]):
            db.execute(statement)
        db.execute("PRAGMA user_version = 1")
        db.execute("INSERT INTO meta VALUES ('image_root', '/images')")
        db.execute("INSERT INTO images (path, status, added_at) VALUES ('a.png', 'ok', 'now')")
    store = ProjectStore.open(tmp_path)
    assert store.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    assert store.image_by_path("a.png").status == "ok"
    assert store.execute("SELECT count(*) FROM model_versions").fetchone()[0] == 0
    store.close()
