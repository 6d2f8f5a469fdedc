"""``autoprune ui`` made for searches (issue 29): a busy port, Ctrl-C, where runs are, the
run description and the printed dashboard URL."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from torch import nn

from autoprune.cli import main
from autoprune.cli._search_report import print_result
from autoprune.cli._ui import find_stores, store_runs
from autoprune.core.policy import Policy
from autoprune.core.results import EpisodeRecord, SearchResult
from autoprune.core.specs import discover_layers
from autoprune.cost import load_profile
from autoprune.tracking import SearchTracker
from autoprune.tracking._dashboard import NOTE_TAG, VIEW_TAG, dashboard_url, runs_view_state

START_TIMEOUT_S = 180.0
"""Bound on the UI's start on a loaded 2-core machine."""
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DOCS = Path(__file__).resolve().parents[2] / "docs"
GENAI_ONLY = ("Evaluation runs", "Agent versions", "Judges")
"""Sidebar entries of MLflow 3's GenAI view (absent in its "Model training" view)."""


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def record_run(store: Path, name: str = "mlp__random__0") -> tuple[str, SearchResult, dict]:
    """A finished three-episode search logged in ``store``: its run id, result and files."""
    specs = discover_layers(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), (4,))
    records = [
        EpisodeRecord(
            i,
            Policy.uniform(specs, keep_ratio=k, w_bits=8, a_bits=8),
            k,
            {"accuracy": k, "macs": 10 * k, "latency": k, "budget_use_macs": 1.25 * k},
            feasible=1.25 * k <= 1,
        )
        for i, k in enumerate((0.5, 0.75, 0.25))
    ]
    result = SearchResult(
        "random", records, {"accuracy": 0.9, "macs": 10.0, "latency": 1.0}, seconds=2.0
    )
    tracker = SearchTracker(store, run_name=name)
    with tracker.start({"agent": "random"}, {"model": "mlp", "targets": "flops=0.8"}) as run_id:
        files = tracker.log_result(result, store.parent / "out")
    return run_id, result, files


def ui_process(port: int, runs_dir: Path) -> subprocess.Popen[bytes]:
    """``autoprune ui`` in its own session (as a terminal would run it)."""
    argv = [sys.executable, "-m", "autoprune.cli._app", "ui", "--port", str(port)]
    return subprocess.Popen(
        [*argv, "--runs-dir", str(runs_dir)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_until_answering(port: int, process: subprocess.Popen[bytes]) -> None:
    """Block until the UI answers HTTP 200 on 127.0.0.1 (bounded by START_TIMEOUT_S)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            assert process.poll() is None, "autoprune ui exited before answering"
            time.sleep(0.5)
    pytest.fail(f"autoprune ui did not answer within {START_TIMEOUT_S:.0f} s")


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (read from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_busy_port_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        code = main(["ui", "--port", str(port), "--runs-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == (
        f"error: port {port} on 127.0.0.1 is in use (another autoprune ui?); pass --port "
        f"{port + 1} or stop that server"
    )


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads child processes from /proc")
def test_ctrl_c_stops_every_child(tmp_path: Path) -> None:
    port = free_port()
    process = ui_process(port, tmp_path / "runs")
    try:
        wait_until_answering(port, process)
        children = descendants(process.pid)
        assert children, "the UI server runs as a child process"
        os.kill(process.pid, signal.SIGINT)
        process.wait(timeout=15)
        deadline = time.monotonic() + 5
        while any(alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in children if alive(pid)], "children outlived Ctrl-C"
        assert len(children) <= 2, "only mlflow server and one uvicorn worker"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the UI server is still listening"


def test_description_tag_and_runs_view(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    store = tmp_path / "runs" / "mlflow"
    run_id, result, _ = record_run(store)
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    run = client.get_run(run_id)
    note = run.data.tags[NOTE_TAG]
    assert note.startswith("**random** search, target `flops=0.8`")
    assert "- best accuracy: 0.7500 (original 0.9000), episode 1" in note
    assert "- budget use: 0.938 (1.0 = the limit)" in note
    assert "| `0` | 0.75 | 8 | 8 | 0.00 |" in note
    assert run.data.tags["best.budget_use"] == "0.9375"
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags[VIEW_TAG] == runs_view_state()


def test_search_report_prints_the_run_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "runs" / "mlflow"
    run_id, result, files = record_run(store)
    experiment_id = store_runs(store / "mlflow.db")[1]
    print_result(result, files, run_id, False, weights=None, profile=load_profile("bitfusion"))
    lines = capsys.readouterr().out.splitlines()
    url = (
        f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs/{run_id}"
        "?workflowType=machine_learning"
    )
    assert f"MLflow run: {run_id}" in lines
    assert f"dashboard:  {url}   (serve it: autoprune ui)" in lines


def test_ui_points_to_runs_in_other_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "project" / "exp1" / "runs" / "mlflow"
    record_run(elsewhere)
    monkeypatch.chdir(tmp_path / "project")
    assert find_stores(Path.cwd()) == [(elsewhere / "mlflow.db").resolve()]
    assert store_runs(elsewhere / "mlflow.db")[0] == 1
    from autoprune.cli import _ui

    lines: list[str] = []
    monkeypatch.setattr(_ui.err_console, "print", lambda text, **_: lines.append(str(text)))
    _ui._point_to_runs((Path("runs") / "mlflow" / "mlflow.db").resolve(), "http://h:1")
    assert lines[0] == f"no runs in {(Path('runs') / 'mlflow').resolve()} yet"
    assert lines[1] == (
        f"  1 run(s) in {elsewhere.resolve()}: autoprune ui --runs-dir {elsewhere.parent.resolve()}"
    )
    assert lines[2] == "experiments: http://h:1/#/experiments?workflowType=machine_learning"


def chromium(url: str, *options: str, profile: Path) -> str:
    """Run headless Chromium on ``url`` (20 s of page time) and return its stdout."""
    argv = [CHROMIUM or "chromium", "--headless", "--no-sandbox", "--disable-gpu"]
    argv += [f"--user-data-dir={profile}", "--hide-scrollbars", "--window-size=1800,1000"]
    argv += ["--virtual-time-budget=20000", *options, url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=True)
    return done.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium: apt-get install -y chromium")
def test_dashboard_opens_runs_in_model_training_view(tmp_path: Path) -> None:
    """The printed links open the runs table and a run page in "Model training", not the
    GenAI landing page. ``AUTOPRUNE_UPDATE_SCREENSHOTS=1`` copies the screenshots into
    README's ``docs/dashboard_run*.png``."""
    runs = tmp_path / "runs"
    name = "demo__random__0__20261207-210000"
    run_id, _, _ = record_run(runs / "mlflow", name=name)
    experiment_id = store_runs(runs / "mlflow" / "mlflow.db")[1]
    port = free_port()
    process = ui_process(port, runs)
    try:
        wait_until_answering(port, process)
        base = f"http://127.0.0.1:{port}"
        pages = {
            "dashboard_runs.png": (dashboard_url(experiment_id, base=base), "best.accuracy"),
            "dashboard_run.png": (dashboard_url(experiment_id, run_id, base), "best accuracy"),
        }
        for shot, (url, expected) in pages.items():
            dom = chromium(url, "--dump-dom", profile=tmp_path / "chromium")
            assert name in dom and expected in dom and "Model registry" in dom, url
            assert not [text for text in GENAI_ONLY if text in dom], url
            chromium(url, f"--screenshot={tmp_path / shot}", profile=tmp_path / "chromium")
            if os.environ.get("AUTOPRUNE_UPDATE_SCREENSHOTS") == "1":  # README's pictures
                shutil.copyfile(tmp_path / shot, DOCS / shot)
    finally:
        os.kill(process.pid, signal.SIGINT)
        process.wait(timeout=30)
