"""Linnaeus engine: the Qt-free core, one sub-package per domain.

`project` (the store, versions, stored predictions), `images` (reading,
preparing, thumbnails, caches, augmentation), `dataset` (import, layouts, label
tables, splits), `training` (TensorFlow, behind the TensorFlow-free `config`),
`evaluation`, `onnx` (format, export, inference, classify a folder), `cli` (the
command line and its JSON protocol) and `demo`; docs/architecture.md maps them.
Nothing here imports Qt; TensorFlow is imported lazily, only by the training
package and ONNX conversion/export (pyproject's import-linter contracts).

Linnaeus promises no cloud: ONNX Runtime (1.29 and later) sends usage telemetry
from Linux and macOS unless ``ORT_DISABLE_TELEMETRY`` is set before it loads,
so every process that imports the engine (the CLI, the window, the training
child) sets it here first. A user may still set it to 0.
"""

from __future__ import annotations

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
