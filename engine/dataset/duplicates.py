"""Duplicate images, and the leaks they make between train, validation and test.

Two images are linked when their files are identical (content hash), when both
their perceptual hashes differ in few bits (a resized or re-encoded copy, also
turned by quarter turns or mirrored; `engine.images.perceptual_hash`, stored at
import), or when the backbone features a training cached for both point the
same way (cosine; a cropped or shifted copy). Copies turned by other angles
mostly escape all three.
Linked images form a group (connected components over the links). A group whose
images sit in more than one split is a leak: the model is validated or tested on
copies of images it trained on, and its figures flatter it. Import keeps each
group in one split from then on (`split_keys`); training and the model card warn
of the leaks already there, and `keep_groups_together` moves them into one split.

Every pair is compared, block by block over the upper triangle: for 10,000 images
about 4 s by their hashes (8 views each) and 9 s more by 1,280 features each (on
a shared 2-core CPU).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from linnaeus.engine.errors import ImageReadError
from linnaeus.engine.images.array_cache import ArrayCache
from linnaeus.engine.images.array_cache import features_folder
from linnaeus.engine.images.imageio import read_image
from linnaeus.engine.images.perceptual_hash import VIEWS
from linnaeus.engine.images.perceptual_hash import hash_distance
from linnaeus.engine.images.perceptual_hash import hash_table
from linnaeus.engine.images.perceptual_hash import perceptual_hashes
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import Progress
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import check_cancelled
from linnaeus.engine.progress import ignore_progress
from linnaeus.engine.project import image_files
from linnaeus.engine.project import lock as project_lock
from linnaeus.engine.project.image_files import HashedImage
from linnaeus.engine.project.store import SPLITS
from linnaeus.engine.project.store import ProjectStore

log = logging.getLogger(__name__)

# Images whose pHash and dHash are each at most NEAR_HASH_BITS apart (of 64) are
# copies; an image and a turned or mirrored view of another, at most
# TURNED_HASH_BITS. Resized (50-150%) and re-encoded (JPEG 60-90) copies stay within
# 4 bits of both (200 of 200 from four shared sets); slightly cropped ones drift
# further. Wider cuts find more cropped copies but link different cells that share a
# plain round layout: of malaria's 4,000 different cells, 8 bits linked 449 (1,279
# with the views at 8 too), 6 bits 64, 4 bits 10; pHash alone also linked hundreds
# of wbc's cells across classes (bench/bench_duplicates.py). The backbone features
# find more of the cropped copies.
NEAR_HASH_BITS = 6
TURNED_HASH_BITS = 4
# Backbone features at least this close (cosine) are copies: on the planted
# copies, 0.96 links no two different images that the hashes did not already
# link; at 0.95, wbc's cells chain into groups of hundreds. Two more conditions keep
# look-alikes apart (Lowe's ratio test): the two must be each other's nearest
# neighbours (`_nearest_rows`), and their cosine distance at most RATIO times the
# distance to either one's next nearest image: a copy stands out from the crowd,
# a plain round cell does not. Without them a patient-grouped malaria project
# (2,000 cells) showed a group of 224 cells of both classes and a false leak
# warning; with them, 10 pairs and no leak, while the planted copies found stay
# 271-273 of 296 (bench/bench_duplicates.py --features).
NEAR_COSINE = 0.96
RATIO = 0.5
LINK_KINDS = ("exact", "perceptual", "features")  # how two images were found alike
_GIVEN = ("folder", "csv")  # split sources the user chose: never moved
_ROWS = 512  # hashes compared at once: 512 x N bit counts


@dataclass(frozen=True)
class DuplicateImage:
    """One image of a duplicate group."""

    image_id: int
    path: str
    split: str | None
    label: str | None


@dataclass(frozen=True)
class DuplicateGroup:
    """Images found to be copies of each other, and how they were found."""

    images: tuple[DuplicateImage, ...]
    kinds: tuple[str, ...]  # of LINK_KINDS: the kinds of link that joined them

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits its images are in, in train/val/test order."""
        present = {image.split for image in self.images}
        return tuple(split for split in SPLITS if split in present)

    @property
    def leaks(self) -> bool:
        """Whether its images sit in more than one split."""
        return len(self.splits) > 1


@dataclass(frozen=True)
class DuplicateReport:
    """The duplicate groups of a project, largest first."""

    groups: tuple[DuplicateGroup, ...]
    images: int  # readable images compared
    features: str | None  # the feature cache compared (its folder's name), None: none yet
    seconds: float

    @property
    def leaking(self) -> tuple[DuplicateGroup, ...]:
        return tuple(group for group in self.groups if group.leaks)

    @property
    def duplicate_images(self) -> int:
        """Images that have at least one copy."""
        return sum(len(group.images) for group in self.groups)


def leak_warning(groups: Sequence[DuplicateGroup]) -> str | None:
    """What a user reads about leaking groups (None when there are none)."""
    leaking = [group for group in groups if group.leaks]
    if not leaking:
        return None
    images = sum(len(group.images) for group in leaking)
    groups = f"{len(leaking):,} groups" if len(leaking) > 1 else "1 group"
    return (
        f"Leak: {groups} of duplicate images ({images:,} images) "
        f"{'sit' if len(leaking) > 1 else 'sits'} in more "
        "than one of train, validation and test, so the model is checked on copies of "
        "images it trained on and its validation and test figures flatter it. "
        "Show duplicates (or `linnaeus duplicates`) lists them; `linnaeus duplicates "
        "--keep-together` moves each group into one split."
    )


def leaks_among(
    store: ProjectStore, splits: Mapping[int, str], *, cancel: CancelToken | None = None
) -> tuple[DuplicateGroup, ...]:
    """The duplicate groups that leak among these images (image id -> the split a
    model version used it in): what a training and its model card warn of."""
    leaking = []
    for group in find_duplicates(store, cancel=cancel).groups:
        members = tuple(
            replace(image, split=splits[image.image_id])
            for image in group.images
            if image.image_id in splits
        )
        kept = DuplicateGroup(members, group.kinds)
        if kept.leaks:
            leaking.append(kept)
    return tuple(leaking)


@dataclass(frozen=True)
class KeptTogether:
    """What `keep_groups_together` changed."""

    moved: dict[int, tuple[str | None, str]]  # image id -> (split before, split now)
    unfixable: int  # leaking groups whose splits the user's folders or label table fixed


@project_lock.holding_lock("moving duplicates into one split")
def keep_groups_together(
    store: ProjectStore,
    *,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> KeptTogether:
    """Move the images of every leaking group into one split, holding the project's
    lock: the split their folders or label table gave some of them, else the one
    most of them are in (ties: training first, so validation and test only lose
    images). A group whose given splits differ is left as it is, and counted."""
    moved: dict[int, tuple[str | None, str]] = {}
    unfixable = 0
    for group in find_duplicates(store, on_progress=on_progress, cancel=cancel).leaking:
        records = [store.image(image.image_id) for image in group.images]
        given = {r.split for r in records if r.split_source in _GIVEN and r.split}
        if len(given) > 1:
            unfixable += 1
            continue
        counts = {split: sum(r.split == split for r in records) for split in group.splits}
        target = given.pop() if given else max(group.splits, key=counts.__getitem__)
        moved |= {r.id: (r.split, target) for r in records if r.split != target}
    store.set_splits({image_id: split for image_id, (_, split) in moved.items()}, "random")
    return KeptTogether(moved, unfixable)


def find_project_duplicates(
    project_dir: Path,
    *,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> DuplicateReport:
    """`find_duplicates` over its own connection to the project, so it may run on a
    worker thread (the window's duplicates filter)."""
    with ProjectStore.open(project_dir) as store:
        return find_duplicates(store, on_progress=on_progress, cancel=cancel)


def find_duplicates(
    store: ProjectStore,
    *,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> DuplicateReport:
    """Group the project's readable images that are copies of each other, taking
    the perceptual hashes of images imported before they were kept."""
    started = time.monotonic()
    images = fill_perceptual_hashes(store, on_progress=on_progress, cancel=cancel)
    features, source = cached_features(store, [image.content_hash for image in images])
    on_progress(Progress("compare", 0, 1, f"Comparing {len(images):,} images"))
    groups = duplicate_groups(images, features, cancel=cancel)
    on_progress(Progress("compare", 1, 1, f"{len(groups):,} groups of duplicates"))
    return DuplicateReport(tuple(groups), len(images), source, time.monotonic() - started)


def duplicate_groups(
    images: Sequence[HashedImage],
    features: np.ndarray | None = None,
    *,
    cancel: CancelToken | None = None,
) -> list[DuplicateGroup]:
    """The groups of two or more linked ``images``, largest first; ``features``
    (N x D, rows of NaN where unknown) adds links by cosine."""
    links = image_links(images, features, cancel=cancel)
    members, kinds = _components(len(images), links)
    groups = [
        DuplicateGroup(
            tuple(_member(images[i]) for i in sorted(indices, key=lambda i: images[i].path)),
            tuple(kind for kind in LINK_KINDS if kind in kinds[root]),
        )
        for root, indices in members.items()
        if len(indices) > 1
    ]
    groups.sort(key=lambda group: (-len(group.images), group.images[0].path))
    return groups


def image_links(
    images: Sequence[HashedImage],
    features: np.ndarray | None = None,
    *,
    cancel: CancelToken | None = None,
) -> dict[str, np.ndarray]:
    """Pairs of linked images (K x 2 index arrays, first < second) by kind of link."""
    links = {"exact": _exact_pairs([image.content_hash for image in images])}
    table, known = hash_table([image.perceptual_hashes for image in images])
    phash, dhash = table[..., 0], table[..., 1]  # N x VIEWS

    def near(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Pairs whose pHash and dHash agree, the first image as it is, the second
        as it is or turned or mirrored."""
        found_i, found_j = [], []
        for view in range(VIEWS):
            bits = NEAR_HASH_BITS if view == 0 else TURNED_HASH_BITS
            close = hash_distance(phash[start:stop, :1], phash[None, start:, view])
            i, j = np.nonzero(close <= bits)  # few: dHash is compared for these alone
            i, j = i + start, j + start
            agree = hash_distance(dhash[i, 0], dhash[j, view]) <= bits
            found_i.append(i[agree])
            found_j.append(j[agree])
        return np.concatenate(found_i), np.concatenate(found_j)

    links["perceptual"] = _close_pairs(near, known, cancel)
    if features is not None:
        unit, present = _unit_rows(features)

        nearest, runner_up = _nearest_rows(unit, present, cancel)

        def alike(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
            i, j = np.nonzero(unit[start:stop] @ unit[start:].T >= NEAR_COSINE)
            i, j = i + start, j + start
            mutual = (nearest[i] == j) & (nearest[j] == i)
            distance = 1 - np.sum(unit[i] * unit[j], axis=1)
            apart = distance <= RATIO * (1 - np.maximum(runner_up[i], runner_up[j]))
            keep = mutual & apart
            return i[keep], j[keep]

        links["features"] = _close_pairs(alike, present, cancel)
    return links


def split_keys(images: Sequence[HashedImage], features: np.ndarray | None = None) -> list[str]:
    """A key per image that the split keeps together: images of one patient group
    (``group_id``) or linked as duplicates share one."""
    links = image_links(images, features)
    group_of: dict[str, int] = {}
    same_group = [
        (group_of.setdefault(image.group_id, index), index)
        for index, image in enumerate(images)
        if image.group_id
    ]
    links["group"] = np.array(same_group, np.int64).reshape(-1, 2)
    members, _ = _components(len(images), links)
    key = [""] * len(images)
    for indices in members.values():
        first = images[min(indices)]
        name = f"group:{first.group_id}" if first.group_id else f"content:{first.content_hash}"
        for index in indices:
            key[index] = name
    return key


def cached_features(
    store: ProjectStore, content_hashes: Sequence[str | None]
) -> tuple[np.ndarray | None, str | None]:
    """The backbone features a training cached for these contents (N x D, NaN rows
    for those it did not see) and the cache's name; (None, None) before any."""
    folders = features_folder(store.project_dir)
    indexes = sorted(folders.glob("*/index.json"), key=lambda p: p.stat().st_mtime)
    cache = ArrayCache.existing(indexes[-1].parent) if indexes else None
    if cache is None or len(cache.shape) != 1:
        return None, None
    rows = np.full((len(content_hashes), cache.shape[0]), np.nan, np.float32)
    known = [i for i, digest in enumerate(content_hashes) if digest and digest in cache]
    if known:
        rows[known] = cache.get([content_hashes[i] for i in known])  # type: ignore[misc]
    return rows, cache.folder.name


def fill_perceptual_hashes(
    store: ProjectStore,
    *,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> list[HashedImage]:
    """The readable images, after reading the files of those without a perceptual
    hash (imported before hashes were kept) and storing theirs."""
    images = image_files.hashed_images(store)
    missing = [image for image in images if image.perceptual_hashes is None]
    if not missing:
        return images
    root = store.image_root
    found: dict[int, bytes] = {}
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="hash") as pool:
        for start in range(0, len(missing), 256):
            check_cancelled(cancel)
            batch = missing[start : start + 256]
            values = pool.map(lambda image: _hash_file(root, image), batch)
            for image, value in zip(batch, values, strict=True):
                if value is not None:
                    found[image.image_id] = value
            done = start + len(batch)
            on_progress(Progress("hash", done, len(missing), f"Hashed {done} of {len(missing)}"))
    image_files.set_perceptual_hashes(store, found)
    return image_files.hashed_images(store)


def _hash_file(root: Path, image: HashedImage) -> bytes | None:
    try:
        return perceptual_hashes(read_image(root / image.path).pixels)
    except (ImageReadError, OSError, MemoryError) as error:
        log.info("no perceptual hash for %s: %s", image.path, error)
        return None


def _member(image: HashedImage) -> DuplicateImage:
    return DuplicateImage(image.image_id, image.path, image.split, image.label)


def _exact_pairs(content_hashes: Sequence[str | None]) -> np.ndarray:
    first: dict[str, int] = {}
    pairs = [
        (first.setdefault(digest, index), index)
        for index, digest in enumerate(content_hashes)
        if digest
    ]
    return np.array([pair for pair in pairs if pair[0] != pair[1]], np.int64).reshape(-1, 2)


def _close_pairs(
    close: Callable[[int, int], tuple[np.ndarray, np.ndarray]],
    usable: np.ndarray,
    cancel: CancelToken | None,
) -> np.ndarray:
    """Pairs (i < j) of usable rows that ``close(start, stop)`` finds alike: it
    compares rows start..stop with rows start..N (the upper triangle, block by
    block) and returns the close pairs' indices."""
    found: list[np.ndarray] = []
    count = len(usable)
    for start in range(0, count, _ROWS):
        check_cancelled(cancel)
        i, j = close(start, min(start + _ROWS, count))
        keep = (j > i) & usable[i] & usable[j]
        found.append(np.stack([i[keep], j[keep]], axis=1))
    return np.concatenate(found) if found else np.zeros((0, 2), np.int64)


def _unit_rows(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows scaled to length 1 (unknown rows zero) and which rows are known."""
    present = ~np.isnan(features).any(axis=1)
    unit = np.where(present[:, None], features, 0).astype(np.float32)
    norms = np.linalg.norm(unit, axis=1, keepdims=True)
    return unit / np.maximum(norms, 1e-12), present & (norms[:, 0] > 0)


def _nearest_rows(
    unit: np.ndarray, present: np.ndarray, cancel: CancelToken | None
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's most similar other known row (-1 for unknown rows).

    Feature links are kept only between mutual nearest neighbours: a copy's
    closest image is its original and the other way round, while look-alike
    images (malaria's round cells, thousands of them above `NEAR_COSINE` to
    some other cell) would otherwise chain into groups of hundreds."""
    count = len(unit)
    nearest = np.full(count, -1, np.int64)
    runner_up = np.full(count, -1.0, np.float32)
    for start in range(0, count, _ROWS):
        check_cancelled(cancel)
        stop = min(start + _ROWS, count)
        similar = unit[start:stop] @ unit.T
        similar[:, ~present] = -np.inf
        rows = np.arange(stop - start)
        similar[rows, np.arange(start, stop)] = -np.inf
        nearest[start:stop] = similar.argmax(axis=1)
        similar[rows, nearest[start:stop]] = -np.inf
        runner_up[start:stop] = np.maximum(similar.max(axis=1), -1.0)
    nearest[~present] = -1
    return nearest, runner_up


def _components(
    count: int, links: Mapping[str, np.ndarray]
) -> tuple[dict[int, list[int]], dict[int, set[str]]]:
    """The connected components of the links: members and link kinds by component."""
    pairs = [p for p in links.values() if len(p)]
    edges = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(count, count))
    _, labels = connected_components(graph, directed=False)
    members: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        members.setdefault(int(label), []).append(index)
    kinds: dict[int, set[str]] = {}
    for kind, found in links.items():
        for first in _firsts(found):
            kinds.setdefault(int(labels[first]), set()).add(kind)
    return members, kinds


def _firsts(pairs: np.ndarray) -> Iterable[int]:
    return (int(i) for i in np.unique(pairs[:, 0])) if len(pairs) else ()
