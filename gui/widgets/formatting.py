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


_SEPARATORS = "_- ./"


def short_class_names(names: list[str]) -> list[str]:
    """The class names without the prefix they all share ("Potato___Early_blight",
    "Potato___healthy" → "Early_blight", "healthy"), for narrow places such as
    table columns; the names as they are when no such prefix ends at a separator
    or what is left would be too short to read (under 3 characters or not starting
    with a letter: "class_1" stays "class_1")."""
    if len(names) < 2:
        return list(names)
    common = 0
    for letters in zip(*names, strict=False):
        if len(set(letters)) > 1:
            break
        common += 1
    cut = max((i + 1 for i in range(common) if names[0][i] in _SEPARATORS), default=0)
    while cut < common and names[0][cut] in _SEPARATORS:  # "Potato___": all three
        cut += 1
    rest = [name[cut:] for name in names]
    if cut == 0 or any(len(r) < 3 or not r[0].isalpha() for r in rest):
        return list(names)
    return rest
