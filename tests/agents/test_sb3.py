"""SB3 methods in parallel worker processes."""

from __future__ import annotations

from collections.abc import Callable

from agents import run_search
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.session import SearchSession


def test_ddpg_evaluates_episodes_in_two_worker_processes(
    run_config: Callable[..., SearchConfig], session: SearchSession
) -> None:
    config = run_config("ddpg", episodes=5, agent_options={"n_envs": 2})
    result = run_search(config, session=session, run_name="ddpg-2-envs")

    assert [r.index for r in result.history] == [0, 1, 2, 3, 4]  # 6 played, 5 counted
    assert all(r.feasible for r in result.history)
    assert len({r.reward for r in result.history[:2]}) == 2  # the workers explore apart
