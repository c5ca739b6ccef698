"""``linnaeus evaluate``, ``linnaeus report`` and ``linnaeus export``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from linnaeus.engine.cli.protocol import print_json


def add_commands(commands: Any, project_options: Any) -> None:
    """Register the commands that measure and ship a trained model."""
    sub = commands.add_parser("evaluate", help="Measure a model version on a split.")
    sub.set_defaults(run=run_evaluate)
    project_options(sub)
    sub.add_argument("--model", help="model version, e.g. v3 (default: the active one)")
    sub.add_argument("--split", default="test", choices=("val", "test", "train"))
    sub.add_argument("--queue", type=int, default=10, help="how many images of the relabel "
                     "queue to list (misclassified and highest loss first)")  # fmt: skip

    sub = commands.add_parser("report", help="Write a self-contained HTML model card.")
    sub.set_defaults(run=run_report)
    project_options(sub)
    sub.add_argument("--model", help="model version (default: the active one)")
    sub.add_argument("--out", type=Path, required=True, help="the .html file to write")

    sub = commands.add_parser("export", help="Export a model version to one .onnx file.")
    sub.set_defaults(run=run_export)
    project_options(sub)
    sub.add_argument("--model", help="model version (default: the active one)")
    sub.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
    sub.add_argument("--int8", action="store_true", help="write the model quantised to int8 "
                     "instead (smaller, faster on CPUs); it is compared with the float model "
                     "on held-out images and the accuracy change is reported and stored in "
                     "the file")  # fmt: skip
    sub.add_argument("--keras", action="store_true", help="also copy the Keras model beside "
                     "the .onnx file, for Keras users (otherwise it stays in the "
                     "project)")  # fmt: skip


def chosen_version(store: Any, text: str | None) -> Any:
    """The version named on the command line, or the active one."""
    from linnaeus.engine.errors import ProjectError
    from linnaeus.engine.project import versions

    if text:
        return versions.get_version(store, versions.parse_version(text))
    active = versions.active_version(store)
    if active is None:
        raise ProjectError("This project has no trained model yet: run `linnaeus train` first.")
    return active


def run_evaluate(args: argparse.Namespace) -> int:
    from linnaeus.engine.evaluation.version import evaluate_version
    from linnaeus.engine.evaluation.version import version_relabel_queue
    from linnaeus.engine.project.store import ProjectStore
    from linnaeus.engine.project.store import display_path

    with ProjectStore.open(args.project) as store:
        version = chosen_version(store, args.model)
        evaluation = evaluate_version(store, version, args.split)
        queue = version_relabel_queue(store, version)[: args.queue]
        paths = {item.image_id: display_path(store.image(item.image_id).path) for item in queue}
    result = evaluation.to_dict() | {"model_version": version.name}
    result["relabel_queue"] = [
        {"path": paths[item.image_id], "label": version.classes[item.label],
         "predicted": version.classes[item.predicted], "confidence": item.confidence,
         "loss": item.loss, "misclassified": item.misclassified}
        for item in queue
    ]  # fmt: skip
    if args.json:
        print_json(result)
        return 0
    _print_evaluation(result)
    return 0


def _interval(result: dict[str, Any], key: str, value: float | None = None) -> str:
    value = result.get(key) if value is None else value
    ci = result.get("ci", {}).get(key)
    if value is None:
        return "n/a"
    return f"{value:.1%}" + (f" (95% CI {ci['low']:.1%}-{ci['high']:.1%})" if ci else "")


def auc_text(result: dict[str, Any]) -> str:
    """The macro AUC with its bootstrap interval, or why it has none."""
    ci = result.get("ci", {}).get("macro_auc")
    if ci is None:
        return f"{result['macro_auc']:.3f} (no interval: too few images of a class)"
    return f"{result['macro_auc']:.3f} (95% CI {ci['low']:.3f}-{ci['high']:.3f}, bootstrap)"


def _print_evaluation(result: dict[str, Any]) -> None:
    print(f"{result['model_version']} on the {result['split']} split ({result['images']} images)")
    point = result.get("operating_point")
    if point:
        print(f"  decides {result['decision_rule']} ({result['threshold_origin']})")
    print(f"  accuracy           {_interval(result, 'accuracy')}")
    if point:
        for key in ("sensitivity", "specificity", "precision"):
            print(f"  {key:<19}{_interval(result, key, point[key])}")
        print(f"  accuracy of the most probable class (argmax, secondary) "
              f"{result['argmax_accuracy']:.1%}")  # fmt: skip
    print(f"  balanced accuracy  {_interval(result, 'balanced_accuracy')}")
    if result.get("macro_auc") is not None:
        print(f"  AUC                {auc_text(result)}")
    print(f"  calibration error  {result['ece']:.3f} (temperature {result['temperature']:.2f})")
    for note in result["notes"]:
        print(f"  note: {note}")
    width = max(len(c) for c in result["classes"]) + 2
    print("\n" + "class".ljust(width) + "precision  recall      F1   images")
    for name, m in result["per_class"].items():
        print(f"{name.ljust(width)}{m['precision']:9.3f}{m['recall']:8.3f}{m['f1']:8.3f}"
              f"{m['support']:9d}")  # fmt: skip
    print("\nconfusion (rows: label, columns: the model's decision)")
    for name, row in zip(result["classes"], result["confusion"], strict=True):
        print(name.ljust(width) + "".join(f"{n:7d}" for n in row))
    if result["relabel_queue"]:
        print("\nCheck these labels first:")
        for item in result["relabel_queue"]:
            mark = "!" if item["misclassified"] else " "
            print(f" {mark} {item['path']}: labelled {item['label']}, model says "
                  f"{item['predicted']} ({item['confidence']:.0%})")  # fmt: skip


def run_report(args: argparse.Namespace) -> int:
    from linnaeus.engine.cli.output import ProgressBar
    from linnaeus.engine.project.store import ProjectStore
    from linnaeus.engine.report.model_card import write_report

    with ProjectStore.open(args.project) as store, ProgressBar(enabled=not args.json) as bar:
        version = chosen_version(store, args.model)
        path = write_report(store, version, args.out, on_progress=bar.update)
    if args.json:
        print_json({"report": str(path), "model_version": version.name})
    else:
        print(f"Wrote the model card of {version.name} to {path}.")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from linnaeus.engine.cli.output import ProgressBar
    from linnaeus.engine.project import lock as project_lock
    from linnaeus.engine.project.store import ProjectStore

    with ProjectStore.open(args.project) as store, ProgressBar(enabled=not args.json) as bar:
        version = chosen_version(store, args.model)
        # Taken before TensorFlow loads, so that a busy project is said at once.
        with project_lock.hold(store.project_dir, f"exporting {version.name}"):
            from linnaeus.engine.onnx.export import export_version

            report = export_version(
                store, version, args.out, int8=args.int8, keras_copy=args.keras,
                on_progress=bar.update,
            )  # fmt: skip
    keras = report.keras_path or version.model_file
    payload = {
        "model_version": version.name, "onnx": str(report.path), "keras": str(keras),
        "max_abs_difference": report.max_abs_difference, "images_checked": report.images_checked,
        "int8": report.int8, "int8_accuracy_change": report.int8_accuracy_change,
        "int8_check": report.int8_check.to_dict() if report.int8_check else None,
        "size_bytes": report.size_bytes, "seconds": report.seconds,
    }  # fmt: skip
    if args.json:
        print_json(payload)
        return 0
    print(f"Exported {version.name} to {report.path} ({report.size_bytes / 1e6:.1f} MB) in "
          f"{report.seconds:.0f} s; the Keras model is at {keras}.")  # fmt: skip
    print(f"Checked on {report.images_checked} project images: largest difference from the "
          f"trained model {report.max_abs_difference:.1e}.")  # fmt: skip
    if report.int8_check:
        change = report.int8_accuracy_change
        print(f"int8: accuracy change {'n/a' if change is None else f'{100 * change:+.1f} points'}"
              f"; {report.int8_check.describe()}.")  # fmt: skip
    return 0
