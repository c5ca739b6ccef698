"""``linnaeus labels next``: the unlabelled images to label first
(`engine.evaluation.label_next`): those the model is least sure of, spread over
what is not labelled yet. Reads the project; changes nothing."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from linnaeus.engine.cli.protocol import print_json

DEFAULT_LIMIT = 20


def add_action(actions: Any, project_options: Any) -> None:
    """Register ``labels next`` on the ``labels`` actions."""
    sub = actions.add_parser(
        "next",
        help="list the unlabelled images that would teach the model most, first",
        description="List unlabelled images in the order to label them: those the model "
        "is least sure of and least like what is labelled already come first. Uses the "
        "last training's predictions and cached features; changes nothing.",
    )
    sub.set_defaults(run=run_label_next)
    sub.add_argument("--limit", type=_count, default=DEFAULT_LIMIT, metavar="N",
                     help=f"how many to list (default {DEFAULT_LIMIT}; 0: all)")  # fmt: skip
    project_options(sub)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}")
    return int(text)


def run_label_next(args: argparse.Namespace) -> int:
    from linnaeus.engine.evaluation.label_next import label_next
    from linnaeus.engine.project.store import ProjectStore
    from linnaeus.engine.project.store import display_path

    with ProjectStore.open(args.project) as store:
        order = label_next(store, limit=args.limit or None)
    if args.json:  # a list of objects, first to label first, as `labels issues` lists
        print_json([asdict(image) for image in order.images])
        return 0
    if not order.images:
        print("No unlabelled images: everything readable is labelled.")
        return 0
    print(f"Label these first ({len(order.images)} of {order.unlabelled} unlabelled images; "
          f"ordered by {order.method}):")  # fmt: skip
    for image in order.images:
        guess = f"  model says {image.predicted}" if image.predicted else ""
        sure = "" if image.uncertainty is None else f", unsure {image.uncertainty:.2f}"
        print(f"{image.rank:4d}. {display_path(image.path)}{guess}{sure}")
    return 0
