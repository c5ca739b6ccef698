"""Linnaeus engine: the Qt-free core (project store, import, image I/O, CLI).

Nothing in this package imports Qt; TensorFlow is imported lazily, only by the
modules that train or export.

Linnaeus promises no cloud: ONNX Runtime (1.29 and later) sends usage telemetry
from Linux and macOS unless ``ORT_DISABLE_TELEMETRY`` is set before it loads,
so every process that imports the engine (the CLI, the window, the training
child) sets it here first. A user may still set it to 0.
"""

from __future__ import annotations

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
