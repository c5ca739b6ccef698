"""Train / validation / test splits: stratified by class, grouped, fixed by a seed.

Images of one group (a patient, a specimen, a slide; identical files too)
always land in the same split, so a model is never tested on a patient it was
trained on. Splits the user already made with folders are respected; when
those folders lack a split (Kermany's chest X-rays come as train/test only),
it is carved out of the training folder. A group comes from a label table or
from a pattern that finds the patient/specimen id in each file's path.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from linnaeus.engine.dataset.layout import name_from_path
from linnaeus.engine.errors import ImportSourceError
from linnaeus.engine.errors import ProjectError
from linnaeus.engine.project.store import SPLITS


@dataclass(frozen=True)
class SplitFractions:
    """Shares of train, validation and test for images not split yet."""

    train: float = 0.70
    val: float = 0.15
    test: float = 0.15

    def __post_init__(self) -> None:
        values = (self.train, self.val, self.test)
        if any(v < 0 for v in values) or abs(sum(values) - 1.0) > 1e-6:
            raise ProjectError(
                f"Split sizes must be non-negative and add up to 100% (got "
                f"{self.train:.0%} / {self.val:.0%} / {self.test:.0%})."
            )

    @classmethod
    def parse(cls, text: str) -> SplitFractions:
        """Parse ``"70/15/15"`` (percentages) or ``"0.7,0.15,0.15"``."""
        parts = text.replace(",", "/").split("/")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            values = []
        if len(values) != 3:
            raise ProjectError(f"Split sizes look like 70/15/15, not {text!r}.")
        if sum(values) > 1.5:
            values = [v / 100 for v in values]
        return cls(*values)

    def share(self, split: str) -> float:
        return float(getattr(self, split))


@dataclass(frozen=True)
class SplitItem:
    """What the split needs to know of one image."""

    image_id: int
    label: str | None
    group: str
    fixed: str | None = None  # a split given by the user's folders, kept as is


def compile_group_pattern(pattern: str) -> re.Pattern[str]:
    """The patient/specimen id pattern, compiled; ImportSourceError if it is not valid."""
    try:
        return re.compile(pattern)
    except re.error as error:
        raise ImportSourceError(
            f"The patient/specimen pattern {pattern!r} is not valid: {error}."
        ) from None


def group_from_path(path: str, pattern: re.Pattern[str]) -> str | None:
    """The patient/specimen id ``pattern`` finds in ``path``: its first bracketed
    group, or the whole match if it has none; None where it does not match."""
    match = pattern.search(path)
    if match is None:
        return None
    return name_from_path(match.group(1) if match.groups() else match.group(0))


def assign_splits(
    items: Sequence[SplitItem], fractions: SplitFractions = SplitFractions(), seed: int = 0
) -> dict[int, str]:
    """Return a split for every item: fixed ones kept, the rest assigned.

    Unfixed items are shared out by ``fractions``, stratified by label and
    never separating a group. A group with one fixed member follows it. If the
    fixed splits have a training part but lack validation or test, those are
    carved from the fixed training items with the same fractions.
    """
    result: dict[int, str] = {}
    fixed_splits = {item.fixed for item in items if item.fixed}
    group_fixed: dict[str, str] = {}
    for item in items:
        if item.fixed:
            group_fixed.setdefault(item.group, item.fixed)

    missing = [s for s in SPLITS if s not in fixed_splits] if "train" in fixed_splits else []
    free: list[SplitItem] = []
    carve: list[SplitItem] = []
    for item in items:
        split = item.fixed or group_fixed.get(item.group)
        if split == "train" and missing:
            carve.append(item)
        elif split:
            result[item.image_id] = split
        else:
            free.append(item)

    if carve:
        carve_fractions = {s: fractions.share(s) for s in ["train", *missing]}
        result.update(_stratified_group_split(carve, carve_fractions, seed))
    result.update(_stratified_group_split(free, {s: fractions.share(s) for s in SPLITS}, seed))
    return result


def _stratified_group_split(
    items: Sequence[SplitItem], shares: dict[str, float], seed: int
) -> dict[int, str]:
    """Greedy stratified group split: each group goes where its classes lack most."""
    total = sum(shares.values())
    if not items or total <= 0:
        return {item.image_id: "train" for item in items}
    names = list(shares)
    weights = [shares[s] / total for s in names]

    groups: dict[str, list[SplitItem]] = defaultdict(list)
    for item in items:
        groups[item.group].append(item)
    class_totals = Counter(item.label for item in items)
    targets = {
        (s, c): w * n for s, w in zip(names, weights, strict=True) for c, n in class_totals.items()
    }
    assigned: Counter[tuple[str, str | None]] = Counter()

    order = sorted(groups)
    random.Random(seed).shuffle(order)
    order.sort(key=lambda key: len(groups[key]), reverse=True)  # stable: ties stay shuffled

    result: dict[int, str] = {}
    for key in order:
        members = groups[key]
        counts = Counter(item.label for item in members)

        def need(split: str, counts: Counter[str | None] = counts) -> float:
            return sum(
                n * (targets[split, c] - assigned[split, c]) / max(targets[split, c], 1e-9)
                for c, n in counts.items()
            )

        best = max(names, key=need)  # max keeps the first of equals: train before val
        for label, n in counts.items():
            assigned[best, label] += n
        for item in members:
            result[item.image_id] = best
    return result
