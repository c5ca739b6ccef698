"""Live loss and accuracy curves of a training run, from its progress reports."""

from __future__ import annotations

import math
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import pyqtgraph as pg
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QBoxLayout
from PySide6.QtWidgets import QWidget

from linnaeus.engine.progress import EPOCH_PHASES
from linnaeus.engine.progress import TrainingProgress
from linnaeus.engine.progress import curve_key
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

    Phases follow each other on one epoch axis (fine-tuning continues where the
    head's training stopped). Within an epoch the trainer reports running
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
        if phase not in EPOCH_PHASES or epoch < 1:
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


class TrainingCurvesView(QWidget):
    """Two plots side by side: loss and accuracy, training (blue) and validation (orange)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.history = CurveHistory()
        self.loss_plot = make_plot(
            self, title="Loss (lower is better)", x_label="Epoch", y_label="Loss", integer_x=True
        )
        self.accuracy_plot = make_plot(
            self,
            title="Accuracy (higher is better)",
            x_label="Epoch",
            y_label="Accuracy",
            legend="bottom-right",
            integer_x=True,
        )
        self.accuracy_plot.setYRange(0, 1, padding=0.02)
        self.accuracy_plot.getPlotItem().getViewBox().setLimits(yMin=-0.05, yMax=1.05)
        self.curves: dict[str, pg.PlotDataItem] = {}
        for metric, plot in (("loss", self.loss_plot), ("accuracy", self.accuracy_plot)):
            for key, name, colour in (
                (metric, "training", BLUE),
                (f"val_{metric}", "validation", ORANGE),
            ):
                self.curves[key] = plot.plot(
                    [],
                    [],
                    name=name,
                    pen=pen(colour),
                    symbol="o",
                    symbolSize=5,
                    symbolBrush=colour,
                    symbolPen=None,
                    antialias=True,
                )
        self._markers: list[tuple[pg.PlotWidget, pg.InfiniteLine, pg.PlotDataItem]] = []
        self._layout = QBoxLayout(QBoxLayout.Direction.LeftToRight, self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.addWidget(self.loss_plot)
        self._layout.addWidget(self.accuracy_plot)

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Side by side where there is room, one above the other where the panel is
        narrow (titles and legends stay readable)."""
        super().resizeEvent(event)
        wide = event.size().width() >= SIDE_BY_SIDE_MIN_WIDTH
        direction = QBoxLayout.Direction.LeftToRight if wide else QBoxLayout.Direction.TopToBottom
        if self._layout.direction() != direction:
            self._layout.setDirection(direction)

    def clear(self) -> None:
        self.history = CurveHistory()
        for curve in self.curves.values():
            curve.setData([], [])
        for plot, marker, sample in self._markers:
            plot.removeItem(marker)
            plot.getPlotItem().legend.removeItem(sample)
        self._markers = []

    def show_stored(self, curves: Mapping[str, Sequence[float]]) -> None:
        """Show a finished version's curves, as stored with it, instead of a live run."""
        self.clear()
        for progress in stored_progress(curves):
            self.add_progress(progress)

    def add_progress(self, progress: TrainingProgress) -> None:
        """Take one progress report of the trainer."""
        starts = len(self.history.phase_starts)
        if not self.history.add(progress):
            return
        for key, curve in self.curves.items():
            curve.setData(*self.history.series(key))
        if len(self.history.phase_starts) > starts:
            offset, phase = self.history.phase_starts[-1]
            # The quick model's last layer is fitted once per regularisation setting.
            x_label = "Setting tried" if phase == "head" else "Epoch"
            for plot in (self.loss_plot, self.accuracy_plot):
                plot.getPlotItem().getAxis("bottom").setLabel(x_label)
            if offset > 0:
                self._mark_phase(offset, phase)

    def _mark_phase(self, offset: int, phase: str) -> None:
        """A dashed line where a new phase (e.g. fine-tuning) starts, named in the legend
        (a label on the line itself would run off the plot's edge)."""
        dashed = pen(text_colour().name(), 1, dashed=True)
        name = f"{phase_name(phase)} from here"
        for plot in (self.loss_plot, self.accuracy_plot):
            marker = pg.InfiniteLine(pos=offset + 0.5, angle=90, pen=dashed)
            plot.addItem(marker)
            sample = pg.PlotDataItem(pen=dashed)
            plot.getPlotItem().legend.addItem(sample, name)
            self._markers.append((plot, marker, sample))
