"""One writer per run: while a search runs, a ``--resume`` of it (or a new run under its
name) is refused with the live PID, and nothing of the live run is touched."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from agents import run_search
from autoprune.core.errors import AutopruneError
from autoprune.workflow.config import SearchConfig

pytestmark = pytest.mark.slow


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_live_run_refuses_a_second_writer(
    searches, shared_store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live = searches.start(tmp_path, episodes=24, tracking=shared_store)
    live.wait_records(2)
    os.kill(live.pid, signal.SIGSTOP)  # frozen, so that any change below is the intruder's
    try:
        before = _snapshot(live.run_dir)
        capsys.readouterr()

        assert live.resume_here() == 2

        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err
        assert f"run '{live.run_dir.name}' is being written by PID {live.pid}" in err
        assert _snapshot(live.run_dir) == before
        saved = json.loads((live.run_dir / "config.json").read_text())
        config = SearchConfig.from_mapping({**saved, "runs_dir": str(live.folder / "runs")})
        with pytest.raises(AutopruneError, match=f"is running under PID {live.pid}") as refused:
            run_search(config, run_name=live.run_dir.name)
        assert "resume" not in str(refused.value)  # the advice never points at a live run
        assert _snapshot(live.run_dir) == before
    finally:
        os.kill(live.pid, signal.SIGCONT)

    assert live.wait() == 0  # the live search finishes undisturbed
    assert live.indices() == list(range(24))
    (run,) = live.mlflow_runs()
    assert run.info.status == "FINISHED"
