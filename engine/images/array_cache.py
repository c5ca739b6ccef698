"""An on-disk cache of fixed-shape arrays keyed by image content hash.

Used for decoded, resized training images (so epochs and later trainings do
no decoding) and for backbone embeddings (so one-click retraining only trains
a small head). Rows are appended to one raw file and read back through a
memory map; the index (hash -> row) is replaced atomically after the rows are
on disk, so a killed process leaves at worst some unindexed rows, which the
next writer overwrites.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from linnaeus.engine.atomic import atomic_write_bytes
from linnaeus.engine.progress import CancelToken
from linnaeus.engine.progress import Progress
from linnaeus.engine.progress import ProgressCallback
from linnaeus.engine.progress import check_cancelled
from linnaeus.engine.progress import ignore_progress

_CHUNK = 256


def features_folder(project_dir: Path) -> Path:
    """Where a project caches backbone features: one `ArrayCache` per backbone and
    input format (`engine.training.features` writes them; the duplicate search reads)."""
    return project_dir / "cache" / "embeddings"


@dataclass(frozen=True)
class CacheFill:
    """Where the rows asked for are in `ArrayCache.view`, and which failed."""

    row_numbers: np.ndarray  # per requested key: its row in view(), or -1 if it failed
    failures: dict[int, str]  # position in the request -> reason
    computed: int  # how many rows had to be made (not already cached)


class ArrayCache:
    """Rows of ``shape`` and ``dtype`` in ``folder``, keyed by strings."""

    def __init__(self, folder: Path, shape: Sequence[int], dtype: str = "uint8") -> None:
        self.folder = folder
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self._data = folder / "rows.bin"
        self._index_file = folder / "index.json"
        self._lock = threading.Lock()
        self._index = self._read_index()

    @classmethod
    def existing(cls, folder: Path) -> ArrayCache | None:
        """The cache a writer left in ``folder``, with the shape and type it wrote;
        None if there is none (or its index cannot be read)."""
        try:
            saved = json.loads((folder / "index.json").read_text())
            return cls(folder, saved["shape"], saved["dtype"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def _read_index(self) -> dict[str, int]:
        try:
            saved = json.loads(self._index_file.read_text())
        except (OSError, ValueError):
            return {}
        if saved.get("shape") != list(self.shape) or saved.get("dtype") != self.dtype.str:
            return {}
        return {str(k): int(v) for k, v in saved.get("rows", {}).items()}

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def __len__(self) -> int:
        return len(self._index)

    def view(self) -> np.ndarray:
        """All indexed rows as a read-only memory map (pages load on use)."""
        if not self._index:
            return np.zeros((0, *self.shape), self.dtype)
        rows = np.memmap(self._data, dtype=self.dtype, mode="r")
        return rows[: len(self._index) * int(np.prod(self.shape))].reshape(-1, *self.shape)

    def get(self, keys: Sequence[str]) -> np.ndarray:
        """The cached rows for ``keys`` (all must be cached), as one array."""
        return np.asarray(self.view()[[self._index[k] for k in keys]])

    def put(self, items: dict[str, np.ndarray]) -> None:
        """Add rows; they are durable when this returns."""
        if not items:
            return
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            start = len(self._index)
            with open(self._data, "ab") as handle:
                handle.truncate(start * self.row_bytes)  # drop rows a crash left unindexed
                try:
                    for row in items.values():
                        handle.write(np.ascontiguousarray(row, dtype=self.dtype).tobytes())
                    handle.flush()
                    os.fsync(handle.fileno())
                except OSError:  # a full disk: give back what the unindexed rows took
                    os.ftruncate(handle.fileno(), start * self.row_bytes)
                    raise
            for offset, key in enumerate(items):
                self._index[key] = start + offset
            payload = {"shape": list(self.shape), "dtype": self.dtype.str, "rows": self._index}
            atomic_write_bytes(self._index_file, json.dumps(payload).encode())

    def fill(
        self,
        keys: Sequence[str],
        make_row: Callable[[int], np.ndarray],
        *,
        workers: int | None = None,
        stage: str = "cache",
        on_progress: ProgressCallback = ignore_progress,
        cancel: CancelToken | None = None,
    ) -> CacheFill:
        """All rows for ``keys``, making missing ones with ``make_row(position)``
        on worker threads. A ``make_row`` that raises `Exception` marks that
        position as failed (its row is zeros) and the fill carries on."""
        missing = [i for i, key in enumerate(keys) if key not in self._index]
        missing = list({keys[i]: i for i in reversed(missing)}.values())[::-1]  # once per key
        failures: dict[int, str] = {}
        workers = workers or min(8, (os.cpu_count() or 2) * 2)

        def attempt(position: int) -> tuple[int, np.ndarray | None, str | None]:
            try:
                return position, make_row(position), None
            except Exception as error:
                return position, None, str(error) or type(error).__name__

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=stage) as pool:
            for start in range(0, len(missing), _CHUNK):
                check_cancelled(cancel)
                chunk = missing[start : start + _CHUNK]
                made = {}
                for position, row, error in pool.map(attempt, chunk):
                    if error is not None:
                        failures[position] = error
                    else:
                        made[keys[position]] = row
                self.put(made)
                done = start + len(chunk)
                on_progress(
                    Progress(stage, done, len(missing), f"Prepared {done} of {len(missing)}")
                )
        reasons = {keys[p]: reason for p, reason in failures.items()}
        failures = {i: reasons[key] for i, key in enumerate(keys) if key in reasons}
        row_numbers = np.array([self._index.get(key, -1) for key in keys], dtype=np.int64)
        return CacheFill(row_numbers, failures, len(missing))
