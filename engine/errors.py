"""Exceptions that carry a message a user can act on.

Every error the engine raises on purpose derives from `LinnaeusError`; the CLI
prints its message on one line and exits non-zero, the GUI shows it in a
dialog. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class LinnaeusError(Exception):
    """A failure the user can understand and fix (bad input, wrong folder...)."""


class ProjectError(LinnaeusError):
    """The project folder or its database cannot be used as asked."""


class ProjectBusyError(ProjectError):
    """Another process is writing to the project (it holds the project's lock)."""


class ImageReadError(LinnaeusError):
    """One image file cannot be read; the message says why."""


class ImportSourceError(LinnaeusError):
    """The folder or CSV given to import cannot be used."""


class LabelError(LinnaeusError):
    """A label change names an unknown image or class, or cannot be undone."""


class TrainingError(LinnaeusError):
    """Training cannot start or finish (too few labels, missing weights...)."""


class OutOfTime(TrainingError):
    """Training stopped because even one more epoch cannot end within its time budget."""


class EvaluationError(LinnaeusError):
    """Predictions, labels, class names or a decision threshold that do not fit together."""


class ExportError(LinnaeusError):
    """A model version cannot be exported as asked; the message says why."""


class Cancelled(LinnaeusError):
    """The user cancelled a long operation."""

    def __init__(self, message: str = "Cancelled.") -> None:
        super().__init__(message)


class DiskFullError(LinnaeusError):
    """The disk holding ``folder`` has too little free space for a write."""

    def __init__(self, folder: object, free_bytes: int, needed_bytes: int) -> None:
        self.folder = folder
        self.free_bytes = free_bytes
        self.needed_bytes = needed_bytes
        super().__init__(
            f"The disk holding {folder} is full: {_megabytes(free_bytes)} free, about "
            f"{_megabytes(needed_bytes)} needed. Free some space and try again."
        )


def _megabytes(size: int) -> str:
    """A byte count in MB as people read it: "0.4 MB", "12 MB", "1,204 MB"."""
    value = max(size, 0) / 1_000_000
    return f"{value:.1f} MB" if value < 10 else f"{value:,.0f} MB"
