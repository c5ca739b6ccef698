"""What the command line prints for people: progress bars and human summaries.

What it prints for programs (``--json``, ``--json-progress``) is in `protocol`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from tqdm import tqdm

from linnaeus.engine.progress import Progress
from linnaeus.engine.progress import TrainingProgress
from linnaeus.engine.project.database import display_path
from linnaeus.engine.project.store import NO_SPLIT
from linnaeus.engine.project.store import SPLITS
from linnaeus.engine.project.store import UNLABELLED

_SPLIT_COLUMNS = (*SPLITS, NO_SPLIT)
_MAX_LISTED = 20


class ProgressBar:
    """An ``on_progress`` callback drawing one tqdm bar per stage on stderr."""

    def __init__(self, enabled: bool = True) -> None:
        # Only on a terminal: in a log file a redrawn bar is noise.
        self.enabled = enabled and sys.stderr is not None and sys.stderr.isatty()
        self._bar: Any = None
        self._stage = ""

    def update(self, progress: Progress) -> None:
        if not self.enabled:
            return
        if isinstance(progress, TrainingProgress) and progress.model_ready:
            self.close()
            tqdm.write(progress.message, file=sys.stderr)  # the quick model is ready
        stage = progress.stage
        if isinstance(progress, TrainingProgress) and progress.anytime_stage:
            stage = f"{progress.anytime_stage} model: {stage}"  # e.g. "quick model: embed"
        if stage != self._stage or self._bar is None:
            self.close()
            self._stage = stage
            self._bar = tqdm(
                total=progress.total or None,
                desc=stage,
                unit="img",
                leave=False,
                file=sys.stderr,
                dynamic_ncols=True,
            )
        if progress.total and self._bar.total != progress.total:
            self._bar.total = progress.total
        self._bar.update(progress.done - self._bar.n)
        if isinstance(progress, TrainingProgress):
            shown = {"epoch": f"{progress.epoch}/{progress.epochs}", "loss": progress.loss,
                     "acc": progress.accuracy, "val_acc": progress.val_accuracy,
                     "budget left": _minutes(progress.budget_left_s)}  # fmt: skip
            self._bar.set_postfix({k: v for k, v in shown.items() if v is not None}, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _minutes(seconds: float | None) -> str | None:
    """E.g. "7:05" (minutes:seconds), None when unknown."""
    if seconds is None:
        return None
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02}"


def print_counts(counts: dict[str, dict[str, int]]) -> None:
    """A table of images per class (rows) and split (columns)."""
    if not counts:
        print("No readable images.")
        return
    splits = [s for s in _SPLIT_COLUMNS if any(s in row for row in counts.values())]
    width = max(12, *(len(name) for name in counts)) + 2
    print("class".ljust(width) + "".join(s.rjust(8) for s in splits) + "total".rjust(8))
    for name in sorted(counts, key=lambda n: (n == UNLABELLED, n)):
        row = counts[name]
        cells = "".join(str(row.get(s, 0)).rjust(8) for s in splits)
        print(name.ljust(width) + cells + str(sum(row.values())).rjust(8))


def print_import_report(report: Any, project: Path) -> None:
    """The human summary of an `ImportReport`."""
    print(f"Imported {report.image_root}\n  into project {project}")
    print(f"Layout: {report.layout}.")
    print(
        f"{report.found} images found: {report.added} new, {report.renamed} moved or renamed, "
        f"{report.updated} changed, {report.unchanged} unchanged; {report.missing} no longer "
        f"there; {report.skipped_files} other files ignored ({report.seconds:.1f} s)."
    )
    print()
    print_counts(report.counts)
    if report.unreadable:
        print(f"\n{len(report.unreadable)} files could not be read (they stay listed in the "
              "project and are left out of training):")  # fmt: skip
        for path, reason in report.unreadable[:_MAX_LISTED]:
            print(f"  {display_path(path)}: {reason}")
        if len(report.unreadable) > _MAX_LISTED:
            print(f"  ... and {len(report.unreadable) - _MAX_LISTED} more (see --json).")
    if report.table_problems:
        print("\nNot every row of the label table was used as written:")
        for problem in report.table_problems[:_MAX_LISTED]:
            print(f"  {problem.message}")
        if len(report.table_problems) > _MAX_LISTED:
            print(f"  ... and {len(report.table_problems) - _MAX_LISTED} more (see --json).")
    if report.labels_kept:
        print(f"\n{report.labels_kept} labels in the table differ from labels the project "
              "already had; the project's labels were kept.")  # fmt: skip
