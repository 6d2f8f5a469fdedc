"""``--backend ray``: searches on a local Ray cluster of 2 CPUs, one per module.

RL (ddpg) and Optuna (tpe) searches with two workers spend exactly the budget, give the same
history for the same seed, and survive a worker whose process is killed (the episode is
re-run on the restarted actor and recorded with ``retried``). Scale-out settings are
refused before any work.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from agents import check_settings, run_search
from autoprune.core.errors import AutopruneError
from autoprune.core.results import SearchResult
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.session import SearchSession

ray = pytest.importorskip("ray")

RunConfig = Callable[..., SearchConfig]


@pytest.fixture(scope="module", autouse=True)
def ray_cluster() -> Iterator[None]:
    """One local Ray of 2 CPUs for the whole module (the searches join it)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _kill(actor: Any) -> None:
    """Kill the process of ``actor`` (Ray restarts it and retries its call)."""
    os.kill(ray.get(actor.pid.remote()), signal.SIGKILL)


def _summary(result: SearchResult) -> list[tuple[Any, ...]]:
    """What must repeat with the same seed: rewards, metrics and layer settings, in order."""
    return [
        (r.index, r.reward, r.metrics["accuracy"], r.policy.to_dict()["layers"])
        for r in result.history
    ]


def test_rl_search_on_ray_is_exact_deterministic_and_survives_a_killed_worker(
    run_config: RunConfig, session: SearchSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = run_config("ddpg", episodes=5, backend="ray", workers=2)
    first = run_search(config, session=session, run_name="ray-ddpg-1")

    from agents._ray_vec_env import RayVecEnv

    step_async = RayVecEnv.step_async
    steps = [0]

    def kill_mid_episode(self: RayVecEnv, actions: Any) -> None:
        steps[0] += 1
        if steps[0] == len(self.layer_names) + 2:  # inside the second round of episodes
            _kill(self.actors[0])
        step_async(self, actions)

    monkeypatch.setattr(RayVecEnv, "step_async", kill_mid_episode)
    second = run_search(config, session=session, run_name="ray-ddpg-2")

    assert [r.index for r in first.history] == list(range(5))
    assert _summary(second) == _summary(first)
    retried = [r.index for r in second.history if r.policy.meta.get("retried")]
    assert retried == [2]  # the second round's episode of worker 0
    assert not any(r.policy.meta.get("retried") for r in first.history)


def test_optuna_search_on_ray_is_exact_deterministic_and_survives_a_killed_worker(
    run_config: RunConfig,
    session: SearchSession,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    config = run_config("tpe", episodes=5, backend="ray", workers=2)
    first = run_search(config, session=session, run_name="ray-tpe-1")

    import agents._ray_optuna as ray_optuna

    start, tell = ray_optuna.start_workers, ray_optuna._tell
    started: list[Any] = []
    told = [0]

    def keep_workers(*args: Any) -> Any:
        started.append(start(*args))
        return started[-1]

    def kill_after_second_tell(*args: Any) -> None:
        tell(*args)
        told[0] += 1
        if told[0] == 2:  # trial 1's actor is killed before it is given trial 3
            _kill(started[0].actors[1])

    monkeypatch.setattr(ray_optuna, "start_workers", keep_workers)
    monkeypatch.setattr(ray_optuna, "_tell", kill_after_second_tell)
    second = run_search(config, session=session, run_name="ray-tpe-2")

    assert _summary(second) == _summary(first)
    assert [r.policy.meta["trial_number"] for r in first.history] == list(range(5))
    assert [r.index for r in second.history if r.policy.meta.get("retried")] == [3]
    study = optuna.load_study(study_name="ray-tpe-1", storage=config.storage or _sqlite(config))
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 5
    assert len(study.trials) == 5
    # the actors' data comes through a named actor, so Ray has no restart warning to print
    assert "constructor arguments in the object store" not in capfd.readouterr().err


def _sqlite(config: SearchConfig) -> str:
    from agents._optuna_study import storage_url

    return storage_url(config)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"workers": 0}, "--workers 0 must be at least 1"),
        ({"backend": "spark"}, "unknown backend 'spark'"),
        ({"backend": "ray", "ray_address": "not an address"}, "is not a Ray address"),
        ({"ray_address": "10.0.0.5:6379"}, "--ray-address needs --backend ray"),
        ({"workers": 3, "agent_options": {"n_envs": 2}}, "contradicts --workers 3"),
    ],
)
def test_bad_scale_out_settings_are_refused_before_any_work(
    run_config: RunConfig, changes: dict[str, Any], message: str
) -> None:
    config = run_config("ddpg", **changes)
    with pytest.raises(AutopruneError, match=message):
        check_settings(config)


def test_backend_ray_without_ray_names_the_extra(
    run_config: RunConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else find_spec(name, *a)
    )
    with pytest.raises(AutopruneError, match=r"pip install 'autoprune\[ray\]'"):
        check_settings(run_config("tpe", backend="ray", workers=2))


class Crash(Exception):
    """Raised from ``on_record`` to stop a search as a killed driver would."""


def test_a_ray_search_resumed_after_a_crash_neither_loses_nor_doubles_trials(
    run_config: RunConfig, session: SearchSession
) -> None:
    config = run_config("tpe", episodes=4, backend="ray", workers=2, checkpoint_every=1)

    def crash_after_two(record: Any) -> None:
        if record.index == 2:
            raise Crash

    with pytest.raises(Crash):
        run_search(config, session=session, on_record=crash_after_two, run_name="ray-resume")
    result = run_search(config, session=session, resume="ray-resume")

    trials = [r.policy.meta["trial_number"] for r in result.history]
    assert [r.index for r in result.history] == list(range(4))
    assert len(set(trials)) == 4
    study = optuna.load_study(study_name="ray-resume", storage=_sqlite(config))
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 4


@pytest.mark.parametrize(
    "flags",
    [
        ["--workers", "0"],
        ["--backend", "ray", "--ray-address", "nowhere"],
        ["--ray-address", "a:1"],
    ],
)
def test_the_cli_refuses_bad_scale_out_flags_with_exit_2_and_writes_nothing(
    tmp_path: Any, flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from autoprune.cli import main

    assert main(["search", "--episodes", "2", "--runs-dir", str(tmp_path / "runs"), *flags]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
