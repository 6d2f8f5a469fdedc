"""Shared Rich consoles and progress helpers for the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, cast

from rich.console import Console
from rich.measure import Measurement
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

console = Console()
err_console = Console(stderr=True)
QUIET = False
"""Set by ``--quiet``: no progress bars or decorative output."""


@contextmanager
def progress_bar(description: str) -> Iterator[Progress]:
    """A Rich progress bar with ETA and a live ``info`` field; silent under ``--quiet``.

    Where stderr is no terminal (a log file, CI, ``2>&1 | tee``) a live bar would show
    nothing until the end: progress is then written as plain lines (:class:`ProgressLines`).
    """
    if not QUIET and not err_console.is_terminal:
        from autoprune.cli._progress_lines import ProgressLines

        def write(line: str) -> None:
            err_console.print(line, highlight=False, soft_wrap=True, markup=False)

        yield cast(Progress, ProgressLines(write, title=description))
        return
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


def print_table(table: Table) -> None:
    """Print ``table`` without cutting any cell.

    A terminal narrower than the table folds long cells onto more lines; a pipe or file
    gets the table at its natural width, one line per row.
    """
    for column in table.columns:
        column.overflow = "fold"
    if console.is_terminal:
        console.print(table)
        return
    natural = Measurement.get(console, console.options.update_width(10_000), table).maximum
    if natural <= console.width:
        console.print(table)
        return
    # Console.color_system names the system the console was built with, one of these.
    system = cast(
        Literal["auto", "standard", "256", "truecolor", "windows"] | None, console.color_system
    )
    Console(file=console.file, width=natural, color_system=system).print(table)
