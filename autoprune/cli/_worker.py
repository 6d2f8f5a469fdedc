"""``autoprune worker RUN``: join a running Optuna search (see :func:`agents.join_search`)."""

from __future__ import annotations

from pathlib import Path

import typer

from autoprune.cli._common import resolve_data_dir
from autoprune.cli._console import err_console
from autoprune.cli._options import DATA_DIR, RUNS_DIR, STORAGE, WEIGHTS
from autoprune.core.errors import AutopruneError
from autoprune.system.database_url import parse_database_url

RUN = typer.Argument(..., help="Run name of the search to join (its Optuna study).")


def worker_command(
    run: str = RUN,
    storage: str | None = STORAGE.option,
    runs_dir: str | None = RUNS_DIR.unset,
    weights: str | None = WEIGHTS.from_run,
    data_dir: Path | None = DATA_DIR.option,
) -> None:
    """Join the running Optuna search RUN: evaluate its trials until its budget is spent."""
    from agents import join_search

    if storage is not None:
        _refuse_missing_sqlite(storage)
    done = join_search(run, storage, runs_dir, weights, resolve_data_dir(data_dir))
    err_console.print(f"worker: {done} trial(s) of {run} evaluated here", highlight=False)


def _refuse_missing_sqlite(storage: str) -> None:
    """A worker joins a search's existing database: a SQLite file that is not there is a
    mistyped URL, refused before SQLite would create an empty database at that path."""
    if not storage.lower().startswith("sqlite"):
        return
    database = parse_database_url(storage, "--storage").database
    if database and database != ":memory:" and not Path(database).is_file():
        raise AutopruneError(
            f"--storage {storage}: no SQLite database at {database}; pass the --storage the "
            "search was started with (its runs folder holds optuna.db)"
        )


def register(app: typer.Typer) -> None:
    """Add ``worker`` to ``app``."""
    app.command("worker")(worker_command)
