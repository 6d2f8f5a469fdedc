"""Optuna methods: trials as episodes, the shared budget, SQLite and PostgreSQL workers."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from agents import run_search
from agents._optuna_study import slot, storage_url
from autoprune.core.policy import Policy
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.session import SearchSession

RunConfig = Callable[..., SearchConfig]


def test_slots_cap_complete_trials_under_concurrent_workers() -> None:
    study = optuna.create_study()
    lock = threading.Lock()
    evaluated: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        if slot(trial) >= 7:
            trial.study.stop()
            raise optuna.TrialPruned()
        time.sleep(0.01)
        with lock:
            evaluated.append(trial.number)
        return trial.suggest_float("x", -1.0, 1.0)

    study.optimize(objective, n_trials=40, n_jobs=4)

    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == len(evaluated) == 7


def test_trials_store_the_repaired_policy_and_nsga2_reports_four_objectives(
    run_config: RunConfig, session: SearchSession
) -> None:
    config = run_config("nsga2", episodes=4)
    result = run_search(config, session=session, run_name="nsga2-attrs")

    assert result.objectives == ("accuracy", "latency", "energy", "size")
    study = optuna.load_study(study_name="nsga2-attrs", storage=storage_url(config))
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 4
    for trial in complete:
        policy = Policy.from_dict(trial.user_attrs["episode"]["policy"])
        policy.validate(session.evaluator.specs)
        metrics = trial.user_attrs["episode"]["metrics"]
        assert trial.values == [metrics[k] for k in result.objectives]
        assert sorted(trial.params) == ["conv1.keep", "conv2.keep", "conv3.keep"]


def _assert_shared_budget(study: optuna.Study, history_trials: list[int], budget: int) -> None:
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    assert len(complete) == budget
    assert sorted(history_trials) == sorted(t.number for t in complete)


def test_two_workers_share_a_sqlite_study_without_duplicates(
    run_config: RunConfig, session: SearchSession
) -> None:
    config = run_config("random", episodes=8, agent_options={"n_workers": 2})
    result = run_search(config, session=session, run_name="sqlite-2")

    assert [r.index for r in result.history] == list(range(8))
    study = optuna.load_study(study_name="sqlite-2", storage=storage_url(config))
    _assert_shared_budget(study, [r.policy.meta["trial_number"] for r in result.history], 8)


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL server on a unix socket (skipped when not installed)."""
    pytest.importorskip("psycopg2")
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries are not installed (apt-get install postgresql)")
    user = "postgres" if os.geteuid() == 0 else None  # initdb refuses to run as root
    root = Path(tempfile.mkdtemp(prefix="autoprune-pg-"))
    if user is not None:
        shutil.chown(root, user)
    port = _free_port()

    def pg(*args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, user=user, timeout=120)

    data, log = str(root / "data"), str(root / "log")
    try:
        pg(str(bindir / "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "-N")
        options = f"-k {root} -p {port} -c listen_addresses=''"
        pg(str(bindir / "pg_ctl"), "-D", data, "-o", options, "-l", log, "-w", "start")
        pg(str(bindir / "createdb"), "-h", str(root), "-p", str(port), "-U", "postgres", "optuna")
        yield f"postgresql+psycopg2://postgres@/optuna?host={root}&port={port}"
    finally:
        if (root / "data" / "postmaster.pid").exists():
            pg(str(bindir / "pg_ctl"), "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def test_two_workers_share_a_postgresql_study(
    run_config: RunConfig, session: SearchSession, postgres_url: str
) -> None:
    config = run_config("tpe", episodes=6, storage=postgres_url, agent_options={"n_workers": 2})
    result = run_search(config, session=session, run_name="postgres-2")

    assert [r.index for r in result.history] == list(range(6))
    study = optuna.load_study(study_name="postgres-2", storage=postgres_url)
    _assert_shared_budget(study, [r.policy.meta["trial_number"] for r in result.history], 6)
