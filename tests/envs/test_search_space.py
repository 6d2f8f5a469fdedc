"""SearchSpace with sparsity: wall and repair under a non-monotone cost model, repair order,
and the smallest reachable value of an infeasible budget (which a search then reaches)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection
from dataclasses import replace

import numpy as np
import pytest

from autoprune.core.budget import METRICS, Budget
from autoprune.core.errors import AutopruneError
from autoprune.core.policy import LayerPolicy, Policy
from autoprune.workflow.evaluation import COST_METRICS, Evaluation
from envs import CompressionEnv, SearchSpace, decode_action
from envs.search_space import Layers

BITS = ["bits=0.03"] if "bits" in METRICS else []


class JitteredEvaluator:
    """A fake evaluator whose size (and bits count) is off by up to ±8%, deterministically per
    policy: not monotone in any setting, like a size that includes Huffman tables."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.specs, self.plan, self.config = inner.specs, inner.plan, inner.config
        self.baseline_metrics = dict(inner.baseline_metrics)

    def costs(self, policy: Policy, metrics: Collection[str] = COST_METRICS) -> dict[str, float]:
        costs = dict(self.inner.costs(policy, metrics))
        digest = hashlib.sha256(repr(sorted(policy.layers.items())).encode()).digest()
        factor = 1.0 + 0.16 * (digest[0] / 255 - 0.5)
        for metric in ("size", "bits"):
            if metric in costs:
                costs[metric] *= factor
        return costs

    def evaluate(self, policy: Policy) -> Evaluation:
        evaluation = self.inner.evaluate(policy)
        return replace(evaluation, metrics={**evaluation.metrics, **self.costs(policy)})

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def _random_layers(space: SearchSpace, rng: np.random.Generator) -> Layers:
    """An unclipped policy: every step at a random request."""
    dims = {"prune": 1, "quantize": 2, "sparse": 2, "joint": 4}[space.mode]
    layers = dict(space.fixed)
    for role in space.steps:
        action = decode_action(
            rng.uniform(-1, 1, dims),
            space.mode,
            min_keep=space.min_keep,
            max_keep=space.max_keep,
            min_bits=space.min_bits,
            max_bits=space.max_bits,
            max_sparsity=space.max_sparsity,
        )
        layers[role.name] = space.request(role, action)
    return layers


def _no_larger(after: LayerPolicy, before: LayerPolicy) -> bool:
    """Whether ``after`` spends no more than ``before`` in any dimension."""
    return (
        after.keep_ratio <= before.keep_ratio
        and after.sparsity >= before.sparsity
        and after.w_bits <= before.w_bits
        and after.a_bits <= before.a_bits
    )


@pytest.mark.parametrize(
    ("mode", "budget"),
    [
        ("sparse", ["size=0.02"]),
        ("sparse", ["size=0.05", "latency=0.2", *BITS]),
        ("joint", ["size=0.006", "flops=0.3"]),
        ("joint", ["size=0.02", "energy=0.1", *BITS]),
    ],
)
def test_non_monotone_costs_keep_every_episode_and_repair_feasible(
    make_fake_evaluator: Callable, mode: str, budget: list[str]
) -> None:
    evaluator = JitteredEvaluator(make_fake_evaluator())
    env = CompressionEnv(evaluator, budget, mode=mode)
    space, parsed = env.space, Budget.parse(budget)
    baseline = evaluator.baseline_metrics
    rng = np.random.default_rng(3)
    repaired = 0
    for _ in range(200):
        env.reset()
        for _ in env.layer_names:
            action = rng.uniform(-1.3, 1.3, env.action_space.shape).astype(np.float32)
            _, _, done, _, info = env.step(action)
        assert done and info["feasible"]
        assert parsed.satisfied(evaluator.costs(info["policy"]), baseline)
        wanted = _random_layers(space, rng)
        fixed, changed = space.repair(wanted)
        assert space.feasible(fixed)
        assert changed == (not space.feasible(wanted))
        assert all(_no_larger(fixed[n], wanted[n]) for n in wanted)
        Policy.for_specs(evaluator.specs, fixed)  # a valid policy
        repaired += changed
    assert repaired > 20  # the random requests did violate the budget


def test_repair_lowers_bits_then_raises_sparsity_before_touching_keep(
    make_fake_evaluator: Callable,
) -> None:
    evaluator = make_fake_evaluator()
    top = SearchSpace(evaluator, Budget(), "joint")
    everything = top.state({}, 0, "max")
    low_bits = {
        r.name: replace(everything[r.name], w_bits=2, a_bits=2) if r.bits else everything[r.name]
        for r in top.steps
    }
    dense = _size(top, low_bits)
    sparse = _size(top, {n: replace(lp, sparsity=0.98) for n, lp in low_bits.items()})
    space = SearchSpace(evaluator, Budget.parse([f"size={(dense + sparse) / 2}B"]), "joint")
    repaired, changed = space.repair(everything)
    assert changed and space.feasible(repaired)
    for role in space.steps:
        layer = repaired[role.name]
        assert layer.keep_ratio == 1.0  # sparsity sufficed
        if role.bits:
            assert (layer.w_bits, layer.a_bits) == (2, 2)  # bits went first
    sparsities = [repaired[r.name].sparsity for r in space.steps]
    assert sparsities[-1] > 0.0  # from the last layer back
    assert all(s == round(s, 3) for s in sparsities)  # on the grid


def _size(space: SearchSpace, layers: Layers) -> float:
    """The predicted size of ``layers`` (a space without a size budget does not price it)."""
    return space.evaluator.costs(space.policy(layers))["size"]


def test_sparse_repair_never_touches_activation_bits(make_fake_evaluator: Callable) -> None:
    evaluator = make_fake_evaluator()
    top = SearchSpace(evaluator, Budget(), "sparse")
    everything = top.state({}, 0, "max")
    limit = (_size(top, everything) + _size(top, top.minimum())) / 2
    space = SearchSpace(evaluator, Budget.parse([f"size={limit}B"]), "sparse")
    repaired, changed = space.repair(everything)
    assert changed and space.feasible(repaired)
    assert {lp.a_bits for lp in repaired.values()} == {32}
    assert all(lp.keep_ratio == 1.0 for lp in repaired.values())


def _smallest_in(message: str) -> str:
    match = re.search(r"can reach is ([0-9.,e+-]+) (bytes|MACs|ms|mJ|bits)", message)
    assert match, message
    value, unit = match.group(1).replace(",", ""), match.group(2)
    return value + {"bytes": "B", "MACs": "", "ms": "ms", "mJ": "mJ", "bits": ""}[unit]


@pytest.mark.parametrize(
    ("mode", "target", "knobs"),
    [
        ("sparse", "size=0.001", "max_sparsity=0.995, min_bits=2"),
        ("sparse", "latency=0.01", "max_sparsity=0.995, min_bits=2"),
        ("joint", "size=0.0005", "min_keep=0.2, max_sparsity=0.995, min_bits=2"),
        ("joint", "energy=0.0005", "min_keep=0.2, max_sparsity=0.995, min_bits=2"),
        ("prune", "flops=0.01", "min_keep=0.2"),
    ],
)
def test_the_reported_smallest_value_is_reached_by_a_search(
    make_fake_evaluator: Callable, mode: str, target: str, knobs: str
) -> None:
    evaluator = make_fake_evaluator()
    with pytest.raises(AutopruneError) as caught:
        CompressionEnv(evaluator, [target], mode=mode)
    message = str(caught.value)
    assert knobs in message and "raise the target" in message
    metric = target.split("=")[0].replace("flops", "macs")
    smallest = _smallest_in(message)
    env = CompressionEnv(evaluator, [f"{metric}={smallest}"], mode=mode)  # now feasible
    env.reset()
    for _ in env.layer_names:
        _, _, done, _, info = env.step(-np.ones(env.action_space.shape, np.float32))
    assert done and info["feasible"] and not info["repaired"]
    assert Budget.parse([f"{metric}={smallest}"]).satisfied(
        info["metrics"], evaluator.baseline_metrics
    )


def test_sparse_mode_refuses_a_flops_budget_with_the_reason(make_fake_evaluator: Callable) -> None:
    with pytest.raises(AutopruneError, match="mode 'sparse' does not lower macs") as caught:
        CompressionEnv(make_fake_evaluator(), ["flops=0.5"], mode="sparse")
    assert "choose a mode or method that does" in str(caught.value)


def test_the_fix_names_every_knob_of_the_mode(make_fake_evaluator: Callable) -> None:
    with pytest.raises(AutopruneError) as caught:
        CompressionEnv(make_fake_evaluator(), ["size=0.0005"], mode="joint", max_sparsity=0.9)
    message = str(caught.value)
    assert message.endswith(
        "raise the target, lower min_keep, raise max_sparsity or lower min_bits"
    )
    assert "max_sparsity=0.9," in message
