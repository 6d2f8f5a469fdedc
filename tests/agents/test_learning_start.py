"""``SearchMethod.episodes_before_learning``: how long each method acts at random."""

from __future__ import annotations

import pytest

from agents import make_method


@pytest.mark.parametrize(
    ("agent", "options", "budget", "before"),
    [
        ("ddpg", {}, 60, 16),  # a quarter of the budget at random, then one untrained episode
        ("ddpg", {}, 2, 1),
        ("td3", {"warmup_episodes": 40}, 60, 31),  # capped at half of the budget
        ("ppo", {}, 60, 4),  # the first rollout of 4 episodes
        ("tpe", {}, 60, 10),  # Optuna's start-up trials
        ("tpe", {"sampler_kwargs": {"n_startup_trials": 3}}, 60, 3),
        ("cmaes", {}, 60, 1),
        ("nsga2", {}, 60, 15),  # the first generation
        ("random", {}, 60, None),
        ("uniform", {}, 60, None),
    ],
)
def test_episodes_before_learning(agent, options, budget, before):
    assert make_method(agent, options).episodes_before_learning(budget) == before
