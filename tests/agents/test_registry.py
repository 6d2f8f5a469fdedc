"""The registry of search methods and their options."""

from __future__ import annotations

import pytest

from agents import SearchMethod, make_method, method_names
from autoprune.errors import AutopruneError


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
