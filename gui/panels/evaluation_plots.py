"""The evaluation panel's plots: the ROC curve with the threshold's point, and the
reliability curve with the number of images behind each point."""

from __future__ import annotations

import pyqtgraph as pg

from linnaeus.engine.evaluation.metrics import Evaluation
from linnaeus.gui.widgets.plots import SERIES_COLOURS
from linnaeus.gui.widgets.plots import pen
from linnaeus.gui.widgets.plots import text_colour


def plot_roc(plot: pg.PlotWidget, evaluation: Evaluation, binary: bool) -> None:
    """One ROC curve per class against the others (two classes: the positive class's)."""
    item = plot.getPlotItem()
    item.clear()
    item.plot([0, 1], [0, 1], pen=pen(text_colour().name(), 1, dashed=True))
    point = evaluation.operating_point
    names = [point.positive_class] if binary and point else evaluation.classes
    for n, name in enumerate(names):
        curve = evaluation.roc.get(name)
        if curve is None or not curve.x:
            continue
        auc = evaluation.auc.get(name)
        label = f"{name} (AUC {auc:.3f})" if auc is not None else name
        colour = SERIES_COLOURS[n % len(SERIES_COLOURS)]
        item.plot(curve.x, curve.y, pen=pen(colour), name=label, antialias=True)
    item.setXRange(0, 1, padding=0.02)
    item.setYRange(0, 1, padding=0.02)


def plot_reliability(plot: pg.PlotWidget, evaluation: Evaluation) -> None:
    """Accuracy against confidence per bin, each point labelled with its image count;
    nothing when the split has too few images (`Evaluation.shows_calibration`)."""
    item = plot.getPlotItem()
    item.clear()
    if not evaluation.shows_calibration:
        return
    item.plot([0, 1], [0, 1], pen=pen(text_colour().name(), 1, dashed=True),
              name="perfectly calibrated")  # fmt: skip
    curve = evaluation.reliability
    colour = SERIES_COLOURS[0]
    item.plot(curve.x, curve.y, pen=pen(colour), symbol="o", symbolSize=7, symbolBrush=colour,
              name="this model (number: images in the bin)", antialias=True)  # fmt: skip
    for x, y, count in zip(curve.x, curve.y, curve.thresholds, strict=True):
        label = pg.TextItem(f"{int(count)}", color=text_colour(), anchor=(0.5, 1.2))
        label.setPos(x, y)
        item.addItem(label)
    item.setXRange(0, 1, padding=0.02)
    item.setYRange(0, 1.05, padding=0.02)
