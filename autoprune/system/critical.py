"""Sections a stop signal must not cut in half, such as a write to the tracking database.

A SIGINT raised in the middle of an SQLite transaction leaves the connection holding its
lock, so the process's own next write (marking the run KILLED) finds the database locked.
Inside :func:`critical_section`, :func:`defer` holds the stop instead; it is raised when the
outermost section ends.

Example:
    >>> with critical_section():
    ...     held = defer(RuntimeError("stop"))
    ...     print("the section finished first:", held)
    Traceback (most recent call last):
    RuntimeError: stop
    >>> defer(RuntimeError("stop"))  # outside any section: not held
    False
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

_depth = 0
_pending: list[BaseException] = []


@contextmanager
def critical_section() -> Iterator[None]:
    """Run the body whole; a stop deferred meanwhile is raised at its end."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
    if _depth == 0 and _pending:
        raise _pending.pop()


def defer(stop: BaseException) -> bool:
    """Hold ``stop`` until the current critical section ends; False outside any section."""
    if _depth == 0:
        return False
    _pending.append(stop)
    return True
