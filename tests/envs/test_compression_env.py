"""CompressionEnv: Gym API, episode walk, observations, terminal info, errors, determinism."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from autoprune.core.budget import Budget
from autoprune.core.errors import AutopruneError
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.evaluation import PolicyEvaluator
from envs import ENV_ID, FEATURES, OBS_SIZE, CompressionEnv, decode_action
from envs.actions import LayerAction, bits_from_unit

MODES = ("prune", "quantize", "sparse", "joint")
BUDGETS = {
    "prune": ["flops=0.5"],
    "quantize": ["latency=0.3"],
    "sparse": ["size=0.1"],
    "joint": ["energy=0.2"],
}


def _rollout(env: CompressionEnv, actions: list[np.ndarray], seed: int = 0) -> dict[str, Any]:
    obs, info = env.reset(seed=seed)
    observations, rewards = [obs], []
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        rewards.append(reward)
    assert terminated and not truncated
    return {"obs": observations, "rewards": rewards, "info": info}


def _feature(obs: np.ndarray, name: str) -> float:
    return float(obs[FEATURES.index(name)])


@pytest.mark.parametrize("mode", MODES)
def test_gymnasium_and_sb3_checkers_pass(trained_evaluator: PolicyEvaluator, mode: str) -> None:
    env = CompressionEnv(trained_evaluator, BUDGETS[mode], mode=mode)
    check_env(env, skip_render_check=True)
    sb3_check_env(env, warn=True)


def test_gym_make_builds_the_registered_env(trained_evaluator: PolicyEvaluator) -> None:
    env = gym.make(ENV_ID, evaluator=trained_evaluator, budget=["flops=0.5"], mode="joint")
    obs, _ = env.reset(seed=3)
    assert isinstance(env.unwrapped, CompressionEnv)
    assert env.action_space.shape == (4,)
    assert env.observation_space.contains(obs)
    env.close()


def test_seeded_rollouts_are_identical(trained_evaluator: PolicyEvaluator) -> None:
    rng = np.random.default_rng(7)
    actions = [rng.uniform(-1, 1, 4).astype(np.float32) for _ in range(4)]
    results = []
    for _ in range(2):
        trained_evaluator.cache.clear()  # both rollouts evaluate for real
        env = CompressionEnv(trained_evaluator, ["latency=0.2"], reward="mnas", mode="joint")
        results.append(_rollout(env, actions, seed=123))
    first, second = results
    assert not first["info"]["cached"] and not second["info"]["cached"]
    for a, b in zip(first["obs"], second["obs"], strict=True):
        np.testing.assert_array_equal(a, b)
    assert first["rewards"] == second["rewards"]
    assert first["info"]["metrics"] == second["info"]["metrics"]
    assert first["info"]["policy"].layers == second["info"]["policy"].layers


def test_repeated_policy_is_served_from_the_cache(trained_evaluator: PolicyEvaluator) -> None:
    env = CompressionEnv(trained_evaluator, ["flops=0.6"], mode="prune", reward="amc")
    actions = [np.array([a], np.float32) for a in (0.9, -0.3, 0.1)]
    first = _rollout(env, actions)["info"]
    second = _rollout(env, actions)["info"]
    assert second["cached"]
    assert second["eval_seconds"] == 0.0
    assert second["metrics"] == first["metrics"]
    expected = -(1 - first["metrics"]["accuracy"]) * math.log(first["metrics"]["macs"])
    assert second["policy"].metrics["accuracy"] == first["metrics"]["accuracy"]
    assert _rollout(env, actions)["rewards"][-1] == pytest.approx(expected)


def test_steps_per_mode(make_fake_evaluator: Callable) -> None:
    evaluator = make_fake_evaluator()
    assert CompressionEnv(evaluator, mode="prune").layer_names == list(evaluator.plan.prunable)
    assert CompressionEnv(evaluator, mode="quantize").layer_names == ["conv2", "conv3"]
    unpinned = CompressionEnv(evaluator, mode="quantize", pin_first_last=False)
    assert unpinned.layer_names == ["conv1", "conv2", "conv3", "fc"]
    every = ["conv1", "conv2", "conv3", "fc"]  # every layer has a sparsity
    assert CompressionEnv(evaluator, mode="sparse").layer_names == every
    joint = CompressionEnv(evaluator, mode="joint")
    assert joint.layer_names == every
    obs, _ = joint.reset()
    assert _feature(obs, "keep_searched") == 1.0 and _feature(obs, "bits_searched") == 0.0
    assert _feature(obs, "sparsity_searched") == 1.0
    obs, _ = CompressionEnv(evaluator, mode="quantize").reset()
    assert _feature(obs, "sparsity_searched") == 0.0 and _feature(obs, "bits_searched") == 1.0


def test_pinned_and_ignored_dimensions(make_fake_evaluator: Callable) -> None:
    evaluator = make_fake_evaluator()
    env = CompressionEnv(evaluator, mode="joint")
    info = _rollout(env, [np.array([-1.0, -1.0, -1.0, -1.0], np.float32)] * 4)["info"]
    layers = info["policy"].layers
    assert (layers["conv1"].w_bits, layers["conv1"].a_bits) == (8, 8)  # pinned first layer
    assert (layers["fc"].keep_ratio, layers["fc"].w_bits) == (1.0, 8)  # classifier, pinned
    assert (layers["conv2"].w_bits, layers["conv2"].a_bits) == (2, 2)
    assert layers["conv2"].keep_ratio == 6 / 32  # kept_count(0.2, 32) = 6 channels
    assert {lp.sparsity for lp in layers.values()} == {0.995}  # pinned layers are pruned too


def test_terminal_step_pays_the_reward_and_reports(make_fake_evaluator: Callable) -> None:
    evaluator = make_fake_evaluator()
    budget = Budget.parse(["flops=0.5", "size=0.6"])
    env = CompressionEnv(evaluator, budget, mode="prune")
    run = _rollout(env, [np.array([0.5], np.float32)] * 3)
    info = run["info"]
    assert run["rewards"][:-1] == [0.0, 0.0]
    assert run["rewards"][-1] == info["metrics"]["accuracy"]  # the default reward
    np.testing.assert_array_equal(run["obs"][-1], np.zeros(OBS_SIZE, np.float32))
    assert {"policy", "metrics", "feasible", "cached", "eval_seconds", "seconds"} <= set(info)
    metrics = info["metrics"]
    assert {"accuracy", "macs", "params", "size", "latency", "energy"} <= set(metrics)
    assert metrics["budget_use_macs"] <= 1.0 and metrics["budget_use_size"] <= 1.0
    assert metrics["accuracy_drop"] == pytest.approx(1.0 - metrics["accuracy"])
    policy = info["policy"]
    assert policy.metrics == metrics and policy.budget == budget.to_dict()
    policy.validate(evaluator.specs)
    assert evaluator.evaluated[-1] is policy
    with pytest.raises(AutopruneError, match="call reset"):
        env.step(np.array([0.5], np.float32))


def test_observation_features(make_fake_evaluator: Callable) -> None:
    evaluator = make_fake_evaluator()
    env = CompressionEnv(evaluator, mode="prune")
    obs, info = env.reset(seed=0)
    assert obs.shape == (OBS_SIZE,) and obs.dtype == np.float32
    assert info == {"step": 0, "next_layer": "conv1"}
    assert _feature(obs, "layer_index") == 0.0 and _feature(obs, "type_conv") == 1.0
    assert _feature(obs, "prev_keep") == 1.0 and _feature(obs, "budget_headroom") == 1.0
    assert _feature(obs, "macs_reduced") == 0.0
    total = sum(s.macs for s in evaluator.specs)
    rest = sum(s.macs for s in evaluator.specs[1:]) / total
    assert _feature(obs, "macs_rest") == pytest.approx(rest)
    obs, _, _, _, info = env.step(np.array([-1.0], np.float32))
    assert info["keep_ratio"] == 3 / 16  # kept_count(0.2, 16) = 3
    assert _feature(obs, "prev_keep") == pytest.approx(3 / 16)
    assert _feature(obs, "macs_reduced") > 0.0
    assert _feature(obs, "layer_index") == pytest.approx(1 / 3)


def test_sparse_mode_keeps_activations_float_and_searches_every_layers_bits(
    make_fake_evaluator: Callable,
) -> None:
    env = CompressionEnv(make_fake_evaluator(), ["size=0.1"], mode="sparse")
    assert env.action_space.shape == (2,)
    run = _rollout(env, [np.array([0.0, -1.0], np.float32)] * 4)
    layers = run["info"]["policy"].layers
    assert {lp.a_bits for lp in layers.values()} == {32}  # Deep Compression: float activations
    assert {lp.keep_ratio for lp in layers.values()} == {1.0}
    assert {lp.w_bits for lp in layers.values()} == {2}  # first and last too (not pinned)
    assert all(lp.sparsity > 0 for lp in layers.values())
    assert run["info"]["sparsity"] == layers["fc"].sparsity  # the last step's info
    pinned = CompressionEnv(
        make_fake_evaluator(), ["size=0.1"], "accuracy", "sparse", pin_first_last=True
    )
    layers = _rollout(pinned, [np.array([0.0, -1.0], np.float32)] * 4)["info"]["policy"].layers
    assert (layers["conv1"].w_bits, layers["fc"].w_bits) == (8, 8)


def test_sparsity_features_follow_the_decisions(make_fake_evaluator: Callable) -> None:
    evaluator = make_fake_evaluator()
    env = CompressionEnv(evaluator, ["size=0.1"], mode="sparse", max_sparsity=0.98)
    obs, _ = env.reset()
    assert _feature(obs, "decided_density") == 1.0 and _feature(obs, "decided_w_bits") == 1.0
    assert _feature(obs, "prev_sparsity") == 0.0
    left = _feature(obs, "budget_left")
    minimum = env.space.costs(env.space.minimum())["size"]
    expected = (0.1 * evaluator.baseline_metrics["size"] - minimum) / evaluator.baseline_metrics[
        "size"
    ]
    assert left == pytest.approx(expected, rel=1e-5)
    obs, _, _, _, info = env.step(np.array([0.0, 1.0], np.float32))  # conv1: sparsity 0.49
    assert info["sparsity"] == 0.49 and info["w_bits"] == 8
    assert _feature(obs, "prev_sparsity") == pytest.approx(0.49)
    assert _feature(obs, "decided_density") == pytest.approx(0.51)
    assert _feature(obs, "decided_w_bits") == pytest.approx(0.6)  # log2(8) / 5
    assert _feature(obs, "budget_left") < left  # conv1 spent part of the budget
    obs, _, _, _, _ = env.step(np.array([-1.0, -1.0], np.float32))  # conv2: 0.98, 2 bits
    params = {s.name: s.params for s in evaluator.specs}
    weight = params["conv1"] + params["conv2"]
    density = (0.51 * params["conv1"] + 0.02 * params["conv2"]) / weight
    assert _feature(obs, "decided_density") == pytest.approx(density, rel=1e-5)
    assert obs.min() >= 0.0 and obs.max() <= 1.0


def test_budget_left_is_one_without_a_budget(make_fake_evaluator: Callable) -> None:
    obs, _ = CompressionEnv(make_fake_evaluator(), mode="joint").reset()
    assert _feature(obs, "budget_left") == 1.0 and _feature(obs, "budget_headroom") == 1.0


def test_headroom_shrinks_with_a_tighter_budget(make_fake_evaluator: Callable) -> None:
    evaluator = make_fake_evaluator()
    loose, _ = CompressionEnv(evaluator, ["flops=0.8"]).reset()
    tight, _ = CompressionEnv(evaluator, ["flops=0.2"]).reset()
    assert 0.0 < _feature(tight, "budget_headroom") < _feature(loose, "budget_headroom") <= 1.0


def test_layer_subset(make_fake_evaluator: Callable) -> None:
    evaluator = make_fake_evaluator()
    env = CompressionEnv(evaluator, mode="prune", layers=["conv2"])
    assert env.layer_names == ["conv2"]
    info = _rollout(env, [np.array([-1.0], np.float32)])["info"]
    assert info["policy"].layers["conv1"].keep_ratio == 1.0
    with pytest.raises(AutopruneError, match="no layer to search"):
        CompressionEnv(evaluator, mode="prune", layers=["fc"])


def test_callable_reward_gets_its_arguments(make_fake_evaluator: Callable) -> None:
    def scaled(metrics: dict, baseline: dict, limits: dict, *, scale: float) -> float:
        return scale * metrics["accuracy"]

    env = CompressionEnv(make_fake_evaluator(), reward=scaled, reward_kwargs={"scale": 2.0})
    run = _rollout(env, [np.array([1.0], np.float32)] * 3)
    assert run["rewards"][-1] == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reward": "speed"}, "unknown reward 'speed'"),
        ({"reward": "mnas", "reward_kwargs": {"beta": 1.0}}, "takes no argument"),
        ({"budget": ["watts=0.5"]}, "unknown budget key 'watts'"),
        ({"budget": ["flops=0.001"]}, r"smallest this search \(mode 'prune'\) can reach is"),
        ({"layers": ["conv9"]}, "unknown layer 'conv9'"),
        ({"mode": "distill"}, "unknown mode 'distill'"),
        ({"min_keep": 0.0}, "keep range"),
        ({"min_bits": 1}, "bit range"),
        ({"min_bits": 6, "max_bits": 4}, "bit range"),
        ({"mode": "sparse", "max_sparsity": 1.0}, "max_sparsity 1.0 is invalid"),
        ({"mode": "joint", "max_sparsity": -0.1}, "max_sparsity -0.1 is invalid"),
    ],
)
def test_bad_construction(make_fake_evaluator: Callable, kwargs: dict, message: str) -> None:
    with pytest.raises(AutopruneError, match=message):
        CompressionEnv(make_fake_evaluator(), **kwargs)


def test_bad_actions(make_fake_evaluator: Callable) -> None:
    env = CompressionEnv(make_fake_evaluator(), mode="quantize")
    env.reset()
    with pytest.raises(AutopruneError, match="takes 2"):
        env.step(np.zeros(3, np.float32))
    with pytest.raises(AutopruneError, match="not finite"):
        env.step(np.array([np.nan, 0.0], np.float32))


def test_decode_action() -> None:
    bounds = {"min_keep": 0.2, "max_keep": 1.0, "min_bits": 2, "max_bits": 8}
    assert decode_action(np.array([-1.0]), "prune", **bounds) == LayerAction(keep_ratio=0.2)
    assert decode_action(np.array([3.0]), "prune", **bounds) == LayerAction(keep_ratio=1.0)
    assert decode_action(np.array([0.0]), "prune", **bounds).keep_ratio == pytest.approx(0.6)
    quantized = decode_action(np.array([-1.0, 1.0]), "quantize", **bounds)
    assert quantized == LayerAction(keep_ratio=1.0, w_bits=2, a_bits=8)
    # seven equal-width bins over [0, 1]: [0, 1/7) -> 2, ..., [6/7, 1] -> 8
    assert [bits_from_unit(k / 7 + 1e-9, 2, 8) for k in range(7)] == [2, 3, 4, 5, 6, 7, 8]
    assert [bits_from_unit(k / 7 - 1e-9, 2, 8) for k in range(1, 8)] == [2, 3, 4, 5, 6, 7, 8]


def test_max_sparsity_of_the_config_reaches_the_environment(make_fake_evaluator: Callable) -> None:
    config = SearchConfig(mode="sparse", max_sparsity=0.9)
    env = CompressionEnv(make_fake_evaluator(), ["size=0.5"], **config.env_settings())
    _, _ = env.reset()
    cheapest = -np.ones(env.action_space.shape, dtype=np.float32)
    done, info = False, {}
    while not done:
        _, _, done, _, info = env.step(cheapest)
    assert max(lp.sparsity for lp in info["policy"].layers.values()) == pytest.approx(0.9)


def test_requested_policy_is_what_an_unclipped_episode_builds(
    make_fake_evaluator: Callable,
) -> None:
    evaluator = make_fake_evaluator()
    env = CompressionEnv(evaluator, mode="joint")
    action = np.array([0.3, 0.0, -0.4, 0.9], np.float32)
    played = _rollout(env, [action] * len(env.layer_names))["info"]["policy"]
    assert env.requested_policy(action).layers == played.layers  # no budget: no clipping
    assert env.requested_policy([action] * len(env.layer_names)).layers == played.layers
    steps = len(env.layer_names)
    per_step = [np.full(4, -1.0, np.float32)] + [action] * (steps - 1)
    layers = env.requested_policy(per_step).layers
    first, second = env.layer_names[:2]
    assert layers[first].sparsity == 0.995 and layers[second] == played.layers[second]
    assert (layers["conv1"].w_bits, layers["fc"].w_bits) == (8, 8)  # pinned stay pinned
    with pytest.raises(AutopruneError, match=f"2 actions for {steps} steps"):
        env.requested_policy([action, action])


def test_requested_policy_ignores_the_budget_wall(make_fake_evaluator: Callable) -> None:
    env = CompressionEnv(make_fake_evaluator(), ["flops=0.5"], mode="prune")
    largest = np.ones(1, np.float32)
    asked = env.requested_policy(largest)
    assert all(lp.keep_ratio == 1.0 for lp in asked.layers.values())
    played = _rollout(env, [largest] * len(env.layer_names))["info"]["policy"]
    assert played.layers != asked.layers  # the wall clipped the episode
