"""Render the application icon (resources/linnaeus.svg) for every installer.

    python packaging/make_icons.py OUT_DIR

writes OUT_DIR/hicolor/<N>x<N>/apps/linnaeus.png (the freedesktop icon theme
sizes the .deb installs), OUT_DIR/linnaeus.ico (Windows: the .exe and Inno
Setup) and OUT_DIR/linnaeus.icns (macOS). The SVG is the one source; the
bitmaps are made at build time so the repository holds no binary copies that
could drift from it. Qt draws the SVG (offscreen, no display needed), Pillow
writes the .ico and .icns containers.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SVG = Path(__file__).resolve().parent.parent / "resources" / "linnaeus.svg"
HICOLOR_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)


def render_pngs(out_dir: Path) -> dict[int, Path]:
    """Draw the SVG at each hicolor size; returns {size: png path}."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtGui import QImage
    from PySide6.QtGui import QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])  # noqa: F841
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"Qt cannot read the icon {SVG}")
    written = {}
    for size in HICOLOR_SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        path = out_dir / "hicolor" / f"{size}x{size}" / "apps" / "linnaeus.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(path), "PNG"):
            raise SystemExit(f"cannot write {path}")
        written[size] = path
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir = Path(argv[0])
    pngs = render_pngs(out_dir)
    from PIL import Image

    largest = Image.open(pngs[max(pngs)])
    largest.save(out_dir / "linnaeus.ico", sizes=[(s, s) for s in ICO_SIZES])
    largest.save(out_dir / "linnaeus.icns")
    print(f"icons written to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
