"""``linnaeus predict``: classify a folder with an exported ONNX model.

Needs onnxruntime only, never TensorFlow. Writes one CSV row per image file
(unreadable files included, with the reason), can copy the images into one
folder per class, and can write the predictions as label suggestions into the
project the model was trained for.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections import Counter
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from linnaeus.engine.cli.output import print_json
from linnaeus.engine.errors import LinnaeusError

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
        help="also copy each image into DIR/<class>/ (never moves them)",
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


@dataclass
class _Tally:
    """Counts and errors seen while the predictions stream into the CSV."""

    unknown_below: float | None
    keep: bool  # keep every prediction (for --sort-into)
    hash_root: Path | None  # hash readable files under this folder (for --write-suggestions)
    counts: Counter[str] = field(default_factory=Counter)
    errors: list[tuple[str, str]] = field(default_factory=list)
    kept: list[Any] = field(default_factory=list)
    hashes: list[tuple[str, str]] = field(default_factory=list)  # (content hash, label)

    def watch(self, predictions: Iterable[Any]) -> Iterator[Any]:
        from linnaeus.engine.images.imageio import content_hash
        from linnaeus.engine.onnx.inference import UNKNOWN
        from linnaeus.engine.onnx.inference import shown_label

        for prediction in predictions:
            label = shown_label(prediction, self.unknown_below)
            if label is None:
                self.errors.append((prediction.path, prediction.error or ""))
            else:
                self.counts[label] += 1
                if self.hash_root is not None and label != UNKNOWN:
                    data = _read_bytes(self.hash_root / prediction.path)
                    if data is not None:
                        self.hashes.append((content_hash(data), label))
            if self.keep:
                self.kept.append(prediction)
            yield prediction


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def run_predict(args: argparse.Namespace) -> int:
    """Classify ``args.folder`` with ``args.model``; see `add_commands` for the options."""
    from linnaeus.engine.cli.output import ProgressBar
    from linnaeus.engine.onnx.inference import Classifier
    from linnaeus.engine.onnx.inference import check_destination
    from linnaeus.engine.onnx.inference import sort_into
    from linnaeus.engine.onnx.inference import write_predictions_csv

    folder: Path = args.folder
    if not folder.is_dir():
        raise LinnaeusError(f"{folder} is not a folder (or cannot be opened).")
    if args.write_suggestions != (args.project is not None):
        raise LinnaeusError(
            "--write-suggestions and --project go together: name the project "
            "whose unlabelled images should get the suggestions."
        )
    out = args.out or Path.cwd() / f"{folder.resolve().name}_predictions.csv"
    check_destination(folder, out)
    if out.is_dir() or not out.parent.is_dir():
        raise LinnaeusError(
            f"Cannot write the results to {out}: choose a file in an existing folder with --out."
        )
    if args.sort_into is not None:
        check_destination(folder, args.sort_into)
    classifier = Classifier(args.model)
    if args.project is not None:
        _check_model_fits_project(classifier.metadata, args.project)
    if not args.json:
        print(
            f"Classifying with {args.model.name} ({len(classifier.classes)} classes, "
            f"{model_precision(classifier)}) on {classifier.provider}."
        )

    tally = _Tally(
        args.unknown_below,
        keep=args.sort_into is not None,
        hash_root=folder if args.write_suggestions else None,
    )
    started = time.perf_counter()
    with ProgressBar(enabled=not args.json) as bar:
        batch_size = {} if args.batch_size is None else {"batch_size": args.batch_size}
        predictions = classifier.classify_folder(folder, on_progress=bar.update, **batch_size)
        first = next(predictions, None)
        if first is None:
            raise LinnaeusError(f"There are no image files in {folder}.")
        rows = write_predictions_csv(
            tally.watch(itertools.chain([first], predictions)),
            classifier.classes,
            out,
            unknown_below=args.unknown_below,
        )
    seconds = time.perf_counter() - started

    sorted_report = None
    if args.sort_into is not None:
        with ProgressBar(enabled=not args.json) as bar:
            sorted_report = sort_into(
                tally.kept,
                folder,
                args.sort_into,
                classifier.classes,
                unknown_below=args.unknown_below,
                on_progress=bar.update,
            )
    suggestions = (
        _write_suggestions(args.project, tally.hashes, args.model) if args.project else None
    )

    summary = {
        "model": str(args.model),
        "provider": classifier.provider,
        "precision": classifier.precision,
        "int8_check": classifier.int8_check.to_dict() if classifier.int8_check else None,
        "threads": classifier.threads,
        "folder": str(folder),
        "csv": str(out),
        "images": rows,
        "classified": rows - len(tally.errors),
        "unreadable": len(tally.errors),
        "counts": {name: tally.counts[name] for name in _count_order(classifier.classes, tally)},
        "seconds": round(seconds, 3),
        "images_per_s": round(rows / seconds, 1) if seconds > 0 else None,
        "errors": [{"path": path, "reason": reason} for path, reason in tally.errors],
        "sorted": asdict(sorted_report) if sorted_report else None,
        "suggestions": suggestions,
    }
    if args.json:
        print_json(summary)
    else:
        _print_summary(summary)
    return 0


def model_precision(classifier: Any) -> str:
    """The model file's precision, and for int8 what it cost against the float model."""
    if classifier.precision != "int8":
        return "float32"
    check = classifier.int8_check
    if check is None:
        return "int8; its accuracy against the float model was not recorded (export it again)"
    return f"int8: {check.describe()}"


def _count_order(classes: list[str], tally: _Tally) -> list[str]:
    extra = [name for name in tally.counts if name not in classes]  # "unknown"
    return [*classes, *extra]


def _check_model_fits_project(metadata: Any, project: Path) -> None:
    """Refuse a model trained for another project than ``project``."""
    from linnaeus.engine.project.store import ProjectStore

    with ProjectStore.open(project) as store:
        project_id = store.meta("project_id")
        classes = {c.name for c in store.classes()}
    missing = [name for name in metadata.classes if name not in classes]
    if metadata.project_id and project_id and metadata.project_id != project_id:
        reason = "its project id differs from this project's"
    elif missing:
        reason = f"this project has no class {', '.join(map(repr, missing))}"
    else:
        return
    raise LinnaeusError(
        f"This model was trained for another project ({reason}); no suggestions were written "
        f"to {project}."
    )


def _write_suggestions(project: Path, hashes: list[tuple[str, str]], model: Path) -> dict[str, Any]:
    """Give the project's unlabelled images with the same content as a classified
    file that file's predicted class, as one undoable edit of source model-suggestion."""
    from linnaeus.engine.project.store import ProjectStore

    predicted = dict(hashes)
    with ProjectStore.open(project) as store:
        labels = {
            image.id: predicted[image.content_hash]
            for image in store.images(unlabelled=True)
            if image.content_hash in predicted
        }
        edit = None
        if labels:
            edit = store.apply_labels(
                labels,
                source="model-suggestion",
                description=f"suggest labels for {len(labels)} image(s) from model {model.name}",
            )
    return {
        "project": str(project),
        "written": edit.image_count if edit else 0,
        "edit": asdict(edit) if edit else None,
    }


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
