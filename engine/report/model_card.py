"""The HTML model card: one self-contained file a user can attach to a paper
or an ethics application (data, splits, metrics with confidence intervals,
confusion matrix, curves, calibration, misclassified examples with heatmaps,
software versions)."""

from __future__ import annotations

import html
import importlib.metadata
import platform
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from linnaeus.engine import __version__
from linnaeus.engine.atomic import atomic_write_bytes
from linnaeus.engine.evaluation.intervals import few_images_note
from linnaeus.engine.evaluation.metrics import AUGMENTED_VIEWS_NOTE
from linnaeus.engine.evaluation.metrics import CALIBRATION_MIN_IMAGES
from linnaeus.engine.evaluation.metrics import calibration_note
from linnaeus.engine.evaluation.version import evaluate_version
from linnaeus.engine.evaluation.version import version_relabel_queue
from linnaeus.engine.images.imageio import read_image
from linnaeus.engine.images.imageio import to_rgb_uint8
from linnaeus.engine.images.preprocess import InputFormat
from linnaeus.engine.images.preprocess import prepare_image
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import Progress
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import check_cancelled
from linnaeus.engine.progress import ignore_progress
from linnaeus.engine.project import versions
from linnaeus.engine.project.store import ProjectStore
from linnaeus.engine.project.store import display_path
from linnaeus.engine.project.versions import ModelVersion
from linnaeus.engine.report.charts import confusion_table
from linnaeus.engine.report.charts import image_tag
from linnaeus.engine.report.charts import line_chart
from linnaeus.engine.report.charts import overlay

EXAMPLES = 12
PACKAGES = ("numpy", "opencv-python-headless", "tensorflow-cpu", "tensorflow", "keras",
            "onnxruntime", "tf2onnx", "scikit-learn", "pydicom")  # fmt: skip
_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:right}th{background:#f4f4f4}table.facts td{text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:1em}
.examples{display:flex;flex-wrap:wrap;gap:.8em}.examples figure{margin:0;width:330px}
figcaption{font-size:.85em}.note{color:#555;font-size:.9em}
.user-note{white-space:pre-wrap;border-left:3px solid #0072B2;padding:.2em .8em;background:#f4f8fb}
"""


def write_report(
    store: ProjectStore,
    version: ModelVersion,
    destination: Path,
    *,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> Path:
    """Write the model card of ``version`` to ``destination`` (atomically)."""
    on_progress(Progress("report", 0, 3, "Measuring the model"))
    evaluations = {}
    for split in ("val", "test"):
        try:
            evaluations[split] = evaluate_version(store, version, split).to_dict()
        except Exception as error:  # a split without images is reported, not fatal
            evaluations[split] = {"error": str(error)}
    check_cancelled(cancel)
    on_progress(Progress("report", 1, 3, "Drawing heatmaps of misclassified images"))
    examples = _examples(store, version, cancel)
    on_progress(Progress("report", 2, 3, "Writing the report"))
    page = _page(store, version, evaluations, examples)
    atomic_write_bytes(destination, page.encode("utf-8"))
    on_progress(Progress("report", 3, 3, f"Wrote {destination}"))
    return destination


def _page(
    store: ProjectStore, version: ModelVersion, evaluations: dict[str, Any], examples: str
) -> str:
    title = f"Model card: {version.display_name} ({version.kind}) of {store.project_dir.name}"
    note = f'<p class="user-note">{html.escape(version.note)}</p>' if version.note else ""
    sections = [
        f"<h1>{html.escape(title)}</h1>", note,
        f'<p class="note">Made by Linnaeus {__version__} on {version.finished_at or "?"}. '
        "Every figure counts the decisions the exported model makes: the calibration "
        "(temperature) fitted on the validation split and, for two classes, the decision "
        "threshold saved with the model (the operating point below says where it was "
        "chosen). 95% intervals: Wilson score intervals for accuracy, sensitivity, "
        "specificity and precision; a bootstrap over images for the AUC.</p>",
        "<h2>Data</h2>", _data_section(store, version),
        "<h2>Model and training</h2>", _training_section(version),
    ]  # fmt: skip
    validation = "Validation split"
    if evaluations["val"].get("augmented_views"):
        validation = "Validation: augmented views of the training images"
    for split, label in (("test", "Test split"), ("val", validation)):
        sections += [f"<h2>{label}</h2>", _metrics_section(evaluations[split], version.classes)]
    sections += [
        "<h2>Training curves</h2>", _curves_section(version),
        "<h2>Misclassified and least certain images</h2>", examples,
        "<h2>Software</h2>", _software_section(),
        "<h2>Intended use and limits</h2>",
        "<p>This model was trained on the images and labels listed above and is only as good as "
        "they are. It is a decision aid, not a diagnosis: check its output, especially for "
        "images unlike the training images (other devices, sites, stains or populations).</p>",
    ]  # fmt: skip
    body = "\n".join(sections)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>'
        f"{html.escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def _data_section(store: ProjectStore, version: ModelVersion) -> str:
    snapshot = versions.label_snapshot(store, version.id)
    counts = Counter((version.classes[c], s) for c, s in snapshot.values())
    splits = ("train", "val", "test")
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th>"
        + "".join(f"<td>{counts[name, s]}</td>" for s in splits)
        + f"<td>{sum(counts[name, s] for s in splits)}</td></tr>"
        for name in version.classes
    )
    statuses = store.status_counts()
    views = ""
    if version.metrics.get("val", {}).get("augmented_views"):
        views = f'<p class="note">{html.escape(AUGMENTED_VIEWS_NOTE)}</p>'
    return (
        f"<p>Images in <code>{html.escape(str(store.image_root))}</code>: "
        f"{sum(statuses.values())} files, {statuses.get('unreadable', 0)} unreadable, "
        f"{statuses.get('missing', 0)} missing. Splits are fixed by seed, stratified by class and "
        "grouped by patient/specimen where groups are known.</p>"
        "<table><tr><th>class</th><th>train</th><th>validation</th><th>test</th><th>total</th>"
        f"</tr>{rows}</table>{views}"
    )


def _training_section(version: ModelVersion) -> str:
    config = version.config
    backbone = f" ({config['backbone']})" if config.get("backbone") else ""
    colour = "grayscale" if config.get("channels") == 1 else "colour"
    binarised = ", binarised" if config.get("binarize") else ""
    changes = [f"{k} {v}" for k, v in version.augmentation.items() if v]
    facts = {
        "model": version.kind + backbone,
        "input": f"{config.get('image_size')} px, {colour}, {config.get('resize')}{binarised}",
        "augmentation": ", ".join(changes) or "none",
        "class imbalance": config.get("imbalance"),
        "training time": f"{version.duration_s or 0:.0f} s on {version.device}",
        "seed": config.get("seed"),
    }
    rows = "".join(f"<tr><th>{k}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts.items())
    return f'<table class="facts">{rows}</table>'


def _ci(evaluation: dict[str, Any], key: str, value: float | None = None) -> str:
    """A figure with its 95% interval; "n/a" (with the reason) when it is undefined."""
    value = evaluation.get(key) if value is None else value
    interval = evaluation.get("ci", {}).get(key)
    if value is None:
        return "n/a (no image it applies to)"
    text = f"{value:.3f}"
    if interval and interval.get("low") is not None:
        text += f" ({interval['low']:.3f} – {interval['high']:.3f})"
    elif key == "macro_auc":
        text += " (no interval: too few images of a class for the bootstrap)"
    return text


def _summary_rows(evaluation: dict[str, Any]) -> list[tuple[str, str]]:
    """The headline figures: the decision rule and what it achieves, then the rest."""
    point = evaluation.get("operating_point")
    rows = [("images", str(evaluation["images"]))]
    if point:
        rows += [
            ("operating point", html.escape(f"{evaluation['decision_rule']} (positive class "
                                            f"{point['positive_class']})")),
            ("decision threshold",
             f"{point['threshold']:.3f}, {html.escape(evaluation['threshold_origin'])}"),
        ]  # fmt: skip
    rows.append(("accuracy", _ci(evaluation, "accuracy")))
    if point:
        rows += [(key, _ci(evaluation, key, point[key]))
                 for key in ("sensitivity", "specificity", "precision")]  # fmt: skip
        rows.append(("accuracy of the most probable class (argmax; secondary)",
                     f"{evaluation['argmax_accuracy']:.3f}"))  # fmt: skip
    rows += [
        ("balanced accuracy", f"{evaluation['balanced_accuracy']:.3f}"),
        ("macro AUC", _ci(evaluation, "macro_auc")),
        ("expected calibration error", f"{evaluation['ece']:.3f}"),
        ("temperature (calibration)", f"{evaluation.get('temperature', 1.0):.2f}"),
    ]
    return rows


def _metrics_section(evaluation: dict[str, Any], classes: list[str]) -> str:
    if "error" in evaluation:
        return f"<p>{html.escape(evaluation['error'])}</p>"
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in _summary_rows(evaluation))
    few = few_images_note(evaluation["images"])  # the calibration note goes with its chart
    shown = [AUGMENTED_VIEWS_NOTE] if evaluation.get("augmented_views") else []
    notes = "".join(f'<p class="note">{html.escape(note)}</p>' for note in [*shown, few] if note)
    per_class = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{m['precision']:.3f}</td><td>{m['recall']:.3f}</td>"
        f"<td>{m['f1']:.3f}</td><td>{m['support']}</td>"
        f"<td>{_fmt(evaluation['auc'].get(name))}</td></tr>"
        for name, m in evaluation["per_class"].items()
    )
    roc = {n: (c["x"], c["y"]) for n, c in evaluation["roc"].items()}
    pr = {n: (c["x"], c["y"]) for n, c in evaluation["pr"].items()}
    charts = (
        line_chart(roc, title="ROC (one vs rest)", x_label="1 - specificity",
                   y_label="sensitivity", diagonal=True)
        + line_chart(pr, title="Precision-recall", x_label="recall", y_label="precision")
        + _reliability_chart(evaluation)
    )  # fmt: skip
    return (
        f'<table class="facts">{table}</table>{notes}<table><tr><th>class</th><th>precision</th>'
        f"<th>recall</th><th>F1</th><th>images</th><th>AUC</th></tr>{per_class}</table>"
        f"{confusion_table(evaluation['confusion'], classes)}<div class=charts>{charts}</div>"
    )


def _reliability_chart(evaluation: dict[str, Any]) -> str:
    """The reliability curve with each bin's image count, or why it is not drawn."""
    if evaluation["images"] < CALIBRATION_MIN_IMAGES:
        return f'<p class="note">{html.escape(calibration_note(evaluation["images"]))}</p>'
    curve = evaluation["reliability"]
    counts = [(x, y, f"{n:.0f}") for x, y, n in zip(curve["x"], curve["y"], curve["thresholds"],
                                                   strict=True)]  # fmt: skip
    return line_chart({"model": (curve["x"], curve["y"])},
                      title="Reliability (numbers: images per bin)", x_label="confidence",
                      y_label="accuracy", diagonal=True, notes=counts)  # fmt: skip


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _curves_section(version: ModelVersion) -> str:
    curves = version.curves
    # "head_*" curves are over regularisation strengths, not epochs: not plotted here.
    losses = {k: v for k, v in curves.items() if k.endswith("loss") and not k.startswith("head_")}
    if not losses or not any(len(v) > 1 for v in losses.values()):
        return '<p class="note">This model fitted its last layer directly (no epochs to plot).</p>'
    series = {k: (list(range(1, len(v) + 1)), v) for k, v in losses.items() if len(v) > 1}
    return line_chart(series, title="Loss per epoch", x_label="epoch", y_label="loss",
                      unit_square=False)  # fmt: skip


def _examples(store: ProjectStore, version: ModelVersion, cancel: CancelToken | None) -> str:
    queue = [item for item in version_relabel_queue(store, version)][:EXAMPLES]
    if not queue:
        return "<p>No labelled images with predictions.</p>"
    fmt = InputFormat.from_dict(
        {"size": version.config.get("image_size"), **{k: version.config[k]
         for k in ("channels", "resize", "binarize") if k in version.config}}
    )  # fmt: skip
    images = []
    for item in queue:
        record = store.image(item.image_id)
        try:
            images.append((item, record, read_image(store.image_root / record.path).pixels))
        except Exception:  # unreadable since training: leave it out
            continue
    if not images:
        return "<p>The example images can no longer be read.</p>"
    heatmaps = _heatmaps(
        version, [pixels for _, _, pixels in images], fmt, [i.predicted for i, _, _ in images]
    )
    figures = []
    for (item, record, pixels), heat in zip(images, heatmaps, strict=True):
        check_cancelled(cancel)
        rgb = to_rgb_uint8(pixels)
        shown = overlay(rgb, heat) if heat is not None else rgb
        verdict = "misclassified" if item.misclassified else "correct, low confidence"
        caption = (
            f"{display_path(record.path)}<br>label <b>{html.escape(version.classes[item.label])}"
            f"</b>, decided <b>{html.escape(version.classes[item.predicted])}</b> "
            f"({item.confidence:.0%}); {verdict}"
        )
        figures.append(
            f"<figure>{image_tag(rgb, alt='image')}{image_tag(shown, alt='heatmap')}"
            f"<figcaption>{caption}</figcaption></figure>"
        )
    return (
        '<p class="note">Heatmaps show where the model found evidence for the class it '
        'predicted (class activation maps).</p><div class="examples">' + "".join(figures) + "</div>"
    )


def _heatmaps(
    version: ModelVersion, originals: list[np.ndarray], fmt: InputFormat, classes: list[int]
) -> list[np.ndarray | None]:
    """Heatmaps at each original image's size, or None when TensorFlow is absent."""
    try:
        import keras

        from linnaeus.engine.images.heatmaps import heatmap_to_image
        from linnaeus.engine.training.keras_explanation import class_activation_maps
    except ImportError:
        return [None] * len(originals)
    model = keras.models.load_model(version.model_file)
    prepared = np.stack([prepare_image(p, fmt) for p in originals])
    cams, _ = class_activation_maps(model, prepared)
    return [
        heatmap_to_image(cam[..., k], original.shape[:2], fmt)
        for cam, k, original in zip(cams, classes, originals, strict=True)
    ]


def _software_section() -> str:
    rows = [("Linnaeus", __version__), ("Python", sys.version.split()[0]),
            ("platform", platform.platform())]  # fmt: skip
    for package in PACKAGES:
        try:
            rows.append((package, importlib.metadata.version(package)))
        except importlib.metadata.PackageNotFoundError:
            continue
    return (
        "<table>"
        + "".join(f"<tr><th>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
        + "</table>"
    )
