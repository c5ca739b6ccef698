"""Linnaeus engine: the Qt-free core (project store, import, image I/O, CLI).

Nothing in this package imports Qt; TensorFlow is imported lazily, only by the
modules that train or export.
"""

from __future__ import annotations

__version__ = "0.1.0"
