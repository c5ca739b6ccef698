"""What the grid shows for "Show duplicates": the images of every duplicate group,
group by group (leaking groups first), and a title that says what they are.

The groups come from `linnaeus.engine.dataset.duplicates`; this only words them.
"""

from __future__ import annotations

from dataclasses import dataclass

from linnaeus.engine.dataset.duplicates import DuplicateReport
from linnaeus.engine.project.store import SPLITS
from linnaeus.gui.panels.evaluation_data import SPLIT_WORDS


@dataclass(frozen=True)
class ShownDuplicates:
    """The images to show, in order, and the words above them."""

    image_ids: frozenset[int]
    order: tuple[int, ...]
    title: str


def shown_duplicates(report: DuplicateReport) -> ShownDuplicates:
    """The grid's view of ``report``: groups that leak first, then the largest."""
    groups = sorted(report.groups, key=lambda group: not group.leaks)  # stable: largest first
    order = tuple(image.image_id for group in groups for image in group.images)
    if not groups:
        title = f"No duplicates among {report.images:,} images."
    else:
        title = f"in {len(groups):,} groups of copies"
        leaking = report.leaking
        if leaking:
            splits = sorted({s for g in leaking for s in g.splits}, key=SPLITS.index)
            words = "/".join(SPLIT_WORDS[split] for split in splits)
            title += f"; {len(leaking):,} across {words} (a leak; shown first)."
        else:
            title += ", each in one split."
    if not report.features:
        title += " Cropped copies are found after a training."
    return ShownDuplicates(frozenset(order), order, title)
