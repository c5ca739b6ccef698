"""This computer: its name, and whether a process on it is still running.

A project's lock names the process that holds it, and a temporary file names
the process writing it; these tell a live process from one that was killed,
so that nothing a dead process left behind is trusted or kept forever.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket

import psutil


@functools.cache
def host_name() -> str:
    """This computer's network name."""
    return socket.gethostname()


@functools.cache
def host_tag() -> str:
    """Eight hex digits naming this computer in file names."""
    return hashlib.sha1(host_name().encode("utf-8", "surrogateescape")).hexdigest()[:8]


def is_running(pid: int) -> bool:
    """Whether the process ``pid`` runs on this computer (an ended one that its
    parent has not yet collected does not count)."""
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another user's process: it exists
        return True
