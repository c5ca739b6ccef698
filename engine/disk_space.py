"""Free disk space: checked before large writes, recognised when a write runs out of it.

A full disk shows up in many guises: an `OSError` with ENOSPC or EDQUOT,
SQLite's "database or disk is full" (or its "disk I/O error" when it cannot
grow its shared-memory file), h5py and Keras errors whose text wraps
"No space left on device". `is_disk_full` is the one place that knows them;
`disk_full_as_error` turns any of them into one `DiskFullError` that names the
disk, the free space and what the work needs, so every command and the window
say the same line. `check_free_space` refuses before a large write starts;
`reserve_space` holds back room to record how a long write ended.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from linnaeus.engine.errors import DiskFullError

# What a small write (a label edit, a status change) needs at most: a few
# database pages and their copy in the write-ahead log.
SMALL_WRITE = 1_000_000
# What `reserve_space` holds back by default: room for a few small writes.
RESERVE_BYTES = 1_000_000
# SQLite says "disk I/O error" when it cannot grow its shared-memory file: a
# full disk when this little is left, some other fault otherwise.
_NEARLY_FULL = 1_000_000
_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
_FULL_WORDS = ("no space left on device", "disk quota exceeded", "database or disk is full")
_SQLITE_FULL = 13
_SQLITE_IOERR = 10


def free_bytes(folder: Path | str) -> int:
    """Bytes that may still be written on the disk holding ``folder`` (or, if it
    does not exist yet, its nearest existing parent)."""
    folder = Path(folder).absolute()
    for candidate in (folder, *folder.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return 0


def check_free_space(folder: Path | str, needed_bytes: int) -> None:
    """Refuse, with `DiskFullError`, a write of about ``needed_bytes`` into
    ``folder`` that its disk has no room for."""
    free = free_bytes(folder)
    if free < needed_bytes:
        raise DiskFullError(folder, free, needed_bytes)


def is_disk_full(error: BaseException, folder: Path | str | None = None) -> bool:
    """Whether ``error``, or an error it was raised from, says the disk ran out of
    space; with ``folder``, an I/O error on its nearly full disk counts too."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DiskFullError) or _says_full(current):
            return True
        if folder is not None and _is_io_error(current) and free_bytes(folder) < _NEARLY_FULL:
            return True
        current = current.__cause__ or current.__context__
    return False


def reserve_space(path: Path, size: int = RESERVE_BYTES) -> None:
    """Hold ``size`` bytes of the disk in the file ``path``: deleting it later makes
    room to record how a long write ended, even if the disk has filled up since."""
    with open(path, "wb") as handle:
        handle.write(os.urandom(size))  # not zeros: a compressing file system keeps those


def disk_full_error(folder: Path | str, needed_bytes: int = SMALL_WRITE) -> DiskFullError:
    """The error for the disk holding ``folder``, with its free space now."""
    return DiskFullError(folder, free_bytes(folder), max(needed_bytes, SMALL_WRITE))


@contextmanager
def disk_full_as_error(folder: Path | str, needed_bytes: int = SMALL_WRITE) -> Iterator[None]:
    """Inside, a write that fails because the disk holding ``folder`` is full
    raises `DiskFullError`; ``needed_bytes`` is about what the whole work needs."""
    try:
        yield
    except DiskFullError as error:
        if error.needed_bytes >= needed_bytes:
            raise
        raise DiskFullError(error.folder, error.free_bytes, needed_bytes) from error
    except Exception as error:
        if not is_disk_full(error, folder):
            raise
        raise disk_full_error(folder, needed_bytes) from error


def _says_full(error: BaseException) -> bool:
    if isinstance(error, OSError) and error.errno in _FULL_ERRNOS:
        return True
    if isinstance(error, sqlite3.Error) and _sqlite_code(error) == _SQLITE_FULL:
        return True
    text = str(error).lower()
    return any(words in text for words in _FULL_WORDS)


def _is_io_error(error: BaseException) -> bool:
    if isinstance(error, sqlite3.Error):
        return _sqlite_code(error) == _SQLITE_IOERR or "disk i/o error" in str(error).lower()
    return isinstance(error, OSError) and error.errno == errno.EIO


def _sqlite_code(error: sqlite3.Error) -> int:
    """SQLite's primary result code (Python 3.11 on; 0 before)."""
    return (getattr(error, "sqlite_errorcode", 0) or 0) & 0xFF
