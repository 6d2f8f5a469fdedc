"""Ctrl-C and SIGTERM during a real search: exit 130 / 143, one line on how to resume, the
MLflow run marked KILLED, nothing half-written; the resume continues the same MLflow run."""

from __future__ import annotations

import fcntl
import signal
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _unlocked(run_dir: Path) -> bool:
    """Whether nobody holds the run's writer lock (taken and given back at once)."""
    with open(run_dir / "writer.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def test_sigint_and_sigterm_stop_cleanly_and_resume_continues_the_run(
    searches, shared_store: str, tmp_path: Path
) -> None:
    stopped = {
        signal.SIGINT: searches.start(tmp_path / "int", episodes=40, tracking=shared_store),
        signal.SIGTERM: searches.start(tmp_path / "term", episodes=40, tracking=shared_store),
    }
    for search in stopped.values():
        search.wait_records(2)
    codes = {signum: search.signal(signum) for signum, search in stopped.items()}

    assert codes == {signal.SIGINT: 130, signal.SIGTERM: 143}
    for signum, search in stopped.items():
        name = search.run_dir.name
        output = search.output()
        assert "Traceback" not in output
        assert output.strip().splitlines()[-1] == (
            f"interrupted by {signal.Signals(signum).name}; every finished episode is saved; "
            f"continue with: autoprune search --resume {name}"
        )
        assert not [p for p in search.run_dir.rglob("*") if "tmp" in p.name]  # no half files
        records = search.indices()
        assert records == list(range(len(records))) and len(records) >= 2
        assert _unlocked(search.run_dir)  # the exit released it
        (run,) = search.mlflow_runs()
        assert run.info.status == "KILLED"

    term = stopped[signal.SIGTERM]
    (killed,) = term.mlflow_runs()
    assert searches.resume(term).wait() == 0
    (run,) = term.mlflow_runs()
    assert run.info.run_id == killed.info.run_id and run.info.status == "FINISHED"
    assert term.logged_steps(run.info.run_id) == list(range(40))
