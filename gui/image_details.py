"""The image details beside the viewer, as rich text: file, size, label, prediction,
label history."""

from __future__ import annotations

import html
from collections.abc import Sequence

from linnaeus.engine.project.label_edits import HistoryEntry
from linnaeus.engine.project.store import ImageRecord


def details_html(
    record: ImageRecord | None,
    history: Sequence[HistoryEntry],
    probabilities: dict[str, float],
    version_name: str | None,
    decided: str | None = None,
) -> str:
    """The image details as rich text: file, size, label, prediction (the class the
    model ``decided``, then its probabilities), label history."""
    if record is None:
        return ""
    e = html.escape
    size = f"{record.width} × {record.height}" if record.width else "unknown"
    depth = f"{record.bit_depth}-bit" if record.bit_depth else ""
    channels = {1: "gray", 2: "gray + alpha", 3: "colour", 4: "colour + alpha"}.get(
        record.channels or 0, ""
    )
    kind = ", ".join(p for p in (depth, channels, (record.format or "").upper()) if p)
    if record.format == "dicom":
        kind += " (windowed by the file's centre/width)"
    rows = [
        ("File", e(record.path)),
        (
            "Size",
            f"{size} pixels, {kind}"
            + (f", {record.byte_size / 1024:,.0f} KB" if record.byte_size else ""),
        ),
        ("Label", e(record.label or "unlabelled")),
        (
            "Split",
            {"train": "training", "val": "validation", "test": "test"}.get(
                record.split or "", "none"
            ),
        ),
    ]
    if record.group_id:
        rows.append(("Group", e(record.group_id)))
    if record.status != "ok":
        rows.append(("Problem", e(f"{record.status}: {record.error or ''}")))
    if probabilities:
        ranked = sorted(probabilities.items(), key=lambda item: -item[1])[:3]
        text = ", ".join(f"{e(name)} {p:.0%}" for name, p in ranked)
        if decided is not None:
            text = f"decides <b>{e(decided)}</b>: {text}"
        rows.append((f"Model {e(version_name or '')}", text))
    table = "".join(
        f"<tr><td style='color:gray;padding-right:8px'>{k}</td><td>{v}</td></tr>" for k, v in rows
    )
    lines = [f"<table>{table}</table>"]
    if history:
        lines.append("<p style='margin-top:6px'><b>Label history</b> (newest first)</p><table>")
        for entry in history[:50]:
            when = entry.changed_at.replace("T", " ")[:16]
            change = f"{e(entry.old_label or '—')} → {e(entry.new_label or '—')}"
            action = "" if entry.action == "set" else f" ({entry.action})"
            lines.append(
                f"<tr><td style='color:gray;padding-right:8px'>{when}</td><td>{change}</td>"
                f"<td style='color:gray;padding-left:8px'>{e(entry.source)}{action}</td></tr>"
            )
        lines.append("</table>")
    return "".join(lines)
