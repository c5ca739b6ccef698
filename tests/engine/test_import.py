"""Import: layouts, label tables, re-import, bad files, untouched image folders."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from linnaeus.engine.dataset.importer import ImportOptions
from linnaeus.engine.dataset.importer import import_images
from linnaeus.engine.dataset.labels_csv import TableProblem
from linnaeus.engine.errors import ImportSourceError
from linnaeus.engine.project.store import ProjectStore
from tests.image_factory import make_bad_corpus
from tests.image_factory import write_image

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def folder_hashes(root: Path) -> dict[bytes, str]:
    """Every file under root (by raw path) with the hash of its bytes."""
    result = {}
    for folder, _, files in os.walk(os.fsencode(root)):
        for name in files:
            path = os.path.join(folder, name)
            if os.path.islink(path) and not os.path.exists(path):
                result[path] = "link:" + os.fsdecode(os.readlink(path))
                continue
            with open(path, "rb") as handle:
                result[path] = hashlib.sha256(handle.read()).hexdigest()
    return result


def make_tree(root: Path, spec: dict[str, int], seed: int = 0) -> None:
    """spec maps a folder (relative, '' for root) to how many images to draw in it."""
    for n, (folder, count) in enumerate(spec.items()):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            write_image(root / folder / f"img_{i:03}.png", size=(24, 20), seed=seed + 1000 * n + i)


def new_project(tmp_path: Path, root: Path, **options: object) -> tuple[ProjectStore, object]:
    store = ProjectStore.create(tmp_path / "project", root)
    report = import_images(store, ImportOptions(**options))
    return store, report


def test_class_folders(tmp_path: Path) -> None:
    root = tmp_path / "images"
    make_tree(root, {"cat": 20, "dog": 10})
    store, report = new_project(tmp_path, root)
    assert report.layout == "2 class sub-folders"
    assert report.added == 30 and not report.unreadable
    assert {c.name for c in store.classes()} == {"cat", "dog"}
    assert store.image_by_path("dog/img_003.png").label == "dog"
    assert sum(report.counts["cat"].values()) == 20
    assert set(report.counts["cat"]) == {"train", "val", "test"}


def test_split_folders_inside_a_wrapper_folder(tmp_path: Path) -> None:
    root = tmp_path / "images"
    make_tree(root, {"chest_xray/train/NORMAL": 20, "chest_xray/train/PNEUMONIA": 20,
                     "chest_xray/test/NORMAL": 5, "chest_xray/test/PNEUMONIA": 5})  # fmt: skip
    store, report = new_project(tmp_path, root)
    assert report.layout == "split folders (train/test) with 2 class sub-folders"
    test_images = store.images(split="test")
    assert {i.path.split("/")[1] for i in test_images} == {"test"}  # test folder kept as test
    assert len(test_images) == 10
    val = store.images(split="val")
    assert val and all(i.path.split("/")[1] == "train" for i in val)  # val carved from train
    assert store.image_by_path("chest_xray/test/NORMAL/img_001.png").label == "NORMAL"


def test_flat_folder_is_unlabelled(tmp_path: Path) -> None:
    root = tmp_path / "images"
    make_tree(root, {"": 6})
    store, report = new_project(tmp_path, root)
    assert report.layout == "one flat folder of unlabelled images"
    assert report.counts.keys() == {"(unlabelled)"}
    assert store.classes() == []


def test_label_table_with_groups(tmp_path: Path) -> None:
    root = tmp_path / "images"
    make_tree(root, {"": 40})
    rows = ["filename,diagnosis,patient_id"]
    rows += [f"img_{i:03}.png,{'tumour' if i % 2 else 'normal'},P{i // 4}" for i in range(40)]
    rows.append("not_there.png,normal,P99")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    store, report = new_project(tmp_path, root)  # the CSV is found on its own
    assert "labels from labels.csv" in report.layout
    assert report.table_problems == [
        TableProblem((42,), f"row 42: no image not_there.png under {root}")
    ]
    assert store.image_by_path("img_003.png").label == "tumour"
    splits_of_patient: dict[str, set[str]] = {}
    for image in store.images():
        splits_of_patient.setdefault(image.group_id, set()).add(image.split)
    assert len(splits_of_patient) == 10
    assert all(len(s) == 1 for s in splits_of_patient.values())


def test_group_regex_keeps_patients_together(tmp_path: Path) -> None:
    root = tmp_path / "images"
    for label in "ab":
        (root / label).mkdir(parents=True)
    for i in range(60):
        write_image(
            root / ("a" if i % 3 else "b") / f"C{i}P{i % 12}_cell.png", size=(16, 16), seed=i
        )
    store, _ = new_project(tmp_path, root, group_regex=r"P(\d+)_")
    seen: dict[str, set[str]] = {}
    for image in store.images():
        seen.setdefault(image.group_id, set()).add(image.split)
    assert len(seen) == 12 and all(len(s) == 1 for s in seen.values())


def test_reimport_adds_marks_missing_and_follows_renames(tmp_path: Path) -> None:
    root = tmp_path / "images"
    make_tree(root, {"cat": 5, "dog": 5})
    store, _ = new_project(tmp_path, root)
    moved = store.image_by_path("cat/img_001.png")
    store.set_labels([moved.id], "dog")  # the user's correction
    (root / "cat" / "img_001.png").rename(root / "cat" / "renamed.png")
    (root / "dog" / "img_004.png").unlink()
    write_image(root / "dog" / "new.png", size=(30, 30), seed=123)

    report = import_images(store)
    assert (report.added, report.renamed, report.missing) == (1, 1, 1)
    assert report.unchanged == 8
    again = store.image_by_path("cat/renamed.png")
    assert (again.id, again.label, again.split) == (moved.id, "dog", moved.split)
    assert store.image_by_path("dog/img_004.png").status == "missing"
    assert store.image_by_path("dog/new.png").label == "dog"
    assert store.image_by_path("dog/new.png").split in {"train", "val", "test"}


def test_bad_files_are_listed_and_import_carries_on(tmp_path: Path) -> None:
    root = tmp_path / "images"
    expected = make_bad_corpus(root / "unsorted")
    before = folder_hashes(root)
    store, report = new_project(tmp_path, root)
    unreadable = dict(report.unreadable)
    for path, outcome in expected.items():
        key = f"unsorted/{path}"
        if outcome == "ok":
            assert store.image_by_path(key).status == "ok", unreadable.get(key)
        else:
            assert unreadable.get(key), key
    assert folder_hashes(root) == before


def test_image_folder_is_byte_identical_after_import_and_export(tmp_path: Path) -> None:
    from linnaeus.engine.dataset.export_labels import export_csv
    from linnaeus.engine.dataset.export_labels import export_tree

    root = tmp_path / "images"
    make_tree(root, {"cat": 4, "CON": 3})
    os.chmod(root, 0o555)  # a read-only image folder is fine
    try:
        before = folder_hashes(root)
        store, _ = new_project(tmp_path, root)
        export_csv(store, tmp_path / "labels.csv")
        report = export_tree(store, tmp_path / "sorted")
        assert folder_hashes(root) == before
    finally:
        os.chmod(root, 0o755)
    assert report.written == 7
    assert sorted(p.name for p in (tmp_path / "sorted").iterdir()) == ["_CON", "cat"]


def test_missing_image_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    store = ProjectStore.create(tmp_path / "project", tmp_path / "images")
    shutil.rmtree(tmp_path / "images")
    with pytest.raises(ImportSourceError, match="cannot be found"):
        import_images(store)


@pytest.mark.skipif(not (SHARED_DATA / "brain_mri").is_dir(), reason="shared data not present")
def test_real_mixed_format_folder_imports_fully(tmp_path: Path) -> None:
    root = SHARED_DATA / "brain_mri"
    files = sum(len(f) for _, _, f in os.walk(root))
    store, report = new_project(tmp_path, root)
    assert report.unreadable == []
    assert report.found == files - report.skipped_files
    assert {c.name for c in store.classes()} >= {"yes", "no"}
    assert sum(sum(v.values()) for v in report.counts.values()) == report.found
