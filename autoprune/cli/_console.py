"""Shared Rich consoles and progress helpers for the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console()
err_console = Console(stderr=True)
QUIET = False
"""Set by ``--quiet``: no progress bars or decorative output."""


@contextmanager
def progress_bar(description: str) -> Iterator[Progress]:
    """A Rich progress bar with ETA and a live ``info`` field; silent under ``--quiet``."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=err_console,
        disable=QUIET,
        transient=False,
    )
    with progress:
        yield progress
