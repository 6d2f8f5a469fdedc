"""The registry of search methods and their options."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from agents import SearchMethod, make_method, method_names
from autoprune.core.errors import AutopruneError


def test_every_registered_method_builds_with_default_options() -> None:
    names = method_names()
    assert names == [
        "ddpg",
        "td3",
        "sac",
        "ppo",
        "tpe",
        "gp",
        "cmaes",
        "random",
        "nsga2",
        "uniform",
        "admm",
        "deep-compression",
    ]
    for name in names:
        method = make_method(name)
        assert isinstance(method, SearchMethod) and method.name == name


def test_ddpg_defaults_are_amcs() -> None:
    options = make_method("ddpg").options
    assert options.net_arch == (300, 300)
    assert (options.learning_rate, options.critic_learning_rate) == (1e-4, 1e-3)
    assert (options.tau, options.gamma, options.batch_size) == (0.01, 1.0, 64)
    assert (options.noise_sigma, options.noise_decay, options.reward_alpha) == (0.5, 0.95, 0.5)
    assert options.buffer_size_per_layer == 100


def test_unknown_method_and_option_name_the_valid_choices() -> None:
    with pytest.raises(AutopruneError, match="unknown search method 'dqn'; choose one of: .*ddpg"):
        make_method("dqn")
    with pytest.raises(AutopruneError, match="valid options: .*warmup_episodes"):
        make_method("ddpg", {"warmup": 3})
    with pytest.raises(AutopruneError, match="n_workers"):
        make_method("tpe", {"n_workers": 0})


@pytest.mark.parametrize(
    ("budget", "chosen", "expected"), [(120, None, 30), (800, None, 100), (20, 5, 5), (20, 50, 10)]
)
def test_warmup_scales_with_the_budget_and_never_takes_most_of_it(budget, chosen, expected):
    method = make_method("ddpg", {} if chosen is None else {"warmup_episodes": chosen})
    ctx = SimpleNamespace(budget=budget)
    if chosen is not None and chosen > budget // 2:
        with pytest.warns(UserWarning, match="more than half"):
            assert method.warmup_episodes(ctx) == expected
    else:
        assert method.warmup_episodes(ctx) == expected
