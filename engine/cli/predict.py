"""``linnaeus predict``: classify a folder with an exported ONNX model.

Needs onnxruntime only, never TensorFlow. Writes one CSV row per image file
(unreadable files included, with the reason), can copy the images into one
folder per class, and can write the predictions as label suggestions into the
project the model was trained for.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from linnaeus.engine.cli.protocol import print_json
from linnaeus.engine.errors import LinnaeusError

if TYPE_CHECKING:
    from linnaeus.engine.onnx.classify import ClassifyResult

_MAX_LISTED = 20


def add_commands(commands: Any, project_options: Any) -> None:
    """Register ``predict`` on the main parser's subcommands.

    ``project_options`` is accepted for symmetry with the other command modules;
    predict's ``--project`` is optional, so it declares its own options.
    """
    sub = commands.add_parser(
        "predict",
        help="Classify a folder of images with an exported model (.onnx).",
        description="Classify every image under FOLDER with an exported Linnaeus model. "
        "Needs onnxruntime only. The images are only read, never changed.",
    )
    sub.set_defaults(run=run_predict)
    sub.add_argument("model", type=Path, metavar="MODEL", help="the exported model (.onnx)")
    sub.add_argument(
        "folder", type=Path, metavar="FOLDER", help="the folder of images to classify (read only)"
    )
    sub.add_argument(
        "--out",
        type=Path,
        metavar="CSV",
        help="where to write the results (default: ./FOLDER_predictions.csv)",
    )
    sub.add_argument(
        "--sort-into",
        type=Path,
        metavar="DIR",
        help="also copy each image into DIR/<class>/, or DIR/unfamiliar/ when it is unlike "
        "the images the model was trained on (never moves them)",
    )
    sub.add_argument(
        "--unknown-below",
        type=_probability,
        metavar="P",
        help="label images whose confidence is below P (0..1) as 'unknown'",
    )
    sub.add_argument(
        "--batch-size",
        type=_positive_int,
        default=None,
        metavar="N",
        help="images per model call (default 8, one call per CPU core at a time)",
    )
    sub.add_argument(
        "--project", type=Path, metavar="DIR", help="the project the model was trained for"
    )
    sub.add_argument(
        "--write-suggestions",
        action="store_true",
        help="write the predictions of the project's unlabelled images as label "
        "suggestions (needs --project; undo with `linnaeus labels undo`)",
    )
    sub.add_argument("--json", action="store_true", help="print one JSON object")


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability between 0 and 1, not {text!r}")
    return value


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return int(text)


def run_predict(args: argparse.Namespace) -> int:
    """Classify ``args.folder`` with ``args.model``; see `add_commands` for the options."""
    from linnaeus.engine.cli.output import ProgressBar
    from linnaeus.engine.onnx.classify import check_destinations
    from linnaeus.engine.onnx.classify import classify
    from linnaeus.engine.onnx.inference import Classifier

    if args.write_suggestions != (args.project is not None):
        raise LinnaeusError(
            "--write-suggestions and --project go together: name the project "
            "whose unlabelled images should get the suggestions."
        )
    folder: Path = args.folder
    out = args.out or Path.cwd() / f"{folder.resolve().name}_predictions.csv"
    check_destinations(folder, out, args.sort_into)  # `classify` checks again: before the model
    classifier = Classifier(args.model)
    if not args.json:
        print(
            f"Classifying with {args.model.name} ({len(classifier.classes)} classes, "
            f"{model_precision(classifier)}) on {classifier.provider}."
        )
    batch_size = {} if args.batch_size is None else {"batch_size": args.batch_size}
    with ProgressBar(enabled=not args.json) as bar:
        result = classify(
            classifier, folder, out, sort_into=args.sort_into, unknown_below=args.unknown_below,
            suggest_into=args.project, on_progress=bar.update, **batch_size,
        )  # fmt: skip
    summary = _summary(result)
    if args.json:
        print_json(summary)
    else:
        _print_summary(summary)
    return 0


def _summary(result: ClassifyResult) -> dict[str, Any]:
    """What ``predict --json`` prints of a classification."""
    images_per_s = result.images_per_s
    suggestions = None
    if result.suggestions is not None:
        report = result.suggestions
        edit = report.edit.summary() if report.edit else None  # not the per-image changes
        suggestions = asdict(report) | {"project": str(report.project), "edit": edit}
    return {
        "model": str(result.model),
        "provider": result.provider,
        "precision": result.precision,
        "int8_check": result.int8_check.to_dict() if result.int8_check else None,
        "threads": result.threads,
        "folder": str(result.folder),
        "csv": str(result.csv),
        "images": result.images,
        "classified": result.classified,
        "unreadable": len(result.errors),
        "counts": result.counts,
        "unfamiliar": result.unfamiliar,
        "seconds": round(result.seconds, 3),
        "images_per_s": round(images_per_s, 1) if images_per_s is not None else None,
        "errors": [{"path": path, "reason": reason} for path, reason in result.errors],
        "sorted": asdict(result.sorted_copies) if result.sorted_copies else None,
        "suggestions": suggestions,
    }


def model_precision(classifier: Any) -> str:
    """The model file's precision, and for int8 what it cost against the float model."""
    if classifier.precision != "int8":
        return "float32"
    check = classifier.int8_check
    if check is None:
        return "int8; its accuracy against the float model was not recorded (export it again)"
    return f"int8: {check.describe()}"


def _print_summary(summary: dict[str, Any]) -> None:
    from linnaeus.engine.project.store import display_path

    print(
        f"Classified {summary['images']} image files in {summary['seconds']:.1f} s "
        f"({summary['images_per_s']} images/s)."
    )
    width = max([12, *(len(name) for name in summary["counts"])]) + 2
    print("class".ljust(width) + "images".rjust(8))
    for name, count in summary["counts"].items():
        print(name.ljust(width) + str(count).rjust(8))
    if summary["unfamiliar"]:
        print(f"{summary['unfamiliar']} images look unlike the images the model was trained on "
              "(unfamiliar = yes in the CSV): check these by eye.")  # fmt: skip
    errors = summary["errors"]
    errors_seen = {(e["path"], e["reason"]) for e in errors}
    if errors:
        print(f"\n{len(errors)} files could not be read (rows with an error in the CSV):")
        for error in errors[:_MAX_LISTED]:
            print(f"  {display_path(error['path'])}: {error['reason']}")
        if len(errors) > _MAX_LISTED:
            print(f"  ... and {len(errors) - _MAX_LISTED} more (see the CSV).")
    print(f"\nResults written to {summary['csv']}")
    report = summary["sorted"]
    if report:
        folders = ", ".join(f"{name}: {n}" for name, n in report["per_folder"].items())
        print(f"Copied {report['copied']} images into {report['destination']} ({folders}).")
        not_copied = [(p, r) for p, r in report["skipped"] if (p, r) not in errors_seen]
        for path, reason in not_copied[:_MAX_LISTED]:
            print(f"  not copied: {display_path(path)}: {reason}")
    suggestions = summary["suggestions"]
    if suggestions:
        print(
            f"Wrote {suggestions['written']} label suggestions into {suggestions['project']} "
            f"(undo with `linnaeus labels undo --project {suggestions['project']}`)."
        )
