"""Live loss and accuracy curves of a training run, from its progress reports.

Only epoch training is drawn (per epoch: training and validation loss and accuracy).
The quick model trains no epochs: its last layer is fitted once per regularisation
setting and the one with the lowest validation loss is kept, so it is said in
words (`HeadChoice`), not drawn as a curve over settings (which read as training
getting worse). While an anytime training fine-tunes, the quick model's validation
figures are drawn as dashed reference lines: the curves show whether fine-tuning
beats it. The legend is a line of text above the plots, so it never hides data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QBoxLayout
from PySide6.QtWidgets import QLabel
from PySide6.QtWidgets import QVBoxLayout
from PySide6.QtWidgets import QWidget

from linnaeus.engine.progress import EPOCH_PHASES
from linnaeus.engine.progress import TrainingProgress
from linnaeus.engine.progress import curve_key
from linnaeus.gui.widgets.formatting import format_percent
from linnaeus.gui.widgets.plots import BLUE
from linnaeus.gui.widgets.plots import ORANGE
from linnaeus.gui.widgets.plots import make_plot
from linnaeus.gui.widgets.plots import pen
from linnaeus.gui.widgets.plots import text_colour

# engine.progress.TRAINING_PHASES, in the user's words
PHASE_NAMES = {
    "decode": "Reading images",
    "augment": "Drawing augmented views to validate on",
    "embed": "Computing ImageNet features",
    "pretrain": "Learning your images",
    "head": "Fitting the last layer",
    "train": "Training",
    "fine-tune": "Fine-tuning",
    "evaluate": "Measuring accuracy",
}
METRICS = ("loss", "val_loss", "accuracy", "val_accuracy")
SIDE_BY_SIDE_MIN_WIDTH = 560  # pixels: below, the two plots are stacked
HEAD_PHASE = "head"  # the quick model's last layer: settings tried, not epochs
NOTHING_YET = "The loss and accuracy curves appear here, epoch by epoch, while a model trains."
KEPT_EPOCH = (
    "It keeps epoch {epoch}, the one with the lowest validation loss. The curves count the "
    "most probable class; the figure above counts the model's own decisions."
)
NO_EPOCHS = (
    "The quick model trains no epochs, so it has no curves. With a time budget, the "
    "fine-tuning that follows it draws its curves here, epoch by epoch."
)


def phase_name(phase: str) -> str:
    """A training phase in the user's words."""
    return PHASE_NAMES.get(phase, phase.capitalize())


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def stored_progress(curves: Mapping[str, Sequence[float]]) -> list[TrainingProgress]:
    """The progress reports that would have drawn a finished version's stored curves
    (one value per epoch of each phase and metric; phases in training order)."""
    reports = []
    for phase in EPOCH_PHASES:
        columns = {metric: list(curves.get(curve_key(phase, metric)) or []) for metric in METRICS}
        for index in range(max(len(values) for values in columns.values())):
            figures = {m: column[index] for m, column in columns.items() if index < len(column)}
            epoch = {"epoch": index + 1, "batch": 1, "batches": 1}
            reports.append(TrainingProgress(phase, 0, 0, phase=phase, **epoch, **figures))
    return reports


class CurveHistory:
    """Per-epoch training and validation metrics gathered from progress reports.

    Epoch phases follow each other on one epoch axis (training continues where
    pretraining stopped); the quick model's settings (`HEAD_PHASE`) are no epochs
    and are left to `HeadChoice`. Within an epoch the trainer reports running
    averages, so the latest value of an epoch replaces the earlier ones; the
    validation figures of an epoch are taken from its last report (batch ==
    batches), since reports during an epoch repeat the previous epoch's.
    """

    def __init__(self) -> None:
        self.points: dict[str, dict[int, float]] = {metric: {} for metric in METRICS}
        self.phase_starts: list[tuple[int, str]] = []  # (epoch axis offset, phase)
        self._phase: str | None = None
        self._offset = 0
        self._last_epoch = 0

    def add(self, progress: TrainingProgress) -> bool:
        """Take one progress report; True if a curve changed."""
        phase, epoch = progress.phase, progress.epoch
        if phase not in EPOCH_PHASES or phase == HEAD_PHASE or epoch < 1:
            return False
        if phase != self._phase:
            if self._phase is not None:
                self._offset += self._last_epoch
            self._phase, self._last_epoch = phase, 0
            self.phase_starts.append((self._offset, phase))
        self._last_epoch = max(self._last_epoch, epoch)
        x = self._offset + epoch
        keys = ["loss", "accuracy"]
        if progress.batch == progress.batches:  # an epoch's end
            keys += ["val_loss", "val_accuracy"]
        changed = False
        for key in keys:
            value = _number(getattr(progress, key))
            if value is not None:
                self.points[key][x] = value
                changed = True
        return changed

    def series(self, metric: str) -> tuple[list[int], list[float]]:
        """(epochs, values) of one metric, in epoch order."""
        items = sorted(self.points[metric].items())
        return [x for x, _ in items], [y for _, y in items]

    @property
    def empty(self) -> bool:
        return not any(self.points.values())

    def kept_epoch(self) -> int | None:
        """The epoch (on the axis) with the lowest validation loss in the last phase: the
        one a finished version keeps (the trainer restores its weights)."""
        start = self.phase_starts[-1][0] if self.phase_starts else 0
        losses = [(loss, x) for x, loss in sorted(self.points["val_loss"].items()) if x > start]
        return min(losses)[1] if losses else None


class HeadChoice:
    """The quick model's last layer, fitted once per regularisation setting: the
    setting kept (the lowest validation loss, as the recipe picks) and its figures."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.total = 0
        self.strengths: Sequence[float] = ()  # the settings (C), when stored

    def add(self, progress: TrainingProgress) -> bool:
        """Take one progress report; True if it was one of the head's settings."""
        loss = _number(progress.val_loss)
        if progress.phase != HEAD_PHASE or progress.epoch < 1 or loss is None:
            return False
        if progress.epoch == 1:  # a new fit (fine-tuning fits the last layer again)
            self.losses = []
        self.losses.append(loss)
        self.total = progress.epochs
        return True

    @property
    def kept(self) -> int | None:
        """The index of the setting kept, None before any."""
        return min(range(len(self.losses)), key=self.losses.__getitem__) if self.losses else None

    def text(self) -> str:
        """E.g. "Last layer: 6 regularisation settings tried; the one kept (C = 0.01) has
        the lowest validation loss, 0.350." (empty before any setting)."""
        kept = self.kept
        if kept is None:
            return ""
        if len(self.losses) < self.total:
            return (
                f"Fitting the last layer: {len(self.losses)} of {self.total} regularisation "
                f"settings tried; lowest validation loss so far {self.losses[kept]:.3f}."
            )
        setting = f" (C = {self.strengths[kept]:g})" if kept < len(self.strengths) else ""
        return (
            f"Last layer: {len(self.losses)} regularisation settings tried; the one kept"
            f"{setting} has the lowest validation loss, {self.losses[kept]:.3f}."
        )


def version_figures(name: str, kind: str, metrics: Mapping[str, Any]) -> str:
    """A version's validation figures in one sentence, at the model's own decisions,
    e.g. "v1 (quick model): validation accuracy 93.0% at its decisions, on 24 images"."""
    val = metrics.get("val") or {}
    if not val:
        return ""
    words = "fine-tuned" if kind == "accurate" else f"{kind} model"
    images = f", on {val['images']} images" if val.get("images") else ""
    return (
        f"{name} ({words}): validation accuracy {format_percent(val.get('accuracy'))} "
        f"at its decisions{images}."
    )


def legend_html(entries: Sequence[tuple[str, str, bool]]) -> str:
    """The legend as one line of rich text: (colour, name, dashed) per entry."""
    parts = []
    for colour, name, dashed in entries:
        glyph = "╌╌" if dashed else "━●━"
        parts.append(f'<span style="color:{colour}"><b>{glyph}</b></span>&nbsp;{name}')
    return "&nbsp;&nbsp;&nbsp;&nbsp;".join(parts)


class TrainingCurvesView(QWidget):
    """Two plots side by side (stacked when narrow): loss and accuracy per epoch,
    training (blue) and validation (orange), under a sentence on the quick model
    and a legend line; only the sentence while no epoch has been trained."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.history = CurveHistory()
        self.head = HeadChoice()
        self.summary = QLabel(NOTHING_YET, self)
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.legend = QLabel(self)
        self.loss_plot = make_plot(
            self, title="Loss (lower is better)", x_label="Epoch", y_label="Loss",
            legend=None, integer_x=True,
        )  # fmt: skip
        self.accuracy_plot = make_plot(
            self, title="Accuracy (higher is better)", x_label="Epoch", y_label="Accuracy",
            legend=None, integer_x=True,
        )  # fmt: skip
        self.curves: dict[str, pg.PlotDataItem] = {}
        for metric, plot in (("loss", self.loss_plot), ("accuracy", self.accuracy_plot)):
            for key, colour in ((metric, BLUE), (f"val_{metric}", ORANGE)):
                self.curves[key] = plot.plot(
                    [], [], pen=pen(colour), symbol="o", symbolSize=6, symbolBrush=colour,
                    symbolPen=None, antialias=True,
                )  # fmt: skip
        self._markers: list[tuple[pg.PlotWidget, pg.InfiniteLine]] = []
        self._reference: tuple[str, float | None, float | None] | None = None
        self._reference_lines: list[tuple[pg.PlotWidget, pg.InfiniteLine]] = []
        self._version_text = ""
        self.plots = QWidget(self)
        self._layout = QBoxLayout(QBoxLayout.Direction.LeftToRight, self.plots)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.addWidget(self.loss_plot)
        self._layout.addWidget(self.accuracy_plot)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.summary)
        column.addWidget(self.legend)
        column.addWidget(self.plots, 1)
        self._refresh()

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Side by side where there is room, one above the other where the panel is
        narrow (titles stay readable)."""
        super().resizeEvent(event)
        wide = event.size().width() >= SIDE_BY_SIDE_MIN_WIDTH
        direction = QBoxLayout.Direction.LeftToRight if wide else QBoxLayout.Direction.TopToBottom
        if self._layout.direction() != direction:
            self._layout.setDirection(direction)

    def clear(self) -> None:
        self.history = CurveHistory()
        self.head = HeadChoice()
        self._version_text = ""
        for curve in self.curves.values():
            curve.setData([], [])
        for plot, marker in self._markers + self._reference_lines:
            plot.removeItem(marker)
        self._markers, self._reference_lines, self._reference = [], [], None
        self._refresh()

    def show_stored(
        self,
        curves: Mapping[str, Sequence[float]],
        version: tuple[str, str, Mapping[str, Any]] | None = None,
    ) -> None:
        """Show a finished version's curves, as stored with it, instead of a live run;
        ``version`` (name, kind, metrics) adds its validation figures in words."""
        self.clear()
        for progress in stored_progress(curves):
            self.add_progress(progress)
        self.head.strengths = list(curves.get(curve_key(HEAD_PHASE, "C")) or [])
        if version is not None:
            self._version_text = version_figures(*version)
        self._refresh()

    def set_reference(self, name: str, metrics: Mapping[str, Any]) -> None:
        """Draw ``name``'s validation loss and accuracy (most probable class, as the
        curves count it) as dashed lines: what fine-tuning has to beat."""
        val = metrics.get("val") or {}
        loss = _number(val.get("loss"))
        accuracy = _number(val.get("argmax_accuracy", val.get("accuracy")))
        for plot, line in self._reference_lines:
            plot.removeItem(line)
        self._reference_lines = []
        dashed = pen(text_colour().name(), 1.5, dashed=True)
        for plot, value in ((self.loss_plot, loss), (self.accuracy_plot, accuracy)):
            if value is not None:
                line = pg.InfiniteLine(pos=value, angle=0, pen=dashed)
                plot.addItem(line)
                self._reference_lines.append((plot, line))
        self._reference = (name, loss, accuracy)
        self._refresh()

    def add_progress(self, progress: TrainingProgress) -> None:
        """Take one progress report of the trainer."""
        if self.head.add(progress):
            self._refresh()
            return
        starts = len(self.history.phase_starts)
        if not self.history.add(progress):
            return
        if len(self.history.phase_starts) > starts:
            offset = self.history.phase_starts[-1][0]
            if offset > 0:
                self._mark_phase(offset)
        self._refresh()

    def _mark_phase(self, offset: int) -> None:
        """A dashed line where a new phase (e.g. training after pretraining) starts."""
        dashed = pen(text_colour().name(), 1, dashed=True)
        for plot in (self.loss_plot, self.accuracy_plot):
            marker = pg.InfiniteLine(pos=offset + 0.5, angle=90, pen=dashed)
            plot.addItem(marker)
            self._markers.append((plot, marker))

    def _refresh(self) -> None:
        """Curves, ranges, legend and the sentence from what has been gathered."""
        for key, curve in self.curves.items():
            curve.setData(*self.history.series(key))
        sentences = [self._version_text] if self._version_text else []
        kept = self.history.kept_epoch()
        if self._version_text and kept is not None:
            sentences.append(KEPT_EPOCH.format(epoch=kept))
        if self.history.empty:  # the quick model: its choice in words
            sentences += [self.head.text(), NO_EPOCHS] if self.head.kept is not None else []
            sentences = sentences or [NOTHING_YET]
        self.summary.setText("<br>".join(sentences))
        self.summary.setVisible(bool(sentences))
        drawn = not self.history.empty
        self.plots.setVisible(drawn)
        self.legend.setVisible(drawn)
        if drawn:
            self._fit_ranges()
            self.legend.setText(legend_html(self._legend_entries()))

    def _legend_entries(self) -> list[tuple[str, str, bool]]:
        entries = []
        if self.history.points["loss"] or self.history.points["accuracy"]:
            entries.append((BLUE, "training", False))
        if self.history.points["val_loss"] or self.history.points["val_accuracy"]:
            entries.append((ORANGE, "validation", False))
        grey = text_colour().name()
        if self._markers:
            starts = [phase_name(phase) for offset, phase in self.history.phase_starts if offset]
            entries.append((grey, f"{' / '.join(starts)} from here", True))
        if self._reference is not None:
            entries.append((grey, f"{self._reference[0]}, validation (to beat)", True))
        return entries

    def _fit_ranges(self) -> None:
        """Every point (and the reference) inside the plots, none on an edge."""
        xs = [x for metric in METRICS for x in self.history.points[metric]]
        reference = self._reference or ("", None, None)
        for plot, metrics, extra in (
            (self.loss_plot, ("loss", "val_loss"), reference[1]),
            (self.accuracy_plot, ("accuracy", "val_accuracy"), reference[2]),
        ):
            plot.setXRange(min(xs) - 0.5, max(xs) + 0.5, padding=0)
            ys = [y for m in metrics for y in self.history.points[m].values()]
            ys += [extra] if extra is not None else []
            if not ys:
                continue
            low, high = min(ys), max(ys)
            if plot is self.accuracy_plot:
                low, high = max(0.0, min(low, 1.0) - 0.05), 1.0
            margin = max(high - low, 0.02) * 0.08
            plot.setYRange(low - margin, high + margin, padding=0)
