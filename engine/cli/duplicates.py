"""``linnaeus duplicates``: the project's duplicate images and the leaks between splits."""

from __future__ import annotations

import argparse
from typing import Any

from linnaeus.engine.cli.protocol import print_json
from linnaeus.engine.dataset.duplicates import DuplicateGroup
from linnaeus.engine.dataset.duplicates import DuplicateReport
from linnaeus.engine.dataset.duplicates import find_duplicates
from linnaeus.engine.dataset.duplicates import keep_groups_together
from linnaeus.engine.dataset.duplicates import leak_warning
from linnaeus.engine.project.database import display_path
from linnaeus.engine.project.store import ProjectStore


def add_commands(commands: Any, project_options: Any) -> None:
    """Register ``duplicates`` on the main parser's subcommands."""
    sub = commands.add_parser(
        "duplicates",
        help="List duplicate images (identical, resized or re-encoded copies) and the "
        "groups that leak between train, validation and test.",
    )
    sub.set_defaults(run=run_duplicates)
    project_options(sub)
    sub.add_argument("--keep-together", action="store_true",
                     help="first move the images of each group that leaks into one split "
                     "(the split your folders or label table gave, else the one most of "
                     "the group is in)")  # fmt: skip
    sub.add_argument("--limit", type=int, default=20,
                     help="how many groups to list, leaking ones first (default 20; "
                     "--json lists all)")  # fmt: skip


def run_duplicates(args: argparse.Namespace) -> int:
    from linnaeus.engine.cli.output import ProgressBar

    kept = None
    with ProjectStore.open(args.project) as store, ProgressBar(enabled=not args.json) as bar:
        if args.keep_together:
            kept = keep_groups_together(store, on_progress=bar.update)
        report = find_duplicates(store, on_progress=bar.update)
        paths = {i: store.image(i).path for i in kept.moved} if kept else {}
    if args.json:
        payload = duplicates_json(report)
        if kept is not None:
            payload["moved"] = [{"path": paths[i], "from": old, "to": new}
                                for i, (old, new) in kept.moved.items()]  # fmt: skip
            payload["unfixable_groups"] = kept.unfixable
        print_json(payload)
        return 0
    if kept is not None:
        print(f"Moved {len(kept.moved):,} images so that each group of duplicates sits in one "
              "split.")  # fmt: skip
        if kept.unfixable:
            print(f"  {kept.unfixable:,} groups stay across splits: your folders or label table "
                  "put their images there.")  # fmt: skip
    print_duplicates(report, args.limit)
    return 0


def duplicates_json(report: DuplicateReport) -> dict[str, Any]:
    """The report as ``--json`` prints it: every group with each image's path and split."""
    return {
        "images": report.images,
        "duplicate_images": report.duplicate_images,
        "features": report.features,
        "seconds": round(report.seconds, 3),
        "leaking_groups": len(report.leaking),
        "warning": leak_warning(report.groups),
        "groups": [
            {
                "kinds": list(group.kinds),
                "splits": list(group.splits),
                "leaks": group.leaks,
                "images": [
                    {"id": i.image_id, "path": i.path, "split": i.split, "label": i.label}
                    for i in group.images
                ],
            }
            for group in report.groups
        ],
    }


def print_duplicates(report: DuplicateReport, limit: int) -> None:
    """The report in words: counts, the leak warning, then the groups, leaking first."""
    features = f"backbone features ({report.features})" if report.features else None
    compared = ", ".join(filter(None, ["file contents", "perceptual hashes", features]))
    print(
        f"{len(report.groups):,} groups of duplicates ({report.duplicate_images:,} of "
        f"{report.images:,} images), compared by {compared} in {report.seconds:.1f} s."
    )
    if not report.features:
        print("  Cropped or augmented copies are found after the first training (its "
              "backbone features); resized and re-encoded ones are found now.")  # fmt: skip
    warning = leak_warning(report.groups)
    if warning:
        print(f"Warning: {warning}")
    ordered = sorted(report.groups, key=lambda group: not group.leaks)
    for number, group in enumerate(ordered[:limit], start=1):
        print(_group_line(number, group))
        for image in group.images:
            print(f"    {display_path(image.path)}  [{image.split or 'no split'}]")
    if len(ordered) > limit:
        print(f"... and {len(ordered) - limit:,} more groups (--limit, or --json for all).")


def _group_line(number: int, group: DuplicateGroup) -> str:
    leak = f"; LEAK across {'/'.join(group.splits)}" if group.leaks else ""
    return f"  group {number}: {len(group.images)} images ({', '.join(group.kinds)}){leak}"
