"""One training process per run folder.

Two processes training into the same folder (the same command started twice, a
notebook and a sweep, a second call on a machine still running the first) would
interleave checkpoints and log rows and lose work. The first process holds an
exclusive ``flock`` on ``<run>/.lock``; the operating system drops it when that
process ends, however it ends, so a killed run never leaves a stale lock.
On platforms without ``fcntl`` (Windows) runs are not locked.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from echolib.errors import OutputError

LOCK_NAME = ".lock"


def acquire(folder: str | Path) -> IO[str] | None:
    """Lock ``folder`` for this process; the returned file holds the lock until it is closed.

    Raises :class:`OutputError` naming the folder (and the holder's process id)
    when another process holds it.
    """
    try:
        # lazy: fcntl exists only on POSIX
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    path = Path(folder) / LOCK_NAME
    handle = open(path, "a+")  # noqa: SIM115 - kept open: it is the lock
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise OutputError(
            f"run folder {folder} is being trained by another process (pid {holder}); wait for it to finish, "
            "stop it (it resumes from its last checkpoint), or give another --out"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def release(handle: IO[str] | None) -> None:
    """Give the lock up (closing the file drops it); the file stays, empty of meaning."""
    if handle is not None and not handle.closed:
        handle.close()
