"""``linnaeus labels issues``: the labels most likely wrong, judged by held-out heads."""

from __future__ import annotations

import argparse
from typing import Any

from linnaeus.engine.cli.protocol import print_json


def add_action(actions: Any, project_options: Any) -> None:
    """Register ``labels issues`` under ``linnaeus labels``."""
    sub = actions.add_parser(
        "issues",
        help="list the labels most likely wrong (judged by models that never saw the image), "
        "with a suggested class",
    )
    sub.set_defaults(run=run_label_issues)
    sub.add_argument("--model", help="model version, e.g. v3 (default: the active one)")
    sub.add_argument("--limit", type=int, default=20,
                     help="how many images to list (default 20; 0: all)")  # fmt: skip
    project_options(sub)


def run_label_issues(args: argparse.Namespace) -> int:
    from linnaeus.engine.cli.evaluate import chosen_version
    from linnaeus.engine.errors import ProjectError
    from linnaeus.engine.evaluation.label_issues import version_label_issues
    from linnaeus.engine.project.store import ProjectStore
    from linnaeus.engine.project.store import display_path

    with ProjectStore.open(args.project) as store:
        version = chosen_version(store, args.model)
        issues = version_label_issues(store, version)
        if issues is None:
            raise ProjectError(
                f"{version.name} kept no held-out predictions to judge labels by (only models "
                "built on ImageNet features do): train the quick model, then ask again."
            )
        shown = issues[: args.limit] if args.limit > 0 else issues
        rows = [
            {
                "path": display_path(store.image(issue.image_id).path),
                "image_id": issue.image_id,
                "label": version.classes[issue.label],
                "suggested": version.classes[issue.suggested],
                "score": round(issue.score, 4),
                "likely_wrong": issue.flagged,
                "suggested_probability": round(issue.suggested_probability, 4),
            }
            for issue in shown
        ]
    if args.json:
        print_json(rows)
        return 0
    flagged = sum(issue.flagged for issue in issues)
    print(f"{version.name}: {flagged} of {len(issues)} labels look wrong to models that never "
          f"saw the image (most likely first).")  # fmt: skip
    for row in rows:
        mark = "✗" if row["likely_wrong"] else " "
        print(f"{mark} {row['score']:.2f}  {row['path']}  {row['label']} -> {row['suggested']}")
    return 0
