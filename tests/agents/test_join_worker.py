"""``autoprune worker RUN``: a second process joins a running Optuna search through its
storage and shares its budget exactly."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from agents import run_search
from agents._optuna_study import storage_url
from autoprune.cli import main
from autoprune.core.results import EpisodeRecord
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.session import SearchSession

RunConfig = Callable[..., SearchConfig]


def test_a_joined_worker_process_shares_the_budget(
    run_config: RunConfig, session: SearchSession
) -> None:
    config = run_config("tpe", episodes=5)
    url = storage_url(config)
    worker: list[subprocess.Popen[bytes]] = []

    def hold_until_the_worker_completed_a_trial(record: EpisodeRecord) -> None:
        if record.index != 0:
            return
        cli = str(Path(sys.executable).with_name("autoprune"))
        command = [cli, "--threads", "1", "worker", "joined", "--storage", url]
        worker.append(subprocess.Popen(command, stderr=subprocess.PIPE))
        study = optuna.load_study(study_name="joined", storage=url)
        deadline = time.monotonic() + 300  # the worker imports torch and builds its evaluator
        while time.monotonic() < deadline and worker[0].poll() is None:
            theirs = [
                t
                for t in study.get_trials(states=(TrialState.COMPLETE,))
                if t.user_attrs["episode"]["worker"] == worker[0].pid
            ]
            if theirs:
                return
            time.sleep(0.5)
        pytest.fail("the joined worker completed no trial")

    result = run_search(
        config,
        session=session,
        on_record=hold_until_the_worker_completed_a_trial,
        run_name="joined",
    )
    _, err = worker[0].communicate(timeout=300)

    assert worker[0].returncode == 0, err.decode()
    assert b"trial(s) of joined evaluated here" in err
    study = optuna.load_study(study_name="joined", storage=url)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 5
    assert sorted(r.policy.meta["trial_number"] for r in result.history) == sorted(
        t.number for t in complete
    )
    assert {t.user_attrs["episode"]["worker"] for t in complete} >= {worker[0].pid}


def test_worker_of_an_unknown_run_is_refused_without_writing(tmp_path: Path) -> None:
    assert main(["worker", "nosuch", "--runs-dir", str(tmp_path / "runs")]) == 2
    assert not (tmp_path / "runs").exists()
