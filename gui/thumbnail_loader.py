"""Thumbnails for the grid, made off the GUI thread and kept in memory.

`ThumbnailLoader.image` answers at once: the thumbnail if it is in memory,
otherwise ``None`` after asking for it. Requests go to a small pool of
threads that make (or read) the thumbnail in the project's disk cache
(`linnaeus.engine.images.thumbnails.ThumbnailCache`), decode it into a QImage scaled
for the tile, and report it through `thumbnail_ready`. The newest request is
served first and old requests are dropped when too many wait, so a fast
scroll through 100,000 images only loads what is on screen when it stops.
Decoded images are kept in a least-recently-used cache bounded in bytes.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtCore import Qt
from PySide6.QtCore import QThreadPool
from PySide6.QtCore import Signal
from PySide6.QtGui import QImage

from linnaeus.engine.errors import LinnaeusError
from linnaeus.engine.images.thumbnails import ThumbnailCache

log = logging.getLogger(__name__)

DISK_THUMBNAIL_SIZE = 256  # pixels; the engine's default, shared with the CLI
MEMORY_BUDGET_BYTES = 160 * 1024 * 1024
MAX_PENDING = 400  # older requests than this are dropped (they scrolled away)


class ThumbnailLoader(QObject):
    """Loads thumbnails keyed by image content hash; see the module docstring."""

    thumbnail_ready = Signal(str)  # content hash
    thumbnail_failed = Signal(str, str)  # content hash, reason
    idle = Signal()  # nothing waiting or loading any more

    # Emitted from pool threads; delivered on the GUI thread (queued).
    _loaded = Signal(str, QImage)
    _failed = Signal(str, str)

    def __init__(
        self,
        cache_folder: Path,
        *,
        pixel_size: int = DISK_THUMBNAIL_SIZE,
        memory_budget: int = MEMORY_BUDGET_BYTES,
        threads: int | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._disk = ThumbnailCache(cache_folder, size=DISK_THUMBNAIL_SIZE)
        self._pixel_size = pixel_size
        self._budget = memory_budget
        self._images: OrderedDict[str, QImage] = OrderedDict()
        self._bytes = 0
        self._errors: dict[str, str] = {}
        self._lock = threading.Lock()
        self._pending: OrderedDict[str, Path] = OrderedDict()  # guarded by _lock
        self._active = 0  # running pool jobs, guarded by _lock
        self._closed = False
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(
            threads or max(2, min(4, QThreadPool.globalInstance().maxThreadCount()))
        )
        self._loaded.connect(self._on_loaded, Qt.ConnectionType.QueuedConnection)
        self._failed.connect(self._on_failed, Qt.ConnectionType.QueuedConnection)

    # -- GUI thread ---------------------------------------------------------

    def image(self, key: str, image_path: Path) -> QImage | None:
        """The thumbnail of the image with content hash ``key``, or None while it loads."""
        cached = self._images.get(key)
        if cached is not None:
            self._images.move_to_end(key)
            return cached
        if key not in self._errors:
            self._request(key, image_path)
        return None

    def error(self, key: str) -> str | None:
        """Why the thumbnail of ``key`` could not be made, if it could not."""
        return self._errors.get(key)

    def set_pixel_size(self, pixel_size: int) -> None:
        """Thumbnails are scaled to fit ``pixel_size``; changing it empties the memory cache."""
        pixel_size = max(16, min(DISK_THUMBNAIL_SIZE, pixel_size))
        if pixel_size != self._pixel_size:
            self._pixel_size = pixel_size
            self._images.clear()
            self._bytes = 0

    @property
    def memory_bytes(self) -> int:
        return self._bytes

    def is_idle(self) -> bool:
        with self._lock:
            return not self._pending and self._active == 0

    def forget_pending(self) -> None:
        """Drop every request not started yet (the view changed completely)."""
        with self._lock:
            self._pending.clear()

    def shutdown(self) -> None:
        """Stop loading and wait for the running jobs; call before the project closes."""
        with self._lock:
            self._closed = True
            self._pending.clear()
        self._pool.waitForDone()

    def _request(self, key: str, image_path: Path) -> None:
        start = False
        with self._lock:
            if self._closed:
                return
            self._pending[key] = image_path
            self._pending.move_to_end(key)
            while len(self._pending) > MAX_PENDING:
                self._pending.popitem(last=False)
            if self._active < self._pool.maxThreadCount():
                self._active += 1
                start = True
        if start:
            self._pool.start(self._work)

    def _on_loaded(self, key: str, image: QImage) -> None:
        if key not in self._images:
            self._images[key] = image
            self._bytes += image.sizeInBytes()
            while self._bytes > self._budget and len(self._images) > 1:
                _, dropped = self._images.popitem(last=False)
                self._bytes -= dropped.sizeInBytes()
        self.thumbnail_ready.emit(key)
        self._emit_idle_if_done()

    def _on_failed(self, key: str, reason: str) -> None:
        self._errors[key] = reason
        self.thumbnail_failed.emit(key, reason)
        self._emit_idle_if_done()

    def _emit_idle_if_done(self) -> None:
        if self.is_idle():
            self.idle.emit()

    # -- pool threads -------------------------------------------------------

    def _work(self) -> None:
        """Serve the newest request until none is left."""
        while True:
            with self._lock:
                if not self._pending or self._closed:
                    self._active -= 1
                    return
                key, image_path = self._pending.popitem(last=True)
                size = self._pixel_size
            try:
                image = self._load(key, image_path, size)
            except LinnaeusError as error:
                self._failed.emit(key, str(error))
            except Exception as error:  # a bug or an odd file: show it on the tile, log it
                log.warning("thumbnail of %s failed", image_path, exc_info=True)
                self._failed.emit(key, f"cannot make a thumbnail: {error}")
            else:
                self._loaded.emit(key, image)

    def _load(self, key: str, image_path: Path, size: int) -> QImage:
        thumbnail = self._disk.get(image_path, key)
        image = QImage(str(thumbnail))
        if image.isNull():  # a damaged cache file (a crash while writing it): make it again
            thumbnail.unlink(missing_ok=True)
            image = QImage(str(self._disk.get(image_path, key)))
        if image.isNull():
            raise LinnaeusError(f"the cached thumbnail {thumbnail} cannot be read")
        if max(image.width(), image.height()) > size:
            image = image.scaled(
                size,
                size,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        return image
