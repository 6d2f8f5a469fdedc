"""run_search: every method on one budget, run directories, resume after kill -9."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium
import pytest

from agents import method_class, method_names, run_name_for, run_search
from agents._sb3_state import save_agent
from autoprune.core.errors import AutopruneError
from autoprune.core.results import EpisodeRecord
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.session import SearchSession

RunConfig = Callable[..., SearchConfig]


def _history_lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]


SEARCH_METHODS = ["ddpg", "td3", "sac", "ppo", "tpe", "gp", "cmaes", "random", "nsga2", "uniform"]
"""The methods that search over episodes (single-policy methods take a budget of one)."""
assert set(SEARCH_METHODS) <= set(method_names())


@pytest.mark.parametrize("agent", SEARCH_METHODS)
def test_every_method_spends_exactly_the_budget_on_feasible_policies(
    agent: str, run_config: RunConfig, session: SearchSession
) -> None:
    config = run_config(agent, episodes=5)
    seen: list[EpisodeRecord] = []
    result = run_search(config, session=session, on_record=seen.append, run_name=f"all-{agent}")

    assert len(result.history) == 5
    assert [r.index for r in result.history] == [0, 1, 2, 3, 4]
    assert [r.index for r in seen] == [0, 1, 2, 3, 4]
    best = result.best
    assert best is not None and best.feasible
    assert best.metrics["macs"] <= 0.5 * session.evaluator.baseline_metrics["macs"] * (1 + 1e-9)
    assert best.reward == max(r.reward for r in result.history if r.feasible)
    assert result.pareto and all(r.feasible for r in result.pareto)
    run_dir = Path(config.runs_dir) / "searches" / f"all-{agent}"
    assert [line["index"] for line in _history_lines(run_dir)] == [0, 1, 2, 3, 4]
    assert json.loads((run_dir / "result.json").read_text())["evaluations"] == 5
    assert (run_dir / "checkpoint.json").is_file()


def test_run_names_follow_the_cleanrl_pattern(
    run_config: RunConfig, session: SearchSession
) -> None:
    assert re.fullmatch(
        r"demo__uniform__7__\d{8}-\d{6}", run_name_for(run_config("uniform", seed=7))
    )
    config = run_config("uniform", episodes=1)
    run_search(config, session=session)
    run_search(config, session=session)  # same second: a suffix keeps the names apart
    names = [p.name for p in (Path(config.runs_dir) / "searches").glob("demo__uniform__0__*")]
    assert len(names) == 2
    with pytest.raises(AutopruneError, match="session was prepared with other seed"):
        run_search(run_config("uniform", seed=7), session=session)


def test_zero_budget_and_unknown_method_fail_before_any_work(run_config: RunConfig) -> None:
    with pytest.raises(AutopruneError, match="episodes"):
        run_search(run_config("random", episodes=0))
    with pytest.raises(AutopruneError, match="ddpg.*uniform"):
        run_search(run_config("annealing"))
    with pytest.raises(AutopruneError, match="valid options"):
        run_search(run_config("random", agent_options={"n_envs": 2}))


@pytest.mark.parametrize("agent", ["tpe", "td3", "sac", "ppo"])
def test_resuming_a_finished_run_adds_nothing_and_extending_it_continues(
    agent: str, run_config: RunConfig, session: SearchSession
) -> None:
    config = run_config(agent, episodes=3)
    name = f"extend-{agent}"
    first = run_search(config, session=session, run_name=name)
    again = run_search(config, session=session, resume=name)
    assert [r.to_dict() for r in again.history] == [r.to_dict() for r in first.history]

    longer = run_search(config.replace(episodes=5), session=session, resume=name)

    assert [r.index for r in longer.history] == [0, 1, 2, 3, 4]
    assert [r.to_dict() for r in longer.history[:3]] == [r.to_dict() for r in first.history]
    if agent == "tpe":
        assert len({r.policy.meta["trial_number"] for r in longer.history}) == 5
    else:  # the agent went on from its checkpoint; each run ended with its learned policy
        learned = [r.index for r in longer.history if r.policy.meta.get("learned")]
        assert learned == [2, 4]
        (checkpoint,) = (Path(config.runs_dir) / "searches" / name / "checkpoints").iterdir()
        state = json.loads((checkpoint / "method" / "state.json").read_text())
        # the learning episodes, 3 steps each; ppo's runner recorded the uniform seed policy
        # before learning (off-policy agents replay it as their first warm-up episode)
        seeded = 1 if agent == "ppo" else 0
        assert state["num_timesteps"] == (5 - 2 - seeded) * 3


def test_resume_refuses_other_settings_and_missing_runs(
    run_config: RunConfig, session: SearchSession
) -> None:
    config = run_config("uniform", episodes=1)
    run_search(config, session=session, run_name="fixed")
    with pytest.raises(AutopruneError, match="already exists"):
        run_search(config, session=session, run_name="fixed")
    with pytest.raises(AutopruneError, match="targets"):
        run_search(config.replace(targets=("flops=0.4",)), session=session, resume="fixed")
    with pytest.raises(AutopruneError, match="no search run"):
        run_search(config, session=session, resume="never-started")
    infeasible = config.replace(targets=("flops=0.001",))
    with pytest.raises(AutopruneError, match="infeasible"):
        run_search(infeasible, session=session, run_name="infeasible")
    assert not (Path(config.runs_dir) / "searches" / "infeasible").exists()


def test_a_run_saved_with_env_kwargs_resumes_with_the_same_config_keys(
    run_config: RunConfig, session: SearchSession
) -> None:
    config = run_config("uniform", episodes=1).replace(max_keep=0.9)
    run_search(config, session=session, run_name="old")
    path = Path(config.runs_dir) / "searches" / "old" / "config.json"
    saved = json.loads(path.read_text())  # as an older version wrote it
    for key in ("max_keep", "pin_first_last", "reward_kwargs", "layers"):
        del saved[key]
    saved["agent_options"] = {"env_kwargs": {"max_keep": 0.9}}
    path.write_text(json.dumps(saved))
    result = run_search(config.replace(episodes=2), session=session, resume="old")
    assert len(result.history) == 2
    with pytest.raises(AutopruneError, match="max_keep: saved 0.9, given 1.0"):
        run_search(config.replace(episodes=3, max_keep=1.0), session=session, resume="old")


KILL_SCRIPT = """
import json, sys
from agents import run_search
from autoprune.workflow.config import SearchConfig
config = SearchConfig.from_mapping(json.loads(sys.argv[1]))
run_search(config, run_name="killed")
"""


def test_resume_after_kill_loses_and_repeats_no_episode(
    run_config: RunConfig, session: SearchSession
) -> None:
    budget = 8
    config = run_config("ddpg", episodes=budget, checkpoint_every=2)
    run_dir = Path(config.runs_dir) / "searches" / "killed"
    args = {**config.to_dict(), "targets": list(config.targets)}
    child = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, json.dumps(args)],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    history = run_dir / "history.jsonl"
    deadline = time.monotonic() + 120
    while not (history.is_file() and len(history.read_bytes().splitlines()) >= 3):
        assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
        assert time.monotonic() < deadline, "the search never recorded three episodes"
        time.sleep(0.02)
    assert (run_dir / "checkpoint.json").is_file()  # so the resume restores an agent
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    before = _history_lines(run_dir)
    assert 3 <= len(before) < budget

    result = run_search(config, session=session, resume="killed")

    assert [r.index for r in result.history] == list(range(budget))
    assert [r.to_dict() for r in result.history[: len(before)]] == before
    assert _history_lines(run_dir) == [r.to_dict() for r in result.history]


def test_resuming_a_checkpoint_of_another_environment_is_refused_in_one_line(
    run_config: RunConfig, session: SearchSession
) -> None:
    config = run_config("td3", episodes=3)
    run_search(config, session=session, run_name="old-env")
    (checkpoint,) = (Path(config.runs_dir) / "searches" / "old-env" / "checkpoints").iterdir()
    older = method_class("td3").algorithm("MlpPolicy", gymnasium.make("Pendulum-v1"))
    save_agent(older, checkpoint / "method")  # observations of another shape
    with pytest.raises(AutopruneError, match="start a new search") as caught:
        run_search(config.replace(episodes=5), session=session, resume="old-env")
    assert "\n" not in str(caught.value)
