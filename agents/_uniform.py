"""``uniform``: the same setting in every layer, the largest one that meets the budget.

The method plays one number ``u`` in ``[-1, 1]`` for every action dimension of every layer:
the same keep ratio (prune), the same weight and activation bits (quantize), the same
sparsity and weight bits moving together (sparse: Deep Compression's uniform baseline), or
all four together (joint). In every dimension a larger ``u`` is a larger setting (more
channels, lower sparsity, more bits), so the predicted costs grow with ``u``; ``u`` is
bisected on the evaluator's cost predictions (no model is touched) to the largest value
whose policy meets the budget, and that episode is evaluated first. The prediction is the
environment's own request (channel rounding, sparsity grid, pinned layers), so the wall
lets it through unchanged. The rest of the budget is a sweep of evenly spaced smaller
values from ``u`` down to -1 (every one predicted feasible); neighbours that round to the
same channels, sparsities and bits are answered by the evaluator's cache. The schedule
depends only on the budget, so a resumed run continues it where the history ends.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents._base import SearchMethod
from agents._context import SearchContext
from autoprune.policy import Policy
from envs.compression_env import CompressionEnv

TOLERANCE = 1e-4
"""Bisection stops when the bracket is this narrow (in action units)."""


def predicted_policy(ctx: SearchContext, env: CompressionEnv, u: float) -> Policy:
    """The policy the environment would build from action ``u`` at every step (no wall)."""
    action = env.decode(np.full(env.action_space.shape, u, dtype=np.float32))
    return Policy.for_specs(ctx.evaluator.specs, env.space.requested(action))


def largest_feasible(ctx: SearchContext, env: CompressionEnv) -> float:
    """The largest ``u`` whose predicted policy meets the budget (-1 when none does)."""
    baseline = ctx.evaluator.baseline_metrics

    def fits(u: float) -> bool:
        costs = ctx.evaluator.costs(predicted_policy(ctx, env, u), env.space.metrics)
        return ctx.session.budget.satisfied(costs, baseline)

    if fits(1.0):
        return 1.0
    low, high = -1.0, 1.0
    if not fits(low):
        return low
    while high - low > TOLERANCE:
        mid = (low + high) / 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return low


def schedule(best: float, budget: int) -> list[float]:
    """``budget`` values: ``best`` first, then evenly spaced down to -1.

    Example:
        >>> schedule(0.5, 4)
        [0.5, 0.0, -0.5, -1.0]
    """
    if budget == 1:
        return [best]
    step = (best + 1.0) / (budget - 1)
    return [best - j * step for j in range(budget)]


def play(env: CompressionEnv, u: float) -> tuple[float, dict[str, Any]]:
    """One episode with action ``u`` in every dimension of every step."""
    env.reset()
    action = np.full(env.action_space.shape, u, dtype=np.float32)
    while True:
        _, reward, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            return float(reward), info


class UniformMethod(SearchMethod):
    """``uniform``: one keep ratio, sparsity and/or bit-width for all layers (module doc)."""

    name = "uniform"

    def run(self, ctx: SearchContext) -> None:
        """Bisect, then play the schedule from the first unrecorded position."""
        env = ctx.make_env()
        values = schedule(largest_feasible(ctx, env), ctx.budget)
        for u in values[ctx.recorded :]:
            reward, info = play(env, u)
            ctx.record(info, reward)
            ctx.maybe_checkpoint()
