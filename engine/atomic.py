"""Writing files so that a crash or a full disk never leaves half a file.

A file is written to a hidden temporary file beside its destination, then
renamed over it. The temporary file's name says which process on which
computer writes it, so one left behind by a killed process is recognised and
removed (`remove_stale_temporaries`) without touching anything else.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from linnaeus.engine.host import host_tag
from linnaeus.engine.host import is_running

log = logging.getLogger(__name__)

# ".<destination name>.<computer>-<process>-<random>.tmp", followed by the
# destination's suffixes for `atomic_path` (".keras"); before the computer and
# process were named: ".<destination name>.<random>.tmp".
_TEMPORARY_NAME = re.compile(
    r"\.(?P<name>.+)\.(?:(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]{1,10})-)?[0-9a-f]{12}\.tmp"
    r"(?:\.[A-Za-z0-9]+)*"
)
STALE_AFTER_S = 24 * 3600  # a temporary file untouched this long is stale, whoever wrote it


@contextmanager
def atomic_open(destination: Path, mode: str = "wb", **kwargs: object) -> Iterator[IO]:
    """Open a temporary file beside ``destination``; on success it replaces it.

    On any error the temporary file is removed and ``destination`` is untouched.
    """
    # Not mkstemp: its files are private (0600); this one gets the permissions
    # any new file of the user gets (0666 less the umask).
    temporary = str(temporary_path(destination))
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

    The temporary name is `temporary_path`'s with ``destination``'s suffixes
    again at its end, so writers that check the suffix (``.keras``) accept it.
    """
    temporary = temporary_path(destination)
    temporary = temporary.with_name(temporary.name + "".join(destination.suffixes))
    try:
        yield temporary
        with open(temporary, "ab") as written:  # Windows fsyncs only writable files
            os.fsync(written.fileno())
        os.replace(temporary, destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def temporary_path(destination: Path) -> Path:
    """A new name for the temporary file `atomic_open` writes ``destination`` through."""
    writer = f"{host_tag()}-{os.getpid()}-{secrets.token_hex(6)}"
    return destination.parent / f".{destination.name}.{writer}.tmp"


def remove_stale_temporaries(folder: Path, name: str | None = None) -> list[Path]:
    """Delete the temporary files of atomic writes that will never finish from
    ``folder`` (only those for the file called ``name``, if given); return them.

    Stale means written by a process of this computer that has ended, or
    untouched for `STALE_AFTER_S`. Only files named as `atomic_open` names its
    temporary files are ever deleted; a file that cannot be deleted is left.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        found = _TEMPORARY_NAME.fullmatch(entry.name)
        if found is None or (name is not None and found["name"] != name):
            continue
        try:
            if not entry.is_file(follow_symlinks=False) or not _is_stale(found, entry):
                continue
            os.unlink(entry.path)
        except OSError as error:
            log.info("cannot remove the stale temporary file %s: %s", entry.path, error)
            continue
        removed.append(Path(entry.path))
    if removed:
        log.info("removed %d stale temporary files from %s", len(removed), folder)
    return removed


def _is_stale(found: re.Match[str], entry: os.DirEntry[str]) -> bool:
    if found["host"] == host_tag() and not is_running(int(found["pid"])):
        return True
    return time.time() - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_S
