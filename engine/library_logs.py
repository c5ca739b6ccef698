"""Keeping the chatty libraries Linnaeus drives (TensorFlow, tf2onnx, onnxruntime's
quantiser) out of the user's terminal while they work."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator


@contextlib.contextmanager
def quiet(logger_name: str, level: int = logging.WARNING) -> Iterator[None]:
    """Raise a chatty library logger's level for the duration of a call."""
    logger = logging.getLogger(logger_name)
    previous = logger.level
    logger.setLevel(max(previous, level))
    try:
        yield
    finally:
        logger.setLevel(previous)
