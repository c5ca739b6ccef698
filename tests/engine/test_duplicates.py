"""Duplicate images: planted copies are grouped, splits keep groups together, leaks are told."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from linnaeus.engine.cli.main import main
from linnaeus.engine.dataset.duplicates import duplicate_groups
from linnaeus.engine.dataset.duplicates import find_duplicates
from linnaeus.engine.dataset.duplicates import leak_warning
from linnaeus.engine.dataset.importer import ImportOptions
from linnaeus.engine.dataset.importer import import_images
from linnaeus.engine.images.array_cache import ArrayCache
from linnaeus.engine.images.array_cache import features_folder
from linnaeus.engine.images.perceptual_hash import VIEWS
from linnaeus.engine.images.perceptual_hash import hash_distance
from linnaeus.engine.images.perceptual_hash import hash_table
from linnaeus.engine.images.perceptual_hash import perceptual_hashes
from linnaeus.engine.project import image_files
from linnaeus.engine.project.image_files import HashedImage
from linnaeus.engine.project.store import ProjectStore

ORIGINALS = 12


def scene(seed: int, side: int = 96) -> np.ndarray:
    """A smooth random picture (blobs of colour), different for every seed."""
    coarse = np.random.default_rng(seed).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize((side, side), Image.Resampling.BICUBIC)
    return np.asarray(image)


def jpeg_copy(pixels: np.ndarray, scale: float, quality: int) -> bytes:
    image = Image.fromarray(pixels)
    image = image.resize((round(image.width * scale), round(image.height * scale)))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """Originals in two class folders, each with a resized, re-encoded copy; one
    exact copy of a file."""
    root = tmp_path / "images"
    for index in range(ORIGINALS):
        folder = root / ("a" if index % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        pixels = scene(index)
        Image.fromarray(pixels).save(folder / f"img{index:02d}.png")
        scale, quality = (0.6, 65) if index % 3 else (1.4, 85)
        (folder / f"img{index:02d}_copy.jpg").write_bytes(jpeg_copy(pixels, scale, quality))
    (root / "b" / "img00_same.png").write_bytes((root / "b" / "img00.png").read_bytes())
    return root


def imported(root: Path, project: Path, **options: object) -> ProjectStore:
    store = ProjectStore.create(project, root)
    import_images(store, ImportOptions(**options))  # type: ignore[arg-type]
    return store


def family(path: str) -> str:
    return path.split("/")[-1][:5]


def hashes_of(pixels: np.ndarray) -> np.ndarray:
    """The image's (pHash, dHash) of each view, VIEWS x 2."""
    table, known = hash_table([perceptual_hashes(pixels)])
    assert known.all()
    return table[0]


def test_perceptual_hashes_survive_resizing_and_jpeg_but_not_another_picture() -> None:
    pixels = scene(1)
    copy = np.asarray(Image.open(io.BytesIO(jpeg_copy(pixels, 0.5, 60))))
    same, other = hashes_of(pixels), hashes_of(scene(2))
    assert hash_distance(same[0], hashes_of(copy)[0]).max() <= 8
    assert hash_distance(same[0], other[0]).max() > 8


def test_a_turned_or_mirrored_copy_matches_a_view_of_the_original() -> None:
    pixels = scene(4)
    for turned in (np.rot90(pixels), np.fliplr(pixels), np.rot90(np.flipud(pixels), 3)):
        copy = hashes_of(np.ascontiguousarray(turned))[0]
        distances = hash_distance(copy[None, :], hashes_of(pixels)).max(axis=1)
        assert distances.min() <= 2


def test_planted_copies_are_grouped_with_their_original(planted: Path, tmp_path: Path) -> None:
    with imported(planted, tmp_path / "project") as store:
        report = find_duplicates(store)
    assert report.images == 2 * ORIGINALS + 1
    assert len(report.groups) == ORIGINALS
    for group in report.groups:
        assert len({family(image.path) for image in group.images}) == 1  # no false links
    biggest = report.groups[0]
    assert len(biggest.images) == 3 and set(biggest.kinds) == {"exact", "perceptual"}


def test_a_duplicate_group_lands_in_one_split(planted: Path, tmp_path: Path) -> None:
    with imported(planted, tmp_path / "project", seed=3) as store:
        report = find_duplicates(store)
        splits = {image.split for image in store.images()}
    assert len(splits) > 1  # the images were spread over the splits...
    assert not report.leaking  # ...but never a group
    assert leak_warning(report.groups) is None


def test_a_new_copy_follows_the_split_of_its_original(planted: Path, tmp_path: Path) -> None:
    store = imported(planted, tmp_path / "project", seed=1)
    with store:
        original = store.image_by_path("a/img05.png")
        (planted / "a" / "img05_again.jpg").write_bytes(jpeg_copy(scene(5), 1.2, 75))
        import_images(store)
        assert store.image_by_path("a/img05_again.jpg").split == original.split


def test_duplicates_across_splits_are_a_leak(planted: Path, tmp_path: Path, capsys) -> None:
    project = tmp_path / "project"
    with imported(planted, project) as store:
        pair = [store.image_by_path(p).id for p in ("a/img01.png", "a/img01_copy.jpg")]
        store.set_splits({pair[0]: "train", pair[1]: "test"}, "random")
        report = find_duplicates(store)
    assert [len(group.images) for group in report.leaking] == [2]
    assert report.leaking[0].splits == ("train", "test")
    assert "Leak: 1 group of duplicate images (2 images) sits" in str(leak_warning(report.groups))
    assert main(["duplicates", "--project", str(project)]) == 0
    out = capsys.readouterr().out
    assert "Warning: Leak" in out and "LEAK across train/test" in out


def test_cli_json_names_each_path_and_split(planted: Path, tmp_path: Path, capsys) -> None:
    project = tmp_path / "project"
    imported(planted, project).close()
    assert main(["duplicates", "--project", str(project), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 2 * ORIGINALS + 1 and result["features"] is None
    assert len(result["groups"]) == ORIGINALS and result["leaking_groups"] == 0
    group = result["groups"][0]
    assert set(group) == {"kinds", "splits", "leaks", "images"}
    assert set(group["images"][0]) == {"id", "path", "split", "label"}
    assert {image["path"] for image in group["images"]} == {
        "b/img00.png", "b/img00_copy.jpg", "b/img00_same.png",
    }  # fmt: skip


def test_images_imported_before_hashes_were_kept_get_them(planted: Path, tmp_path: Path) -> None:
    with imported(planted, tmp_path / "project") as store:
        store.execute("UPDATE images SET perceptual_hashes = NULL")
        report = find_duplicates(store)
        hashed = image_files.hashed_images(store)
    assert len(report.groups) == ORIGINALS
    assert all(image.perceptual_hashes is not None for image in hashed)


def test_cached_backbone_features_link_what_the_hashes_miss(store: ProjectStore) -> None:
    root = store.image_root
    for index in range(3):
        Image.fromarray(scene(40 + index)).save(root / f"cell{index}.png")
    import_images(store)
    images = image_files.hashed_images(store)
    assert duplicate_groups(images) == []
    cache = ArrayCache(features_folder(store.project_dir) / "backbone-160", (4,), "float32")
    vectors = [[1, 0, 0, 0], [0.99, 0.05, 0, 0], [0, 1, 0, 0]]
    cache.put({i.content_hash: np.array(v) for i, v in zip(images, vectors, strict=True)})
    report = find_duplicates(store)
    assert report.features == "backbone-160"
    assert [(len(g.images), g.kinds) for g in report.groups] == [(2, ("features",))]


def test_look_alikes_in_a_crowd_are_not_copies_but_a_copy_stands_out() -> None:
    """Forty cells all within cosine 0.97 of each other (malaria's plain round
    cells) link nothing; a copy far closer to its original than to any other is
    linked, however crowded its neighbourhood."""
    rng = np.random.default_rng(0)
    centre = np.zeros(64, np.float32)
    centre[0] = 1.0
    crowd = centre + rng.normal(0, 0.018, (40, 64)).astype(np.float32)
    copy = crowd[0] + rng.normal(0, 0.001, 64).astype(np.float32)
    features = np.vstack([crowd, copy])
    cosines = features @ features.T / np.outer(*[np.linalg.norm(features, axis=1)] * 2)
    assert cosines[:40, :40].min() > 0.96  # every cell "alike" by cosine alone
    images = [
        HashedImage(i, f"cell{i}.png", f"hash{i}", None, None, None, None)
        for i in range(len(features))
    ]

    groups = duplicate_groups(images, features)

    assert [[m.path for m in g.images] for g in groups] == [["cell0.png", "cell40.png"]]


def test_training_and_its_model_card_warn_of_a_leak(tmp_path: Path, capsys) -> None:
    from linnaeus.engine.cli.train import print_training
    from linnaeus.engine.cli.train import training_summary
    from linnaeus.engine.report.model_card import write_report
    from linnaeus.engine.training.train import train
    from tests.training_factory import SEED_CNN
    from tests.training_factory import make_shapes_project

    store = make_shapes_project(tmp_path, {"disk": 6, "square": 6})
    with store:
        trained = store.images(split="train")[0]
        copy = f"{trained.path.rsplit('.', 1)[0]}_copy.png"
        (store.image_root / copy).write_bytes((store.image_root / trained.path).read_bytes())
        import_images(store)
        store.set_splits({store.image_by_path(copy).id: "test"}, "random")
        result = train(store, SEED_CNN)
        card = write_report(store, result.version, tmp_path / "card.html").read_text()
    (warning,) = result.warnings
    assert warning.startswith("Leak: 1 group of duplicate images (2 images) sits")
    print_training(training_summary(result))
    assert f"Warning: {warning}" in capsys.readouterr().out
    assert "Leak: 1 group of duplicate images" in card


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_every_decoded_kind_of_image_has_hashes(channels: int, dtype: type) -> None:
    eight = scene(3)[..., :1].repeat(channels, axis=2)
    pixels = eight.astype(dtype) * (257 if dtype == np.uint16 else 1)
    assert perceptual_hashes(pixels) == perceptual_hashes(eight)
    assert len(perceptual_hashes(np.zeros((1, 1, channels), dtype))) == VIEWS * 16


def test_keep_together_moves_a_leaking_group_into_one_split(
    planted: Path, tmp_path: Path, capsys
) -> None:
    project = tmp_path / "project"
    with imported(planted, project) as store:
        ids = [
            store.image_by_path(f"a/img0{n}{s}").id for n in (1, 3) for s in (".png", "_copy.jpg")
        ]
        store.set_splits({ids[0]: "train", ids[1]: "test"}, "random")
        store.set_splits({ids[2]: "train", ids[3]: "test"}, "folder")  # given by the user
    assert main(["duplicates", "--project", str(project), "--keep-together", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["moved"] == [{"path": "a/img01_copy.jpg", "from": "test", "to": "train"}]
    assert result["unfixable_groups"] == 1 and result["leaking_groups"] == 1
