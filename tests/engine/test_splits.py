"""Splits: stratified, grouped, seeded, respecting the user's split folders."""

from __future__ import annotations

from collections import Counter

import pytest

from linnaeus.engine.dataset.importer import ImportOptions
from linnaeus.engine.dataset.splits import SplitFractions
from linnaeus.engine.dataset.splits import SplitItem
from linnaeus.engine.dataset.splits import assign_splits
from linnaeus.engine.dataset.splits import compile_group_pattern
from linnaeus.engine.dataset.splits import group_from_path
from linnaeus.engine.errors import ImportSourceError
from linnaeus.engine.errors import ProjectError


def items(per_class: dict[str, int], group_size: int = 1) -> list[SplitItem]:
    result = []
    for label, n in per_class.items():
        for i in range(n):
            image_id = len(result)
            result.append(SplitItem(image_id, label, f"{label}-{i // group_size}"))
    return result


def test_stratified_shares_per_class() -> None:
    data = items({"normal": 300, "pneumonia": 100})
    splits = assign_splits(data, SplitFractions(0.7, 0.15, 0.15), seed=1)
    counts = Counter((item.label, splits[item.image_id]) for item in data)
    assert counts["normal", "train"] == 210
    assert counts["normal", "val"] == 45
    assert counts["pneumonia", "train"] == 70
    assert counts["pneumonia", "test"] == 15


def test_a_group_never_spans_two_splits() -> None:
    data = items({"a": 200, "b": 120}, group_size=7)
    splits = assign_splits(data, seed=3)
    by_group: dict[str, set[str]] = {}
    for item in data:
        by_group.setdefault(item.group, set()).add(splits[item.image_id])
    assert all(len(s) == 1 for s in by_group.values())
    shares = Counter(splits.values())
    assert 0.6 < shares["train"] / len(data) < 0.8
    assert shares["val"] > 0 and shares["test"] > 0


def test_the_seed_fixes_the_split() -> None:
    data = items({"a": 50, "b": 50})
    assert assign_splits(data, seed=5) == assign_splits(data, seed=5)
    assert assign_splits(data, seed=5) != assign_splits(data, seed=6)


def test_folder_splits_are_kept_and_val_is_carved_from_train() -> None:
    data = [
        SplitItem(i, "normal" if i % 4 else "pneumonia", f"g{i}", "train" if i < 80 else "test")
        for i in range(100)
    ]
    splits = assign_splits(data, SplitFractions(0.7, 0.15, 0.15), seed=0)
    assert all(splits[i] == "test" for i in range(80, 100))
    carved = Counter(splits[i] for i in range(80))
    assert set(carved) == {"train", "val"}
    assert carved["val"] == pytest.approx(80 * 0.15 / 0.85, abs=2)


def test_images_of_a_fixed_group_follow_it() -> None:
    data = [
        SplitItem(0, "a", "patient-1", "test"),
        SplitItem(1, "a", "patient-1", None),
        SplitItem(2, "a", "patient-2", "train"),
        SplitItem(3, "a", "patient-3", "val"),
    ]
    assert assign_splits(data)[1] == "test"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("70/15/15", (0.7, 0.15, 0.15)),
        ("0.8,0.1,0.1", (0.8, 0.1, 0.1)),
        ("60/20/20", (0.6, 0.2, 0.2)),
    ],
)
def test_parse_fractions(text: str, expected: tuple[float, float, float]) -> None:
    parsed = SplitFractions.parse(text)
    assert (parsed.train, parsed.val, parsed.test) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["70/15", "50/50/50", "a/b/c"])
def test_bad_fractions_are_refused(text: str) -> None:
    with pytest.raises(ProjectError):
        SplitFractions.parse(text)


@pytest.mark.parametrize(
    ("pattern", "path", "group"),
    [
        (r"P(\d+)_", "cat/P0042_scan3.png", "0042"),  # the part in brackets
        (r"P\d+", "cat/P0042_scan3.png", "P0042"),  # no brackets: the whole match
        (r"P(\d+)_", "cat/scan3.png", None),  # no match: no group
    ],
)
def test_group_pattern_finds_the_id(pattern: str, path: str, group: str | None) -> None:
    assert group_from_path(path, compile_group_pattern(pattern)) == group


def test_a_bad_group_pattern_is_refused_before_import() -> None:
    with pytest.raises(ImportSourceError, match="not valid"):
        ImportOptions(group_regex="P[0-9+")
