"""Progress as plain lines, for a log file, CI or a pipe, where a live bar shows nothing
until the end: one line each time another 10% is done, or after 30 s without a line.

It takes the part of Rich's ``Progress`` API the commands use (``add_task``, ``update``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

EVERY_FRACTION = 0.1
"""A line each time this much more of the total is done."""
EVERY_SECONDS = 30.0
"""A line at least this often while something moves (and always for an unknown total)."""


@dataclass
class _Task:
    description: str
    total: float | None
    info: str
    visible: bool
    completed: float = 0.0
    next_fraction: float = EVERY_FRACTION
    finished: bool = False


class ProgressLines:
    """Writes a task's progress as lines through ``write``, each led by ``title`` (else the
    task's description).

    Example:
        >>> lines = []
        >>> progress = ProgressLines(lines.append, clock=lambda: 0.0)
        >>> task = progress.add_task("search", total=20, info="")
        >>> for episode in range(1, 21):
        ...     progress.update(task, completed=episode, info="best acc 97.00%")
        >>> len(lines), lines[0]
        (10, 'search: 2/20 (10%), 0:00:00 elapsed, best acc 97.00%')
    """

    def __init__(
        self,
        write: Callable[[str], Any],
        clock: Callable[[], float] = time.monotonic,
        title: str | None = None,
    ) -> None:
        self.write = write
        self.title = title
        self.clock = clock
        self.tasks: list[_Task] = []
        self.started = clock()
        self.last_line = self.started

    def add_task(
        self, description: str, total: float | None = None, info: str = "", visible: bool = True
    ) -> int:
        """A new task; its index."""
        self.tasks.append(_Task(description, total, info, visible))
        return len(self.tasks) - 1

    def update(self, task_id: int, **changes: Any) -> None:
        """Set ``completed``, ``total``, ``info`` or ``visible``; write a line when one is due."""
        task = self.tasks[task_id]
        for key in ("completed", "total", "info", "visible"):
            if key in changes:
                setattr(task, key, changes[key])
        if task.visible and not task.finished and self._due(task):
            self.last_line = self.clock()
            self.write(self.line(task))

    def _due(self, task: _Task) -> bool:
        """Whether ``task`` passed its next 10% step (or its end), or 30 s passed."""
        quiet_for = self.clock() - self.last_line
        if not task.total:
            return quiet_for >= EVERY_SECONDS
        fraction = task.completed / task.total
        if fraction >= 1.0:
            task.finished = True
            return True
        if fraction + 1e-9 >= task.next_fraction:
            steps = int(fraction / EVERY_FRACTION + 1e-9)
            task.next_fraction = (steps + 1) * EVERY_FRACTION
            return True
        return quiet_for >= EVERY_SECONDS and task.completed > 0

    def line(self, task: _Task) -> str:
        """``search: 12/60 (20%), 0:01:05 elapsed, best acc 97.20%``."""
        elapsed = int(self.clock() - self.started)
        clock = f"{elapsed // 3600}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}"
        done = f"{task.completed:g}"
        if task.total:
            done += f"/{task.total:g} ({task.completed / task.total:.0%})"
        info = f", {task.info}" if task.info else ""
        return f"{self.title or task.description}: {done}, {clock} elapsed{info}"
