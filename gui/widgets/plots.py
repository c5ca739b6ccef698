"""pyqtgraph plots that follow the application's palette (light or dark)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QColor
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication
from PySide6.QtWidgets import QWidget

# Okabe-Ito colours: told apart by colour-blind readers too.
BLUE = "#0072B2"
ORANGE = "#E69F00"
VERMILION = "#D55E00"
GREEN = "#009E73"
PURPLE = "#CC79A7"
SKY = "#56B4E9"
SERIES_COLOURS = (BLUE, ORANGE, GREEN, VERMILION, PURPLE, SKY)


class IntegerAxis(pg.AxisItem):
    """An axis with ticks at whole numbers only (epochs)."""

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list:
        levels = []
        for spacing, values in super().tickValues(minVal, maxVal, size):
            whole = [v for v in values if float(v).is_integer()]
            if whole:
                levels.append((max(spacing, 1.0), whole))
        return levels


def text_colour() -> QColor:
    return QApplication.palette().color(QPalette.ColorRole.Text)


LEGEND_OFFSETS = {"top-right": (-8, 8), "bottom-right": (-8, -8), "top-left": (8, 8)}


def make_plot(
    parent: QWidget | None,
    *,
    title: str,
    x_label: str,
    y_label: str,
    legend: str | None = "top-right",
    integer_x: bool = False,
) -> pg.PlotWidget:
    """A plot with the palette's background and text colours, a light grid and a legend
    in the corner named by ``legend`` (None: no legend); ``integer_x`` ticks whole numbers."""
    palette = QApplication.palette()
    axes = {"bottom": IntegerAxis("bottom")} if integer_x else None
    plot = pg.PlotWidget(parent, background=palette.color(QPalette.ColorRole.Base), axisItems=axes)
    text = text_colour()
    plot.setTitle(title, color=text.name(), size="10pt")
    item = plot.getPlotItem()
    for side, label in (("bottom", x_label), ("left", y_label)):
        axis = item.getAxis(side)
        axis.setPen(pg.mkPen(palette.color(QPalette.ColorRole.Mid)))
        axis.setTextPen(pg.mkPen(text))
        axis.setLabel(label)
        axis.enableAutoSIPrefix(False)  # "0.35", not "350 (x0.001)"
    item.showGrid(x=True, y=True, alpha=0.15)
    item.setMenuEnabled(False)  # pyqtgraph's menu speaks to programmers, not to our users
    plot.setMinimumSize(160, 120)
    if legend is not None:
        background = palette.color(QPalette.ColorRole.Base)
        background.setAlpha(220)
        item.addLegend(
            offset=LEGEND_OFFSETS[legend], labelTextColor=text, brush=pg.mkBrush(background)
        )
    return plot


def pen(colour: str, width: float = 2.0, dashed: bool = False) -> pg.QtGui.QPen:
    style = pg.QtCore.Qt.PenStyle.DashLine if dashed else pg.QtCore.Qt.PenStyle.SolidLine
    return pg.mkPen(colour, width=width, style=style)
