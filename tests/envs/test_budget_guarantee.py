"""Every finished policy meets the budget: the wall during the episode (scale by default, AMC's
clip on request), HAQ's repair after."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from autoprune.compress import kept_count
from autoprune.core.budget import METRICS, Budget
from autoprune.core.errors import AutopruneError
from autoprune.core.policy import LayerPolicy, Policy
from autoprune.models import build_model
from envs import CompressionEnv, SearchSpace

PRUNE_BUDGETS = (
    ["flops=0.3"],
    ["params=0.2"],
    ["latency=0.35"],
    ["energy=0.3", "size=0.4"],
)
JOINT_BUDGETS = (
    ["size=0.05"],
    ["latency=0.03"],
    ["energy=0.08", "flops=0.5"],
    ["params=0.3", "size=0.04", "latency=0.1"],
    ["size=0.005", "flops=0.3"],
)
SPARSE_BUDGETS = (
    ["size=0.02"],
    ["size=0.05", "latency=0.3"],
    ["energy=0.95", "size=0.1"],
    ["latency=0.1"],
)
if "bits" in METRICS:  # Yang et al.'s count (sum of bits x nonzeros), when the budget has it
    JOINT_BUDGETS = (*JOINT_BUDGETS, ["bits=0.01", "flops=0.4"])
    SPARSE_BUDGETS = (*SPARSE_BUDGETS, ["bits=0.02"], ["bits=0.05", "size=0.05"])
EPISODES = {"prune": 125, "sparse": 250, "joint": 250}
"""Random action sequences per budget (absolute and relative form): thousands per mode."""


def _actions(rng: np.random.Generator, shape: tuple[int, ...], steps: int) -> list[np.ndarray]:
    """Uniform, all-maximum or all-extreme action sequences (the wall binds on the last two)."""
    style = rng.integers(3)
    if style == 0:
        return [rng.uniform(-1, 1, shape).astype(np.float32) for _ in range(steps)]
    if style == 1:
        return [np.ones(shape, np.float32) for _ in range(steps)]
    return [rng.choice([-1.0, 1.0], shape).astype(np.float32) for _ in range(steps)]


def _run(env: CompressionEnv, actions: list[np.ndarray]) -> dict:
    env.reset(seed=0)
    for action in actions:
        _, _, terminated, truncated, info = env.step(action)
    assert terminated and not truncated
    return info


def _absolute(budget: list[str], baseline: dict[str, float]) -> list[str]:
    """The same budget written in absolute units."""
    units = {"macs": "", "params": "", "size": "B", "latency": "ms", "energy": "mJ", "bits": ""}
    out = []
    for constraint in Budget.parse(budget).constraints:
        limit = constraint.limit(baseline)
        out.append(f"{constraint.metric}={limit:.6g}{units[constraint.metric]}")
    return out


@pytest.mark.parametrize(
    ("mode", "budgets"),
    [("prune", PRUNE_BUDGETS), ("sparse", SPARSE_BUDGETS), ("joint", JOINT_BUDGETS)],
)
def test_random_episodes_always_meet_the_budget(
    make_fake_evaluator: Callable, mode: str, budgets: tuple[list[str], ...]
) -> None:
    evaluator = make_fake_evaluator()
    baseline = evaluator.baseline_metrics
    rng = np.random.default_rng(0)
    clipped = 0
    for budget in [*budgets, *(_absolute(b, baseline) for b in budgets)]:
        env = CompressionEnv(evaluator, budget, mode=mode)
        parsed = Budget.parse(budget)
        for _ in range(EPISODES[mode]):
            info = _run(env, _actions(rng, env.action_space.shape, len(env.layer_names)))
            policy = info["policy"]
            assert parsed.satisfied(evaluator.costs(policy), baseline), (budget, policy.layers)
            assert info["feasible"]
            assert not info["repaired"]  # the wall alone suffices for a monotone cost model
            assert all(use <= 1 + 1e-9 for use in parsed.usage(info["metrics"], baseline).values())
            clipped += info["clipped"]
    assert clipped > 0  # the wall was exercised


@pytest.mark.parametrize("mode", ["prune", "sparse", "joint"])
def test_clip_wall_episodes_meet_the_budget(make_fake_evaluator: Callable, mode: str) -> None:
    """AMC's original wall (``wall="clip"``) keeps the same guarantee as the default scale."""
    evaluator = make_fake_evaluator()
    budgets = {"prune": PRUNE_BUDGETS, "sparse": SPARSE_BUDGETS, "joint": JOINT_BUDGETS}[mode]
    rng = np.random.default_rng(3)
    for budget in budgets:
        env = CompressionEnv(evaluator, budget, mode=mode, wall="clip")
        for _ in range(20):
            info = _run(env, _actions(rng, env.action_space.shape, len(env.layer_names)))
            assert Budget.parse(budget).satisfied(
                evaluator.costs(info["policy"]), env.space.baseline
            )
            assert info["feasible"] and not info["repaired"]


@pytest.mark.parametrize("mode", ["prune", "joint"])
def test_coupled_groups_meet_the_budget(make_fake_evaluator: Callable, mode: str) -> None:
    model = build_model("mobilenetv2_small", in_channels=1, num_classes=10, input_size=(8, 8))
    evaluator = make_fake_evaluator(model.eval(), round_to=4)
    budget = ["flops=0.35"] if mode == "prune" else ["latency=0.05", "size=0.1"]
    env = CompressionEnv(evaluator, budget, mode=mode)
    if mode == "prune":
        assert env.layer_names == list(evaluator.plan.prunable)
    rng = np.random.default_rng(1)
    for _ in range(30):
        info = _run(env, _actions(rng, env.action_space.shape, len(env.layer_names)))
        costs = evaluator.costs(info["policy"])
        assert Budget.parse(budget).satisfied(costs, evaluator.baseline_metrics)


def test_keep_ratios_are_whole_channel_units(make_fake_evaluator: Callable) -> None:
    evaluator = make_fake_evaluator(round_to=8)
    env = CompressionEnv(evaluator, ["flops=0.5"], mode="prune", min_keep=0.1)
    sizes = {g.controller: g.size for g in evaluator.plan.group_info if g.frozen is None}
    rng = np.random.default_rng(2)
    for _ in range(20):
        info = _run(env, _actions(rng, (1,), len(env.layer_names)))
        for name, size in sizes.items():
            kept = info["policy"].layers[name].keep_ratio * size
            assert kept == pytest.approx(round(kept))
            assert round(kept) % 8 == 0 or round(kept) == size


def test_repair_lowers_bits_from_the_last_layer(make_fake_evaluator: Callable) -> None:
    evaluator = make_fake_evaluator()
    top = SearchSpace(evaluator, Budget(), "joint")
    everything = top.state({}, 0, "max")
    last = [r.name for r in top.steps if r.bits][-1]
    lowered = top.policy({**everything, last: LayerPolicy(w_bits=7, a_bits=7)})
    limit = evaluator.costs(lowered)["size"]
    space = SearchSpace(evaluator, Budget.parse([f"size={limit}B"]), "joint")
    assert not space.feasible(everything)
    repaired, changed = space.repair(everything)
    assert changed and space.feasible(repaired)
    assert repaired[last] == LayerPolicy(w_bits=7, a_bits=7)
    assert all(repaired[r.name] == everything[r.name] for r in space.steps if r.name != last)


def test_repair_lowers_keep_ratios_when_bits_cannot_help(make_fake_evaluator: Callable) -> None:
    evaluator = make_fake_evaluator()
    space = SearchSpace(evaluator, Budget.parse(["flops=0.5"]), "prune")
    everything = space.state({}, 0, "max")
    repaired, changed = space.repair(everything)
    assert changed and space.feasible(repaired)
    assert repaired[space.steps[-1].name].keep_ratio < 1.0
    Policy.for_specs(evaluator.specs, repaired)  # still a valid policy


def test_feasible_policy_is_not_repaired(make_fake_evaluator: Callable) -> None:
    evaluator = make_fake_evaluator()
    space = SearchSpace(evaluator, Budget.parse(["flops=0.5"]), "prune")
    minimum = space.minimum()
    assert space.repair(minimum) == (minimum, False)


def test_infeasible_budget_names_the_minimum(make_fake_evaluator: Callable) -> None:
    evaluator = make_fake_evaluator()
    space = SearchSpace(evaluator, Budget(), "prune")
    smallest = evaluator.costs(space.policy(space.minimum()))["macs"]
    assert smallest == sum(
        s.macs for s in evaluator.pruned_specs(Policy.uniform(evaluator.specs, keep_ratio=0.2))
    )
    with pytest.raises(
        AutopruneError, match=f"smallest this search .*can reach is {smallest:,.0f}"
    ):
        CompressionEnv(evaluator, ["flops=0.01"], mode="prune")


def test_infeasible_absolute_latency(make_fake_evaluator: Callable) -> None:
    evaluator = make_fake_evaluator()
    space = SearchSpace(evaluator, Budget(), "quantize")
    smallest = evaluator.costs(space.policy(space.minimum()))["latency"]
    with pytest.raises(AutopruneError) as caught:
        CompressionEnv(evaluator, [f"latency={smallest / 2}ms"], mode="quantize")
    message = str(caught.value)
    shown = float(message.split("reach is ")[1].split(" ms")[0])
    assert smallest <= shown <= smallest * 1.001  # rounded up to the 4 digits shown
    assert "min_bits=2" in message and "lower min_bits" in message


def test_minimum_counts_kept_channels(make_fake_evaluator: Callable) -> None:
    evaluator = make_fake_evaluator()
    space = SearchSpace(evaluator, Budget(), "prune", min_keep=0.2)
    for role in space.steps:
        ratio = space.minimum()[role.name].keep_ratio
        assert ratio * role.size == kept_count(0.2, role.size)
