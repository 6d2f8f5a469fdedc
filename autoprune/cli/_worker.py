"""``autoprune worker RUN``: join a running Optuna search (see :func:`agents.join_search`)."""

from __future__ import annotations

from pathlib import Path

import typer

from autoprune.cli._common import resolve_data_dir
from autoprune.cli._console import err_console

RUN = typer.Argument(..., help="Run name of the search to join (its Optuna study).")
STORAGE = typer.Option(
    None, "--storage", help="The search's Optuna storage URL (default: sqlite under runs)."
)
RUNS_DIR = typer.Option(None, "--runs-dir", help="Root of runs (default: runs).")
WEIGHTS = typer.Option(None, "--weights", "-w", help="The model's weights on this machine.")
DATA_DIR = typer.Option(None, "--data-dir", help="Where the dataset files are on this machine.")


def worker_command(
    run: str = RUN,
    storage: str | None = STORAGE,
    runs_dir: str | None = RUNS_DIR,
    weights: str | None = WEIGHTS,
    data_dir: Path | None = DATA_DIR,
) -> None:
    """Join the running Optuna search RUN: evaluate its trials until its budget is spent."""
    from agents import join_search

    done = join_search(run, storage, runs_dir, weights, resolve_data_dir(data_dir))
    err_console.print(f"worker: {done} trial(s) of {run} evaluated here", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``worker`` to ``app``."""
    app.command("worker")(worker_command)
