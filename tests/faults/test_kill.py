"""``kill -9`` at random points of real searches, then ``--resume``: every episode once,
nothing the killed process wrote is rewritten, and one MLflow run per search."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

EPISODES = 16

pytestmark = pytest.mark.slow


def test_kill_9_at_random_points_then_resume(searches, shared_store: str, tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    runs = [
        searches.start(tmp_path / agent, episodes=EPISODES, agent=agent, tracking=shared_store)
        for agent in ("ddpg", "random", "tpe")
    ]
    points = {s.pid: (rng.randint(1, EPISODES // 2), rng.uniform(0.0, 0.2)) for s in runs}
    info = f"random seed {seed}; kill after (records, seconds more): {list(points.values())}"
    pending, reached = list(runs), {}
    while pending:  # all three run at once; each dies at its own point
        for search in list(pending):
            records, delay = points[search.pid]
            assert search.alive(), f"{info}\n{search.output()}"
            if search.records() >= records:
                reached.setdefault(search.pid, time.monotonic())
            if search.pid in reached and time.monotonic() - reached[search.pid] >= delay:
                assert search.signal(signal.SIGKILL) == -signal.SIGKILL, info
                pending.remove(search)
        time.sleep(0.005)

    killed = {search.pid: search.history() for search in runs}
    resumed = [searches.resume(search) for search in runs]  # all three at once
    for search in resumed:
        assert search.wait() == 0, f"{info}\n{search.output()}"

    for search, old in zip(resumed, runs, strict=True):
        before = killed[old.pid]
        assert 1 <= before.count(b"\n") < EPISODES, info
        assert search.indices() == list(range(EPISODES)), info
        torn = list(search.run_dir.glob("history.jsonl.torn-*"))
        if torn:  # the kill tore the last line: dropped, and the file as it was kept
            assert torn[0].read_bytes() == before, info
            before = before[: before.rfind(b"\n") + 1]
        assert search.history().startswith(before), info
        (run,) = search.mlflow_runs()
        assert run.info.status == "FINISHED", info
        assert search.logged_steps(run.info.run_id) == list(range(EPISODES)), info
