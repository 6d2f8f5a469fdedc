"""``autoprune ui``: the MLflow UI on the local store, made for searches.

It serves one uvicorn worker without MLflow's job runner (huey workers a search dashboard
does not use), refuses a busy port in one line, stops the whole server process group on
Ctrl-C, and prints the experiment's runs in MLflow 3's "Model training" view. When the store
has no runs, it says where under the current folder runs were written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import sqlite3
import subprocess
from pathlib import Path

import typer

from autoprune.cli._console import err_console
from autoprune.cli._options import RUNS_DIR, TRACKING_URI
from autoprune.cli._tracking import tracking_location
from autoprune.core.errors import AutopruneError
from autoprune.system.database_url import hide_passwords
from autoprune.tracking import TrackingStore, dashboard_url, ui_command

EXPERIMENT = "autoprune"
STOP_TIMEOUT_S = 5.0
"""Seconds the server gets to exit after SIGTERM before it is killed."""
SEARCH_DEPTH = 3
"""How deep under the current folder other ``runs/mlflow`` stores are looked for."""
_SKIPPED = {".git", ".venv", "node_modules", "__pycache__", "artifacts"}
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_ENABLE_AI_GATEWAY": "false"}
"""No job runner (huey consumer and its workers) and no AI gateway: a search dashboard
queues no jobs and calls no LLM."""


def ui_cmd(
    port: int = typer.Option(5000, "--port", help="Port on 127.0.0.1."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind."),
    runs_dir: Path = RUNS_DIR.option,
    tracking_uri: str | None = TRACKING_URI.option,
) -> None:
    """Start the MLflow UI on the local store (Ctrl-C stops it)."""
    location = tracking_location(tracking_uri, runs_dir)
    store = TrackingStore.resolve(location)
    argv = ui_command(location, port=port, host=host)
    check_port(host, port)
    base = f"http://{host}:{port}"
    shown = hide_passwords(store.uri)  # a database password is never printed
    err_console.print(f"MLflow UI for {shown} at {base} (Ctrl-C to stop)", soft_wrap=True)
    if store.db_path is not None:
        _point_to_runs(store.db_path, base)
    process = subprocess.Popen(argv, start_new_session=True, env={**os.environ, **SERVER_ENV})
    try:
        code = process.wait()
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM (StopSignals raises Interrupted)
        return
    finally:
        stop_group(process)  # its uvicorn worker too, in the same process group
    if code:
        raise typer.Exit(code if code > 0 else 1)


def check_port(host: str, port: int) -> None:
    """Raise :class:`AutopruneError` when ``host:port`` cannot be bound (a server holds it)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise AutopruneError(
                    f"port {port} on {host} is in use (another autoprune ui?); pass "
                    f"--port {port + 1 if port < 65535 else 5000} or stop that server"
                ) from None
            raise AutopruneError(
                f"cannot listen on {host}:{port} ({exc.strerror}); pass another --host or --port"
            ) from None


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL it after :data:`STOP_TIMEOUT_S`."""
    _signal_group(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TIMEOUT_S)
    _signal_group(process.pid, signal.SIGKILL)  # workers that outlived their parent
    process.wait()


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _point_to_runs(db_path: Path, base: str) -> None:
    """Print the runs page of this store, or where runs were written instead."""
    runs, experiment_id = store_runs(db_path)
    if runs:
        url = dashboard_url(experiment_id, base=base)
        err_console.print(f"runs ({runs}): {url}", soft_wrap=True, highlight=False)
        return
    err_console.print(f"no runs in {db_path.parent} yet", soft_wrap=True, highlight=False)
    for other in find_stores(Path.cwd()):
        count = store_runs(other)[0]
        if count and other != db_path.resolve():
            folder = other.parent
            err_console.print(
                f"  {count} run(s) in {folder}: autoprune ui --runs-dir {folder.parent}",
                soft_wrap=True,
                highlight=False,
            )
    err_console.print(f"experiments: {dashboard_url(base=base)}", soft_wrap=True)


def store_runs(db_path: Path, experiment: str = EXPERIMENT) -> tuple[int, str | None]:
    """Active runs in a local store's ``experiment`` and its id, read without MLflow (0 and
    None for a missing or unreadable store)."""
    if not db_path.is_file():
        return 0, None
    try:
        with contextlib.closing(sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True)) as db:
            found = db.execute(
                "SELECT experiment_id FROM experiments WHERE name = ? "
                "AND lifecycle_stage = 'active'",
                (experiment,),
            ).fetchone()
            if found is None:
                return 0, None
            (count,) = db.execute(
                "SELECT COUNT(*) FROM runs WHERE experiment_id = ? AND lifecycle_stage = 'active'",
                (found[0],),
            ).fetchone()
    except sqlite3.Error:
        return 0, None
    return int(count), str(found[0])


def find_stores(root: Path, depth: int = SEARCH_DEPTH) -> list[Path]:
    """``mlflow.db`` files of ``runs/mlflow``-style stores under ``root``, ``depth`` folders
    deep at most (hidden folders and virtual environments skipped)."""
    found: list[Path] = []
    folders = [root]
    for _ in range(depth + 1):
        below: list[Path] = []
        for folder in folders:
            db = folder / "mlflow" / "mlflow.db"
            if db.is_file():
                found.append(db.resolve())
            with contextlib.suppress(OSError):
                below += [
                    p
                    for p in sorted(folder.iterdir())
                    if p.is_dir() and p.name not in _SKIPPED and not p.name.startswith(".")
                ]
        folders = below
    return found


def runs_url(host: str, port: int) -> str:
    """The UI's experiment list in MLflow 3's "Model training" view (where runs are shown)."""
    return dashboard_url(base=f"http://{host}:{port}")


def register(app: typer.Typer) -> None:
    """Add ``ui`` to ``app``."""
    app.command("ui")(ui_cmd)
