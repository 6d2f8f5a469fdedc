"""``autoprune ui`` serves the local store; ``autoprune export`` reads a run's best policy."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import yaml
from torch import nn

from autoprune.cli import main
from autoprune.core.policy import Policy
from autoprune.core.results import EpisodeRecord, SearchResult
from autoprune.core.specs import discover_layers
from autoprune.tracking import SearchTracker


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _recorded_run(store: str) -> tuple[str, Policy]:
    specs = discover_layers(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), (4,))
    records = [
        EpisodeRecord(
            i, Policy.uniform(specs, keep_ratio=k), k, {"accuracy": k, "macs": 10 * k, "latency": k}
        )
        for i, k in enumerate((0.5, 0.75, 0.25))
    ]
    tracker = SearchTracker(store, run_name="fake")
    with tracker.start({"agent": "random"}, {"model": "mlp"}) as run_id:
        result = SearchResult("random", records, {"accuracy": 1.0, "macs": 10.0, "latency": 1.0})
        tracker.log_result(result, store + "/../out")
    return run_id, records[1].policy


def test_export_prints_json_and_writes_yaml(tmp_path, capsys):
    store = str(tmp_path / "mlflow")
    run_id, best = _recorded_run(store)
    assert main(["export", run_id, "--tracking-uri", store]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert Policy.from_dict(printed).layers == best.layers
    out = tmp_path / "best.yaml"
    assert main(["export", run_id, "--tracking-uri", store, "-f", "yaml", "-o", str(out)]) == 0
    assert Policy.from_dict(yaml.safe_load(out.read_text())).layers == best.layers


def test_export_errors(tmp_path, capsys):
    store = str(tmp_path / "mlflow")
    _recorded_run(store)
    assert main(["export", "0123456789abcdef", "--tracking-uri", store]) == 2
    assert "0123456789abcdef" in capsys.readouterr().err
    assert main(["export", "x", "--format", "xml"]) == 2
    assert "unknown format 'xml'" in capsys.readouterr().err


def test_ui_answers_http_200_and_stops(tmp_path):
    store = str(tmp_path / "mlflow")
    _recorded_run(store)
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "autoprune.cli._app",
            "ui",
            "--port",
            str(port),
            "--tracking-uri",
            store,
        ],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        status = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and status is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as reply:
                    status = reply.status
            except OSError:
                assert process.poll() is None, "autoprune ui exited early"
                time.sleep(0.5)
        assert status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    time.sleep(1)
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the UI server is still listening"
