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
