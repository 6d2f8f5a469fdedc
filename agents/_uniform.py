"""``uniform``: the same setting in every layer, the largest one that meets the budget.

The method plays the same action in every layer. In ``prune`` and ``quantize`` it is one
number ``u`` in ``[-1, 1]`` for every dimension: the same keep ratio, or the same weight and
activation bits. In every dimension a larger ``u`` is a larger setting (more channels,
lower sparsity, more bits), so the predicted costs grow with ``u``; ``u`` is bisected on the
evaluator's cost predictions (no model is touched) to the largest value whose policy meets
the budget, and that episode is evaluated first. The rest of the budget is a sweep of
evenly spaced smaller values from ``u`` down to -1 (every one predicted feasible).

In ``sparse`` and ``joint`` (bits together with sparsity and channels) one ``u`` would tie
the bit-width to the sparsity, and a tight size budget would get 2-bit codes at a high
sparsity. There the method is Deep Compression's uniform baseline instead: for every
bit-width (``max_bits`` down to ``min_bits``, weights and activations alike) the same
sparsity (and keep ratio) in every layer, bisected to the largest that meets the budget;
these candidates are evaluated first, and the rest of the budget sweeps each bit-width's
value down toward -1 in turn.

The prediction is the environment's own request (:meth:`CompressionEnv.requested_policy`:
channel rounding, sparsity grid, pinned layers), scored as it is (as one-shot methods'
policies are) when it meets the budget, else played as the actions that choose it under the
budget wall (:meth:`CompressionEnv.actions_for`);
neighbours that round to the same channels, sparsities and bits are answered by the
evaluator's cache. The schedule depends only on the budget, so a resumed run continues it
where the history ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from agents._base import SearchMethod
from agents._context import SearchContext
from autoprune.core.bisection import largest_fitting
from autoprune.core.policy import Policy
from envs.actions import bits_action
from envs.compression_env import CompressionEnv

TOLERANCE = 1e-4
"""The bisection's bracket ends narrower than this (in action units)."""
BISECTION_STEPS = 15
"""Halvings of the action range [-1, 1] that reach :data:`TOLERANCE` (2 / 2**15 < 1e-4)."""


BITS = ("w_bits", "a_bits")


@dataclass(frozen=True)
class Uniform:
    """One uniform action: ``u`` in every dimension, except the bit dimensions at ``bits``'s
    action value when ``bits`` is set."""

    u: float
    bits: float | None = None

    def action(self, env: CompressionEnv) -> np.ndarray:
        """The action of every step."""
        values = [
            self.bits if self.bits is not None and dim in BITS else self.u for dim in env.space.dims
        ]
        return np.asarray(values, dtype=np.float32)

    def policy(self, env: CompressionEnv) -> Policy:
        """The policy the environment builds from this action at every step (no wall)."""
        return env.requested_policy(self.action(env))


def largest_feasible(ctx: SearchContext, env: CompressionEnv, bits: float | None = None) -> float:
    """The largest ``u`` whose predicted policy meets the budget (-1 when none does)."""
    baseline = ctx.evaluator.baseline_metrics

    def fits(u: float) -> bool:
        costs = ctx.evaluator.costs(Uniform(u, bits).policy(env), env.space.metrics)
        return ctx.session.budget.satisfied(costs, baseline)

    if not fits(-1.0):
        return -1.0
    return largest_fitting(fits, -1.0, 1.0, steps=BISECTION_STEPS)


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


def bit_levels(env: CompressionEnv) -> list[float]:
    """The action value at the middle of each bit-width's bin, largest bit-width first."""
    low, high = env.space.min_bits, env.space.max_bits
    return [bits_action(b, low, high) for b in range(high, low - 1, -1)]


def _separate(env: CompressionEnv) -> bool:
    """Whether the mode searches bits together with another dimension."""
    dims = env.space.dims
    return any(d in BITS for d in dims) and any(d not in BITS for d in dims)


def plan(ctx: SearchContext, env: CompressionEnv, budget: int) -> list[Uniform]:
    """The method's ``budget`` episodes (see the module docstring)."""
    if not _separate(env):
        return [Uniform(u) for u in schedule(largest_feasible(ctx, env), budget)]
    levels = bit_levels(env)
    best = {b: largest_feasible(ctx, env, b) for b in levels}
    sweeps = {b: schedule(best[b], -(-budget // len(levels)) + 1)[1:] for b in levels}
    episodes = [Uniform(best[b], b) for b in levels]
    for j in range(budget):
        episodes += [Uniform(sweeps[b][j], b) for b in levels if j < len(sweeps[b])]
    return episodes[:budget]


def best_choices(ctx: SearchContext, env: CompressionEnv) -> list[Uniform]:
    """The candidates the method evaluates first: the largest uniform setting that meets
    the budget (in ``sparse``/``joint``, one per bit-width)."""
    return plan(ctx, env, len(bit_levels(env)) if _separate(env) else 1)


def play(env: CompressionEnv, choice: Uniform) -> tuple[float, dict[str, Any]]:
    """One episode that chooses ``choice``'s policy (:meth:`CompressionEnv.actions_for`)."""
    return play_policy(env, choice.policy(env))


def play_policy(env: CompressionEnv, policy: Policy) -> tuple[float, dict[str, Any]]:
    """Score ``policy`` (a request of ``env``) as an episode would: as it is when it meets
    the budget, else the episode of its actions (:meth:`CompressionEnv.actions_for`: the
    top of each feasible interval where the budget does not allow a setting)."""
    if env.space.feasible(policy.layers):
        reward, info = env.score_policy(policy)
        return reward, {**info, "repaired": False}
    env.reset()
    for action in env.actions_for(policy):
        _, reward, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            return float(reward), info
    raise AssertionError("the episode did not end after one action per step")


class UniformMethod(SearchMethod):
    """``uniform``: one keep ratio, sparsity and/or bit-width for all layers (module doc)."""

    name = "uniform"

    def plant_seeds(self, ctx: SearchContext) -> None:
        """None: the method plays the heuristics' policies (its own) itself."""
        del ctx

    def run(self, ctx: SearchContext) -> None:
        """Bisect, then play the schedule from the first unrecorded position."""
        env = ctx.make_env()
        for choice in plan(ctx, env, ctx.budget)[ctx.recorded :]:
            reward, info = play(env, choice)
            ctx.record(info, reward)
            ctx.maybe_checkpoint()
