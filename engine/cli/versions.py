"""``linnaeus versions list|rename|note|delete``: the project's model versions."""

from __future__ import annotations

import argparse
from typing import Any

from linnaeus.engine.cli.protocol import print_json
from linnaeus.engine.project import versions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.versions import ModelVersion


def add_commands(commands: Any, project_options: Any) -> None:
    """Register ``linnaeus versions`` and its actions."""
    parser = commands.add_parser(
        "versions", help="List, name, annotate or delete model versions.",
        description="List, name, annotate or delete model versions.",
    )  # fmt: skip
    parser.set_defaults(run=lambda _args: _usage(parser))
    actions = parser.add_subparsers(title="actions", metavar="ACTION")
    sub = actions.add_parser("list", help="list the versions, newest first")
    sub.set_defaults(run=run_list)
    project_options(sub)
    sub = actions.add_parser("rename", help='give a version a name ("" removes it)')
    sub.set_defaults(run=run_rename)
    sub.add_argument("model", help="the version, e.g. v3")
    sub.add_argument("name", help="the name shown beside its number")
    project_options(sub)
    sub = actions.add_parser("note", help='keep a note with a version ("" removes it)')
    sub.set_defaults(run=run_note)
    sub.add_argument("model", help="the version, e.g. v3")
    sub.add_argument("note", help="the note")
    project_options(sub)
    sub = actions.add_parser("delete", help="delete a version and its files in the project")
    sub.set_defaults(run=run_delete)
    sub.add_argument("model", help="the version, e.g. v3")
    sub.add_argument("--active-too", action="store_true", help="also when it is the active "
                     "model: the newest other finished version becomes active")  # fmt: skip
    project_options(sub)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 1


def version_json(version: ModelVersion, active: bool) -> dict[str, Any]:
    """What ``--json`` says about one version."""
    return {
        "model_version": version.name, "name": version.title, "note": version.note,
        "status": version.status, "kind": version.kind, "active": active,
        "created_at": version.created_at,
        "val_accuracy": version.metrics.get("val", {}).get("accuracy"),
        "test_accuracy": version.metrics.get("test", {}).get("accuracy"),
    }  # fmt: skip


def run_list(args: argparse.Namespace) -> int:
    with ProjectStore.open(args.project) as store:
        active = versions.active_version(store)
        listed = [version_json(v, bool(active and v.id == active.id))
                  for v in versions.list_versions(store)]  # fmt: skip
    if args.json:
        print_json({"versions": listed})
        return 0
    for item in listed:
        mark = "*" if item["active"] else " "
        name = (
            f"{item['model_version']} · {item['name']}" if item["name"] else item["model_version"]
        )
        print(f"{mark} {name}  {item['kind']}  {item['status']}  {item['created_at'][:16]}")
        if item["note"]:
            print(f"    {item['note']}")
    if not listed:
        print("No model versions yet: `linnaeus train` makes one.")
    return 0


def run_rename(args: argparse.Namespace) -> int:
    with ProjectStore.open(args.project) as store:
        version = versions.rename_version(store, versions.parse_version(args.model), args.name)
    return _report(args, version, f"{version.name} is now called {version.display_name}.")


def run_note(args: argparse.Namespace) -> int:
    with ProjectStore.open(args.project) as store:
        version = versions.set_note(store, versions.parse_version(args.model), args.note)
    said = "Kept the note with" if version.note else "Removed the note of"
    return _report(args, version, f"{said} {version.name}.")


def run_delete(args: argparse.Namespace) -> int:
    with ProjectStore.open(args.project) as store:
        version = versions.get_version(store, versions.parse_version(args.model))
        active = versions.delete_version(store, version.id, replace_active=args.active_too)
    now = f"{active.display_name} is the active model" if active else "no model is active"
    if args.json:
        print_json({"deleted": version.name, "active": active.name if active else None})
    else:
        print(f"Deleted {version.display_name} and its files in the project; {now}.")
    return 0


def _report(args: argparse.Namespace, version: ModelVersion, text: str) -> int:
    if args.json:
        with ProjectStore.open(args.project) as store:
            active = versions.active_version(store)
        print_json(version_json(version, bool(active and active.id == version.id)))
    else:
        print(text)
    return 0
