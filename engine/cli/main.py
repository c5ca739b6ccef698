"""The headless command line: ``linnaeus import|info|labels|train|...``.

The commands that work on a project take ``--project DIR`` (``predict`` only to
write label suggestions into one, ``demo`` to say where to make its project,
``gui`` to open one). Each prints a short human summary (with a progress bar
on long work) or, with ``--json``, exactly one JSON object on stdout. A user
mistake ends with a one-line message and exit status 1, never a traceback;
Ctrl+C ends with status 130 and loses nothing already saved.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import asdict
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from linnaeus.engine import __version__
from linnaeus.engine.cli import duplicates as cli_duplicates
from linnaeus.engine.cli import evaluate as cli_evaluate
from linnaeus.engine.cli import label_issues as cli_label_issues
from linnaeus.engine.cli import label_next as cli_label_next
from linnaeus.engine.cli import predict as cli_predict
from linnaeus.engine.cli import train as cli_train
from linnaeus.engine.cli import versions as cli_versions
from linnaeus.engine.cli.output import ProgressBar
from linnaeus.engine.cli.output import print_counts
from linnaeus.engine.cli.output import print_import_report
from linnaeus.engine.cli.protocol import print_json
from linnaeus.engine.dataset.export_labels import export_csv
from linnaeus.engine.dataset.export_labels import export_tree
from linnaeus.engine.dataset.importer import ImportOptions
from linnaeus.engine.dataset.importer import import_images
from linnaeus.engine.dataset.importer import interrupted_import
from linnaeus.engine.dataset.splits import SplitFractions
from linnaeus.engine.disk_space import disk_full_error
from linnaeus.engine.disk_space import is_disk_full
from linnaeus.engine.errors import Cancelled
from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.project import lock as project_lock
from linnaeus.engine.project.database import DATABASE_NAME
from linnaeus.engine.project.database import display_path
from linnaeus.engine.project.folders import make_project_folder
from linnaeus.engine.project.label_edits import Edit
from linnaeus.engine.project.store import ProjectStore

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CANCELLED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the process exit status."""
    # TensorFlow's C++ start-up chatter (CPU features, absl) is not for users.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not hasattr(args, "run") and not args.self_test:
        return _open_desktop_application(parser)
    try:
        status = _run_self_test() if args.self_test else int(args.run(args) or EXIT_OK)
        sys.stdout.flush()  # a reader that stopped early (`| head`) shows here, not at exit
        return status
    except BrokenPipeError:  # as Unix tools: stop quietly (the Python docs' recipe)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except (Cancelled, KeyboardInterrupt):
        print("linnaeus: cancelled; everything saved before stays saved.", file=sys.stderr)
        return EXIT_CANCELLED
    except LinnaeusError as error:
        print(f"linnaeus: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as error:  # a full disk met where no engine call expected one
        folder = getattr(args, "project", None) or Path.cwd()
        if not is_disk_full(error, folder):
            raise
        print(f"linnaeus: error: {disk_full_error(folder)}", file=sys.stderr)
        return EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="linnaeus",
        description="Classify folders of images offline. Without a command, opens the "
        "desktop application.",
    )
    parser.add_argument("--version", action="version", version=f"Linnaeus {__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="check offline that this installation can show its window, train, "
                        "export and classify (about a minute), then exit")  # fmt: skip
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(name: str, run: Callable[[argparse.Namespace], int], help: str) -> Any:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(run=run)
        return sub

    sub = command("import", _run_import, "Create a project from an image folder, or re-import it.")
    sub.add_argument("images", nargs="?", type=Path, help="the image folder (read only)")
    _project_options(sub)
    sub.add_argument("--labels", type=Path, help="CSV of path,label[,group][,split]")
    sub.add_argument("--group-regex", help="pattern whose first group in a file's path is its "
                     "patient/specimen id, e.g. 'P(\\d+)' (without a group: the whole "
                     "match)")  # fmt: skip
    sub.add_argument("--split", default="70/15/15", help="train/val/test sizes (default 70/15/15)")
    sub.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    sub.add_argument("--max-pixels", type=int, help="refuse images larger than this many pixels")

    sub = command("info", _run_info, "Show a project's images, classes and splits.")
    _project_options(sub)

    labels = command("labels", lambda a: _usage(labels), "Change, undo, list or export labels.")
    _add_label_actions(labels)

    cli_train.add_commands(commands, _project_options)
    cli_evaluate.add_commands(commands, _project_options)
    cli_predict.add_commands(commands, _project_options)
    cli_duplicates.add_commands(commands, _project_options)
    cli_versions.add_commands(commands, _project_options)

    sub = command("gui", _run_gui, "Open the desktop application (optionally on a project).")
    sub.add_argument("--project", type=Path, help="open this project folder")
    sub.add_argument("--screenshot", type=Path, metavar="FILE.png",
                     help="save the window to this PNG once loaded, then exit")  # fmt: skip

    sub = command("demo", _run_demo, "Make the built-in demo project and run the whole job.")
    sub.add_argument("--project", type=Path, default=Path("demo-project"),
                     help="where to put it (default ./demo-project)")  # fmt: skip
    sub.add_argument("--per-class", type=int, default=80, help="images per class (default 80)")
    sub.add_argument("--seed", type=int, default=0)
    sub.add_argument("--no-train", action="store_true", help="only make and import the images")
    sub.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _add_label_actions(labels: argparse.ArgumentParser) -> None:
    """``linnaeus labels set|undo|redo|history|export|issues|next``."""
    actions = labels.add_subparsers(title="actions", metavar="ACTION")
    sub = actions.add_parser("set", help="label images (by path or #id) as a class")
    sub.set_defaults(run=_run_labels_set)
    sub.add_argument("images", nargs="+", help="image paths relative to the image folder, or #id")
    target = sub.add_mutually_exclusive_group(required=True)
    target.add_argument("--label", help="the class to give them")
    target.add_argument("--unlabel", action="store_true", help="remove their label")
    _project_options(sub)
    for name, run in (("undo", _run_labels_undo), ("redo", _run_labels_redo)):
        sub = actions.add_parser(name, help=f"{name} the last label change")
        sub.set_defaults(run=run)
        _project_options(sub)
    sub = actions.add_parser("history", help="list label changes, newest first")
    sub.set_defaults(run=_run_labels_history)
    sub.add_argument("image", nargs="?", help="only this image")
    sub.add_argument("--limit", type=int, default=50)
    _project_options(sub)
    sub = actions.add_parser("export", help="write labels to a CSV or a folder tree of copies")
    sub.set_defaults(run=_run_labels_export)
    where = sub.add_mutually_exclusive_group(required=True)
    where.add_argument("--csv", type=Path, help="CSV file to write")
    where.add_argument("--tree", type=Path, help="new folder to fill with <class>/ copies")
    sub.add_argument("--by-split", action="store_true", help="tree as <split>/<class>/")
    _project_options(sub)
    cli_label_issues.add_action(actions, _project_options)
    cli_label_next.add_action(actions, _project_options)


def _open_desktop_application(parser: argparse.ArgumentParser) -> int:
    """Start the GUI, which registers itself as the ``linnaeus.apps`` entry point
    ``gui`` (the engine never imports the GUI; an inference-only install has none)."""
    found = entry_points(group="linnaeus.apps", name="gui")
    if not found:
        parser.print_help()
        print("\nThe desktop application is not installed; the commands above work without it.")
        return EXIT_OK
    return int(next(iter(found)).load()() or EXIT_OK)


def _run_gui(args: argparse.Namespace) -> int:
    found = entry_points(group="linnaeus.apps", name="gui")
    if not found:
        raise LinnaeusError(
            "The desktop application is not installed; the other commands work without it."
        )
    argv: list[str] = []
    if args.project is not None:
        argv += ["--project", str(args.project)]
    if args.screenshot is not None:
        argv += ["--screenshot", str(args.screenshot)]
    return int(next(iter(found)).load()(argv) or EXIT_OK)


def _project_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", type=Path, required=True, help="the project folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return EXIT_FAILED


# -- commands ---------------------------------------------------------------


def _run_self_test() -> int:
    from linnaeus.engine.demo.self_test import format_step
    from linnaeus.engine.demo.self_test import run_self_test

    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # tf2onnx's deprecation notes
    print(f"Linnaeus {__version__} self-test, on generated images in a temporary folder:",
          flush=True)  # fmt: skip
    started = time.perf_counter()
    results = run_self_test(on_step=lambda result: print(format_step(result), flush=True))
    print(f"Self-test passed: {len(results)} steps in {time.perf_counter() - started:.1f} s.")
    return EXIT_OK


def _run_import(args: argparse.Namespace) -> int:
    options = ImportOptions(  # checked before a project is made
        labels_csv=args.labels,
        group_regex=args.group_regex,
        fractions=SplitFractions.parse(args.split),
        seed=args.seed,
        **({"max_pixels": args.max_pixels} if args.max_pixels else {}),
    )
    project = args.project.absolute()
    if (project / DATABASE_NAME).exists():  # refused before anything is written if the
        ProjectStore.open(project, image_root=args.images).close()  # folders overlap
    elif args.images is None:
        raise LinnaeusError(
            f"{args.project} is not a project yet: name the image folder to import, "
            f"e.g. `linnaeus import IMAGES --project {args.project}`."
        )
    else:
        make_project_folder(project, args.images.absolute())
    # Under the lock, a second import into a new project finds the first one's project.
    with project_lock.hold(project, "importing images"):
        if (project / DATABASE_NAME).exists():
            store = ProjectStore.open(project, image_root=args.images)
        else:
            store = ProjectStore.create(project, args.images)
        with store, ProgressBar(enabled=not args.json) as bar:
            report = import_images(store, options, on_progress=bar.update)
    if args.json:
        print_json(_import_json(report))
    else:
        print_import_report(report, args.project)
    return EXIT_OK


def _import_json(report: Any) -> dict[str, Any]:
    payload = asdict(report)
    payload["unreadable"] = [{"path": p, "reason": r} for p, r in report.unreadable]
    payload["errors"] = payload["unreadable"]
    return payload


def _run_info(args: argparse.Namespace) -> int:
    with ProjectStore.open(args.project) as store:
        counts = store.label_split_counts()
        statuses = store.status_counts()
        info = {
            "project": str(store.project_dir),
            "image_root": str(store.image_root),
            "images": store.image_count(),
            "status": statuses,
            "classes": [asdict(c) for c in store.classes()],
            "counts": counts,
            "can_undo": getattr(store.undoable_edit(), "description", None),
            "can_redo": getattr(store.redoable_edit(), "description", None),
        }
        interrupted = interrupted_import(store)
        info["interrupted_import"] = interrupted and {
            "imported": interrupted.imported, "found": interrupted.found,
            "message": interrupted.message,
        }  # fmt: skip
    if args.json:
        print_json(info)
        return EXIT_OK
    if interrupted:
        print(f"Warning: {interrupted.message}")
    print(f"Project {info['project']}\nImages in {info['image_root']}")
    print(", ".join(f"{n} {status}" for status, n in sorted(statuses.items())) or "no images")
    print_counts(counts)
    if info["can_undo"]:
        print(f"Undo would revert: {info['can_undo']}")
    return EXIT_OK


def _resolve_images(store: ProjectStore, names: Sequence[str]) -> list[int]:
    ids = []
    for name in names:
        if name.startswith("#") and name[1:].isdigit():
            ids.append(store.image(int(name[1:])).id)
        else:
            ids.append(store.image_by_path(name).id)
    return ids


def _run_labels_set(args: argparse.Namespace) -> int:
    with ProjectStore.open(args.project) as store:
        ids = _resolve_images(store, args.images)
        edit = store.set_labels(ids, None if args.unlabel else args.label)
    return _report_edit(args, edit, "Nothing changed: the images already had that label.")


def _run_labels_undo(args: argparse.Namespace) -> int:
    with ProjectStore.open(args.project) as store:
        edit = store.undo()
    return _report_edit(args, edit, "Nothing to undo.", verb="Undid")


def _run_labels_redo(args: argparse.Namespace) -> int:
    with ProjectStore.open(args.project) as store:
        edit = store.redo()
    return _report_edit(args, edit, "Nothing to redo.", verb="Redid")


def _report_edit(
    args: argparse.Namespace, edit: Edit | None, nothing: str, verb: str = "Done"
) -> int:
    if args.json:
        print_json({"edit": edit.summary() if edit else None})
    else:
        print(f"{verb}: {edit.description}." if edit else nothing)
    return EXIT_OK


def _run_labels_history(args: argparse.Namespace) -> int:
    with ProjectStore.open(args.project) as store:
        image_id = _resolve_images(store, [args.image])[0] if args.image else None
        entries = store.history(image_id, limit=args.limit)
    if args.json:
        print_json({"history": [asdict(e) for e in entries]})
        return EXIT_OK
    for e in entries:
        what = f"{e.old_label or '(none)'} -> {e.new_label or '(none)'}"
        action = "" if e.action == "set" else f" [{e.action}]"
        print(f"{e.changed_at}  {display_path(e.image_path)}  {what}  ({e.source}){action}")
    if not entries:
        print("No label changes yet.")
    return EXIT_OK


def _run_labels_export(args: argparse.Namespace) -> int:
    with ProjectStore.open(args.project) as store:
        if args.csv:
            report = export_csv(store, args.csv)
        else:
            with ProgressBar(enabled=not args.json) as bar:
                report = export_tree(store, args.tree, by_split=args.by_split,
                                     on_progress=bar.update)  # fmt: skip
    if args.json:
        print_json(asdict(report))
        return EXIT_OK
    print(f"Wrote {report.written} images' labels to {report.destination}.")
    for path, reason in report.skipped:
        print(f"  not copied: {path}: {reason}")
    return EXIT_OK


def _run_demo(args: argparse.Namespace) -> int:
    from linnaeus.engine.demo.project import run_demo

    with ProgressBar(enabled=not args.json) as bar:
        result = run_demo(args.project, per_class=args.per_class, seed=args.seed,
                          train_model=not args.no_train, on_progress=bar.update)  # fmt: skip
    training = cli_train.training_summary(result.training) if result.training else None
    if args.json:
        payload = _import_json(result.report) | {"mislabelled": result.mislabelled,
                                                 "found": result.found,
                                                 "shipped": result.shipped}  # fmt: skip
        print_json(payload | {"training": training})
        return EXIT_OK
    print_import_report(result.report, args.project)
    print(f"\nThe demo has {len(result.mislabelled)} deliberately wrong labels to find.\n")
    if training:
        cli_train.print_training(training)
        right = sum(f["suggested"] == f["true_class"] for f in result.found)
        print(f"\nOf the {len(result.mislabelled)} images Check labels shows first (each judged "
              f"by models that never saw it), {len(result.found)} are deliberately wrong labels; "
              f"for {right} of them the suggested class is the right one (`linnaeus labels "
              "issues` lists them).")  # fmt: skip
    shipped = result.shipped
    if shipped:
        print(f"\nExported the model to {shipped['onnx']} (largest difference from the trained "
              f"model {shipped['max_abs_difference']:.1e}) and wrote its model card to "
              f"{shipped['report']}.")  # fmt: skip
        print(f"Classified {shipped['new_images']} new images with the exported model alone "
              f"({shipped['provider']}): {shipped['new_images_right']} right; results in "
              f"{shipped['predictions_csv']}.")  # fmt: skip
    print(f"\nOpen it with: linnaeus gui --project {args.project}   (or: linnaeus info "
          f"--project {args.project})")  # fmt: skip
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
