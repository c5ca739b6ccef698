"""File > Rescan folder: look again at the project's image folder.

New files are added, changed ones read again, moved or renamed ones recognised
by their content (they keep their labels and splits), vanished ones marked
missing: `engine.dataset.importer.import_images`, as ``linnaeus import
--project`` does, on a worker thread with progress and Cancel. The image
folder is only read.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QLabel
from PySide6.QtWidgets import QWidget

from linnaeus.engine.dataset.importer import ImportOptions
from linnaeus.engine.dataset.importer import ImportReport
from linnaeus.engine.dataset.importer import import_images
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.project.store import ProjectStore
from linnaeus.gui.widgets.job_dialog import JobDialog
from linnaeus.gui.workers import Worker


def rescan_folder(
    project_dir: Path, *, on_progress: ProgressCallback, cancel: CancelToken
) -> ImportReport:
    """Re-import the image folder of the project in ``project_dir`` (run by a `Worker`)."""
    with ProjectStore.open(project_dir) as store:
        return import_images(store, ImportOptions(), on_progress=on_progress, cancel=cancel)


def rescan_summary(report: ImportReport) -> str:
    """What a rescan found, in one paragraph."""
    if not (report.added or report.renamed or report.updated or report.missing):
        return f"Nothing changed: the project has all {report.found:,} images of the folder."
    text = (
        f"{report.found:,} images in the folder: {report.added:,} new, {report.renamed:,} moved "
        f"or renamed, {report.updated:,} changed, {report.unchanged:,} unchanged; "
        f"{report.missing:,} no longer there."
    )
    if report.unreadable:
        text += f" {len(report.unreadable):,} cannot be read (Find images > Unreadable files)."
    return text


class RescanDialog(JobDialog):
    """Rescans as it opens; says what changed, or why it could not."""

    def __init__(self, project_dir: Path, image_root: Path, parent: QWidget | None = None) -> None:
        super().__init__("Rescan the image folder", "Rescan again", parent)
        self.project_dir = project_dir
        intro = QLabel(
            f"Looks for new, changed, moved and removed images in <b>{image_root}</b>. "
            "Labels and splits stay; new images get a split. Your files are only read."
        )
        intro.setWordWrap(True)
        self.form.addWidget(intro)
        self.resize(560, 220)

    def start(self) -> None:
        self.run(Worker(rescan_folder, self.project_dir), "Looking for images…")

    def finished_text(self, result: ImportReport) -> tuple[str, str]:
        return "success", rescan_summary(result)
