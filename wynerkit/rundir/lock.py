"""One process per run (or sweep) directory: an exclusive lock that the kernel holds for us.

The lock is ``fcntl.flock`` on ``<dir>/.wynerkit.lock``. The kernel drops it when the holding
process exits for any reason, ``kill -9`` included, so a lock can never go stale. The file stays
behind on purpose (deleting it would let two processes lock two different files of one name);
it holds the pid of the last holder, which a refused process names.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from wynerkit.errors import UsageError

LOCK_FILE = ".wynerkit.lock"
_PID_WAIT_S = 0.5
"""How long a refused process waits for the holder to finish writing its pid (it does so at once)."""


class DirectoryLocked(UsageError):
    """Another live process holds the directory's lock."""


@contextmanager
def exclusive_lock(directory: Path) -> Iterator[None]:
    """Hold ``directory``'s lock for the block; raise DirectoryLocked when another process holds it."""
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DirectoryLocked(
                f"{directory}: in use by another wynerkit process (pid {_holder(fd)}); "
                "wait for it to finish, or stop it, then try again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the only descriptor releases the lock


def _holder(fd: int) -> str:
    """The holder's pid as it wrote it, or ``unknown`` when it has not written one yet."""
    deadline = time.monotonic() + _PID_WAIT_S
    while True:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if text.isdigit() or time.monotonic() > deadline:
            return text if text.isdigit() else "unknown"
        time.sleep(0.01)
