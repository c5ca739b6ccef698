"""Benchmark: planted near-duplicates found, and the duplicates of the wbc set.

Prints figures; asserts nothing.

1. Planted copies: ~300 images drawn from four shared sets (potato, malaria,
   brain_mri, wbc/test) are copied into a temporary folder beside one planted
   copy each: resized to 50-150%, re-encoded as JPEG at quality 60-90, and for
   half of them a small crop (0-5% of each side's length, off-centre) too.
   The folder is imported and `find_duplicates` run. Reported: the share of
   planted copies grouped with their original (by kind of copy), false groups
   (groups joining images of different originals) and seconds. In the same
   run, the plain way: imagehash.phash of each full image, pairs at most 10
   bits apart (imagededup's default for pHash) joined transitively, and exact
   file hashes only (what import did before).
   With ``--features``, the default model is trained first (it caches the
   backbone features of every image, as a user's first training does; a few
   minutes on a CPU) and the feature links join in.
2. wbc: the whole shared wbc folder (train: augmented copies of ~350
   originals; test: 71 originals) imported as it is; reported: groups found in
   train, images in them, and groups that leak between train and test.
3. malaria/train: 4,000 different cells; every image linked is a false link.

Nothing is written inside ../shared.

    nice -n 5 .venv/bin/python bench/bench_duplicates.py [--count 300] [--features]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image

from linnaeus.engine.dataset.duplicates import DuplicateReport
from linnaeus.engine.dataset.duplicates import find_duplicates
from linnaeus.engine.dataset.importer import import_images
from linnaeus.engine.images.imageio import content_hash
from linnaeus.engine.project.store import ProjectStore

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SOURCES = ("potato", "malaria/train", "brain_mri", "wbc/test")
SUFFIXES = {".png", ".jpg", ".jpeg"}
PLAIN_BITS = 10  # imagededup's default max_distance_threshold for PHash


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300, help="originals (default 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--features", action="store_true", help="compute backbone features")
    parser.add_argument("--no-wbc", action="store_true", help="skip the wbc part")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-duplicates-") as temp:
        planted(Path(temp), args.count, args.seed, args.features)
        if not args.no_wbc:
            wbc(Path(temp) / "wbc-project", args.features)
            distinct(Path(temp) / "malaria-project")


def planted(temp: Path, count: int, seed: int, features: bool) -> None:
    rng = random.Random(seed)
    originals = _draw(rng, count)
    images = temp / "images"
    kinds: dict[str, str] = {}  # copy path -> kind of copy
    family: dict[str, int] = {}  # path -> index of its original
    for index, source in enumerate(originals):
        name = f"{source.parent.name}/{index:04d}_{source.name}"
        (images / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, images / name)
        crop = index % 2 == 1
        copy = f"{source.parent.name}/{index:04d}_copy.jpg"
        (images / copy).write_bytes(_plant(Image.open(source), rng, crop))
        kinds[copy] = "resized+re-encoded+cropped" if crop else "resized+re-encoded"
        family[name] = family[copy] = index
    print(f"Planted copies: {len(originals)} originals from {', '.join(SOURCES)}, one copy each")
    started = time.perf_counter()
    store = ProjectStore.create(temp / "project", images)
    import_images(store)
    imported = time.perf_counter() - started
    if features:
        _compute_features(store)
    report = find_duplicates(store)
    print(f"  import (decode, hash, pHash) {imported:.1f} s; find_duplicates "
          f"{report.seconds:.2f} s for {report.images} images; "
          f"features: {report.features or 'none'}")  # fmt: skip
    _score("Linnaeus", _groups_of(report), kinds, family)
    _score("plain imagehash.phash", _plain_phash(images, sorted(family)), kinds, family)
    _score("exact file hash only", _exact(images, family), kinds, family)
    store.close()


def wbc(project: Path, features: bool) -> None:
    started = time.perf_counter()
    store = ProjectStore.create(project, SHARED / "wbc")
    import_images(store)
    imported = time.perf_counter() - started
    if features:
        _compute_features(store)
    report = find_duplicates(store)
    train = [g for g in report.groups if "train" in {i.path.split("/")[0] for i in g.images}]
    in_train = sum(sum(i.path.startswith("train/") for i in g.images) for g in train)
    leaking = [
        g for g in report.groups if {i.path.split("/")[0] for i in g.images} >= {"train", "test"}
    ]
    test_leaked = sum(sum(i.path.startswith("test/") for i in g.images) for g in leaking)
    total_train = len(store.images(status="ok")) - len(store.images(status="ok", split="test"))
    print(f"wbc ({report.images} images; import {imported:.1f} s, find_duplicates "
          f"{report.seconds:.2f} s; features: {report.features or 'none'})")  # fmt: skip
    print(f"  train/: {len(train)} groups holding {in_train} of {total_train} train images")
    sizes = np.array([len(g.images) for g in train]) if train else np.zeros(1)
    print(f"  group sizes: median {np.median(sizes):.0f}, max {sizes.max():.0f}; "
          f"kinds {sorted({k for g in train for k in g.kinds})}")  # fmt: skip
    print(f"  train/test leak: {len(leaking)} groups join train/ and test/ images "
          f"({test_leaked} of 71 test images have a copy in train/)")  # fmt: skip
    print(f"  groups joining images of different classes (surely false): "
          f"{_across_classes(_groups_of(report))} of {len(report.groups)}")  # fmt: skip
    paths = [image.path for image in store.images(status="ok")]
    plain = _plain_phash(SHARED / "wbc", paths)
    print(f"  plain imagehash.phash: {len(plain)} groups, {sum(map(len, plain))} images, "
          f"largest {max(map(len, plain), default=0)}, joining different classes: "
          f"{_across_classes(plain)}")  # fmt: skip
    store.close()


def distinct(project: Path) -> None:
    """malaria/train: 4,000 cells of different patients and fields, round on a plain
    background, where hashes say least: every image linked is a false link (unless
    the set itself holds copies)."""
    store = ProjectStore.create(project, SHARED / "malaria" / "train")
    import_images(store)
    report = find_duplicates(store)
    largest = max((len(group.images) for group in report.groups), default=0)
    print(f"malaria/train ({report.images} different cells): {report.duplicate_images} "
          f"linked in {len(report.groups)} groups (largest {largest}); "
          f"find_duplicates {report.seconds:.2f} s")  # fmt: skip
    store.close()


def _draw(rng: random.Random, count: int) -> list[Path]:
    per_set = count // len(SOURCES)
    drawn: list[Path] = []
    for name in SOURCES:
        files = sorted(p for p in (SHARED / name).rglob("*") if p.suffix.lower() in SUFFIXES)
        drawn += rng.sample(files, min(per_set, len(files)))
    return drawn


def _plant(image: Image.Image, rng: random.Random, crop: bool) -> bytes:
    """A resized (50-150%), re-encoded (JPEG 60-90) and maybe slightly cropped copy."""
    image = image.convert("RGB")
    width, height = image.size
    if crop:
        cut_x, cut_y = (int(side * rng.uniform(0.0, 0.05)) for side in (width, height))
        left, top = rng.randint(0, cut_x), rng.randint(0, cut_y)
        image = image.crop((left, top, width - (cut_x - left), height - (cut_y - top)))
    scale = rng.uniform(0.5, 1.5)
    image = image.resize((max(8, round(image.width * scale)), max(8, round(image.height * scale))))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=rng.randint(60, 90))
    return buffer.getvalue()


def _compute_features(store: ProjectStore) -> None:
    """Train the default (quick) model: it caches the backbone features of every
    readable image, as a user's first training does."""
    from linnaeus.engine.training.config import TrainConfig
    from linnaeus.engine.training.train import train

    started = time.perf_counter()
    train(store, TrainConfig())
    print(f"  first training (caches backbone features): {time.perf_counter() - started:.1f} s")


def _across_classes(groups: list[set[str]]) -> int:
    return sum(len({path.split("/")[1] for path in group}) > 1 for group in groups)


def _groups_of(report: DuplicateReport) -> list[set[str]]:
    return [{image.path for image in group.images} for group in report.groups]


def _plain_phash(images: Path, paths: Sequence[str]) -> list[set[str]]:
    """Pairs at most PLAIN_BITS apart by imagehash.phash of each full image,
    joined transitively (as most dedup scripts do)."""
    started = time.perf_counter()
    hashes = [imagehash.phash(Image.open(images / path)) for path in paths]
    parent = list(range(len(paths)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(paths)):
        for j in range(i + 1, len(paths)):
            if hashes[i] - hashes[j] <= PLAIN_BITS:
                parent[root(i)] = root(j)
    print(f"  plain imagehash.phash: {time.perf_counter() - started:.1f} s")
    return _sets(paths, [root(i) for i in range(len(paths))])


def _exact(images: Path, family: dict[str, int]) -> list[set[str]]:
    paths = sorted(family)
    return _sets(paths, [content_hash((images / p).read_bytes()) for p in paths])


def _sets(paths: Sequence[str], keys: Sequence[object]) -> list[set[str]]:
    groups: dict[object, set[str]] = {}
    for path, key in zip(paths, keys, strict=True):
        groups.setdefault(key, set()).add(path)
    return [group for group in groups.values() if len(group) > 1]


def _score(
    name: str, groups: list[set[str]], kinds: dict[str, str], family: dict[str, int]
) -> None:
    together = {path for group in groups for path in group if _with_original(path, group, family)}
    parts = []
    for kind in sorted(set(kinds.values())):
        copies = [p for p, k in kinds.items() if k == kind]
        found = sum(p in together for p in copies)
        parts.append(f"{kind} {found}/{len(copies)} ({found / len(copies):.0%})")
    found_all = sum(p in together for p in kinds)
    false_groups = [group for group in groups if len({family[p] for p in group}) > 1]
    false = len(false_groups)
    where = sorted({p.split("/")[0] for group in false_groups for p in group})
    print(f"  {name}: planted copies grouped with their original {found_all}/{len(kinds)} "
          f"({found_all / len(kinds):.0%}): {'; '.join(parts)}; false groups {false} "
          f"(joining different originals; in folders {', '.join(where) or '-'}) "
          f"of {len(groups)}")  # fmt: skip
    for group in false_groups if os.environ.get("SHOW_FALSE") else ():
        print("    false group:", sorted(group))


def _with_original(path: str, group: set[str], family: dict[str, int]) -> bool:
    return any(other != path and family[other] == family[path] for other in group)


if __name__ == "__main__":
    main()
