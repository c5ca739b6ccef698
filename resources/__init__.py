"""Package data: icons, style sheet, presets, the ImageNet weights (weights/)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def resource_path(name: str) -> Path:
    """Path of a bundled resource file by name."""
    return Path(str(files(__name__).joinpath(name)))
