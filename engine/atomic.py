"""Writing files so that a crash or a full disk never leaves half a file."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_open(destination: Path, mode: str = "wb", **kwargs: object) -> Iterator[IO]:
    """Open a temporary file beside ``destination``; on success it replaces it.

    On any error the temporary file is removed and ``destination`` is untouched.
    """
    # Not mkstemp: its files are private (0600); this one gets the permissions
    # any new file of the user gets (0666 less the umask).
    temporary = str(destination.parent / f".{destination.name}.{secrets.token_hex(6)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, mode, **kwargs) as handle:  # type: ignore[call-overload]
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_bytes(destination: Path, data: bytes) -> None:
    """Write ``data`` to ``destination`` atomically."""
    with atomic_open(destination, "wb") as handle:
        handle.write(data)


@contextmanager
def atomic_path(destination: Path) -> Iterator[Path]:
    """A temporary path beside ``destination`` for a writer that takes a path (Keras
    saving); when the block ends without error the file written there replaces
    ``destination``. On any error it is removed and ``destination`` is untouched.

    The temporary name ends with ``destination``'s name, so writers that check
    the suffix (``.keras``, ``.weights.h5``) accept it.
    """
    temporary = destination.parent / f".{secrets.token_hex(6)}.tmp.{destination.name}"
    try:
        yield temporary
        with open(temporary, "ab") as written:  # Windows fsyncs only writable files
            os.fsync(written.fileno())
        os.replace(temporary, destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
