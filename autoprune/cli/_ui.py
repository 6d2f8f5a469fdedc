"""``autoprune ui``: the MLflow UI on the local store."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import typer

from autoprune.cli._console import err_console
from autoprune.cli._options import RUNS_DIR, TRACKING_URI
from autoprune.cli._tracking import tracking_location
from autoprune.tracking import TrackingStore, ui_command


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
    err_console.print(f"MLflow UI for {store.uri} at http://{host}:{port} (Ctrl-C to stop)")
    err_console.print(
        f"searches: {runs_url(host, port)} (MLflow 3 opens in its GenAI view; this link, or "
        "'Model training' in the sidebar's GenAI / Model training switch, shows the runs)",
        soft_wrap=True,
    )
    process = subprocess.Popen(argv, start_new_session=True)

    def stop(*_: object) -> None:
        # mlflow ui's server workers live in its process group: stop them all
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)

    def stop_and_exit(*_: object) -> None:
        stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop_and_exit)
    try:
        code = process.wait()
    except KeyboardInterrupt:
        stop()
        code = process.wait()
    sys.exit(code if code >= 0 else 0)


def runs_url(host: str, port: int) -> str:
    """The UI's experiment list in MLflow 3's "Model training" view (where runs are shown)."""
    return f"http://{host}:{port}/#/experiments?workflowType=machine_learning"


def register(app: typer.Typer) -> None:
    """Add ``ui`` to ``app``."""
    app.command("ui")(ui_cmd)
