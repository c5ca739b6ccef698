"""Small self-contained SVG charts and image tags for the HTML report.

No plotting library: a report must open anywhere, offline, as one file.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

import cv2
import numpy as np

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
_W, _H, _PAD = 360, 260, 42


def line_chart(
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    diagonal: bool = False,
    unit_square: bool = True,
    notes: Sequence[tuple[float, float, str]] = (),
) -> str:
    """An SVG line chart of named (x, y) series, with a dot and a small text at each
    of ``notes`` (x, y, text); axes 0..1 if ``unit_square``."""
    xs = [x for xv, _ in series.values() for x in xv] or [0.0, 1.0]
    ys = [y for _, yv in series.values() for y in yv] or [0.0, 1.0]
    x0, x1 = (0.0, 1.0) if unit_square else (min(xs), max(xs) or 1.0)
    y0, y1 = (0.0, 1.0) if unit_square else (min(ys), max(ys) or 1.0)
    x1 = x1 if x1 > x0 else x0 + 1
    y1 = y1 if y1 > y0 else y0 + 1

    def point(x: float, y: float) -> str:
        px = _PAD + (x - x0) / (x1 - x0) * (_W - 1.5 * _PAD)
        py = _H - _PAD - (y - y0) / (y1 - y0) * (_H - 1.7 * _PAD)
        return f"{px:.1f},{py:.1f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" role="img" '
        f'aria-label="{html.escape(title)}">',
        f'<text x="{_W / 2}" y="16" text-anchor="middle" font-weight="bold">{html.escape(title)}'
        "</text>",
        f'<polyline fill="none" stroke="#444" points="{point(x0, y1)} {point(x0, y0)} '
        f'{point(x1, y0)}"/>',
        f'<text x="{_W / 2}" y="{_H - 8}" text-anchor="middle">{html.escape(x_label)}</text>',
        f'<text x="12" y="{_H / 2}" text-anchor="middle" transform="rotate(-90 12 {_H / 2})">'
        f"{html.escape(y_label)}</text>",
        f'<text x="{_PAD - 4}" y="{_H - _PAD + 4}" text-anchor="end" font-size="10">{y0:g}</text>',
        f'<text x="{_PAD - 4}" y="{0.7 * _PAD + 8}" text-anchor="end" font-size="10">'
        f"{y1:.3g}</text>",
        f'<text x="{_W - _PAD / 2}" y="{_H - _PAD + 14}" text-anchor="end" font-size="10">'
        f"{x1:.3g}</text>",
    ]
    if diagonal:
        parts.append(
            f'<polyline fill="none" stroke="#aaa" stroke-dasharray="4 3" '
            f'points="{point(x0, y0)} {point(x1, y1)}"/>'
        )
    for n, (name, (xv, yv)) in enumerate(series.items()):
        colour = PALETTE[n % len(PALETTE)]
        points = " ".join(point(x, y) for x, y in zip(xv, yv, strict=True))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'
        )
        parts.append(
            f'<text x="{_W - 10}" y="{34 + 14 * n}" text-anchor="end" fill="{colour}" '
            f'font-size="11">{html.escape(name)}</text>'
        )
    for x, y, text in notes:
        px, py = point(x, y).split(",")
        parts.append(f'<circle cx="{px}" cy="{py}" r="3" fill="{PALETTE[0]}"/>')
        parts.append(
            f'<text x="{px}" y="{float(py) - 6:.1f}" text-anchor="middle" font-size="10">'
            f"{html.escape(text)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def confusion_table(confusion: Sequence[Sequence[int]], classes: Sequence[str]) -> str:
    """The confusion matrix as an HTML table (rows: labels, columns: the model's
    decisions), shaded by row share."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in classes)
    rows = []
    for name, row in zip(classes, confusion, strict=True):
        total = sum(row) or 1
        cells = []
        for n, count in enumerate(row):
            share = count / total
            hue = "0,114,178" if classes[n] == name else "213,94,0"
            cells.append(f'<td style="background:rgba({hue},{0.1 + 0.8 * share:.2f})">{count}</td>')
        rows.append(f"<tr><th>{html.escape(name)}</th>{''.join(cells)}</tr>")
    return (
        '<table class="confusion"><tr><th>label \\ decided</th>' + head + "</tr>"
        + "".join(rows) + "</table>"
    )  # fmt: skip


def image_tag(pixels: np.ndarray, *, alt: str, width: int = 160) -> str:
    """An inline PNG <img> of an RGB uint8 image."""
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(pixels[..., ::-1]))
    if not ok:
        return ""
    data = base64.b64encode(encoded.tobytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" width="{width}" alt="{html.escape(alt)}">'
