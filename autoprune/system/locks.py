"""Advisory file locks (``fcntl.flock``) that the OS releases when the holding process dies.

Two uses: one writer per search run (the run store refuses a second process and names the
first one's PID), and serialising the first use of a local SQLite store (MLflow's and
Optuna's schema migrations fail when two processes create one database at once).

A lock is held per process: taking a lock this process already holds succeeds and is
counted, and the file is unlocked when every holder has released it (or the process ends,
even by ``kill -9``). The holder writes its PID into the lock file, so a refused process
can say who holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

_HELD: dict[Path, list[int]] = {}
"""Locks this process holds: resolved path -> [file descriptor, holders]."""
_GUARD = threading.Lock()


class FileLock:
    """An exclusive lock on one file (created when missing, never deleted).

    Example:
        >>> lock = FileLock(Path("/tmp/autoprune-doc.lock"))
        >>> lock.acquire(wait=False), lock.held
        (True, True)
        >>> lock.release(); lock.held
        False
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.held = False
        self._key = path

    def acquire(self, *, wait: bool = True) -> bool:
        """Take the lock; with ``wait=False`` return False at once when another process has it."""
        if self.held:
            return True
        key = self._key = self.path.resolve()
        with _GUARD:
            if key in _HELD:
                _HELD[key][1] += 1
                self.held = True
                return True
        fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        with _GUARD:
            _HELD[key] = [fd, 1]
        self.held = True
        return True

    def release(self) -> None:
        """Give the lock back (the file is unlocked when this process's last holder lets go)."""
        if not self.held:
            return
        self.held = False
        key = self._key
        with _GUARD:
            entry = _HELD[key]
            entry[1] -= 1
            if entry[1] > 0:
                return
            del _HELD[key]
        os.close(entry[0])  # closing the descriptor drops the flock

    def holder(self) -> int | None:
        """The PID written by the process that holds (or last held) the lock, if readable."""
        try:
            return int(self.path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def __enter__(self) -> FileLock:
        self.acquire(wait=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold the lock file ``path`` (waiting for other processes) inside the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path):
        yield
