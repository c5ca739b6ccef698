"""Numbers as the panels show them to people: durations, percentages, sizes."""

from __future__ import annotations

import math

from linnaeus.engine.progress import duration_words


def format_duration(seconds: float | None) -> str:
    """``"45 s"``, ``"3 min 20 s"``, ``"1 h 05 min"``; an em dash when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "—"
    return duration_words(seconds)


def format_percent(value: float | None, decimals: int = 1) -> str:
    """``0.9444`` -> ``"94.4%"``; an em dash when unknown."""
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value * 100:.{decimals}f}%"


def format_size(size_bytes: int | None) -> str:
    """``1_234_567`` -> ``"1.2 MB"``."""
    if size_bytes is None:
        return "—"
    size = float(size_bytes)
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def format_rate(images_per_s: float | None) -> str:
    """``1234.5`` -> ``"1,235 images/s"``; empty when unknown."""
    if images_per_s is None or not math.isfinite(images_per_s) or images_per_s <= 0:
        return ""
    return f"{images_per_s:,.0f} images/s" if images_per_s >= 10 else f"{images_per_s:.1f} images/s"
