"""Seed policies: what the shipped heuristics already know, played first by a search.

``config.seed_policies`` names heuristics whose policies a search evaluates before its own
(issue 26), so that its best is never below theirs:

* ``uniform``: the ``uniform`` method's first candidates (the largest uniform setting that
  meets the budget; in ``sparse``/``joint`` one per bit-width), found on the cost model;
* ``deep-compression``: Deep Compression's allocation (per-layer sparsities from its
  sensitivity scan at its tolerance, 5-bit linear / 8-bit conv codes, densities scaled by
  one factor to the budget), without its retraining;
* ``admm``: Yang et al.'s joint projection (greedy sparsity knapsack, bit-width choice) of
  the baseline weights onto the size budget, without ADMM's training.

Each policy enters the search through the environment (:meth:`CompressionEnv.actions_for`):
a seed is the policy an episode playing those actions chooses (the mode's dimensions, grids
and the budget wall; where the cost model is not monotone, e.g. the coded size one byte
either side of the target, it can differ a little from the heuristic's), so a seed is an
ordinary episode. The heuristics' first candidates come first (round robin: uniform's
8-bit one, Deep Compression's, ADMM's, then uniform's other bit-widths).

Optuna methods enqueue the seeds' actions as their first trials, the off-policy RL methods
replay them as their first warm-up episodes (so they enter the replay buffer), and other
methods record them before they start. Seeds are
played only by a fresh search, never on resume; a method that is itself a heuristic
(``uniform``, ``admm``, ``deep-compression``) ignores them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from agents._admm_method import projected_policy, size_limits, yang_budget_for_file
from agents._context import SearchContext
from agents._deep_compression_method import fit_to_budget, kmeans_policy
from agents._uniform import best_choices
from autoprune.compress.sparsity import tensor_attr
from autoprune.core.bisection import largest_fitting
from autoprune.core.policy import LayerPolicy, Policy
from autoprune.deep_compression import DeepCompressionConfig, sensitivity_scan
from envs.compression_env import CompressionEnv

SEED_SHARE = 4
"""Seeds take at most ``episodes // SEED_SHARE`` evaluations (at least one)."""


@dataclass(frozen=True)
class Seed:
    """One seed policy and the actions that choose it in an episode.

    Attributes:
        name: The heuristic (``uniform``, ``deep-compression``, ``admm``).
        policy: The policy as an episode chooses it (feasible).
        actions: One action per step of the environment.
    """

    name: str
    policy: Policy
    actions: list[np.ndarray]


def uniform_policies(ctx: SearchContext, env: CompressionEnv) -> list[Policy]:
    """The ``uniform`` method's first candidates."""
    return [choice.policy(env) for choice in best_choices(ctx, env)]


def deep_compression_policies(ctx: SearchContext, env: CompressionEnv) -> list[Policy]:
    """Deep Compression's allocation under the budget, without retraining."""
    evaluator, options = ctx.evaluator, DeepCompressionConfig()
    low, high = env.space.min_bits, env.space.max_bits
    bits = {
        s.name: min(high, max(low, options.fc_bits if s.kind == "linear" else options.conv_bits))
        for s in evaluator.specs
    }
    scan = sensitivity_scan(ctx.session.model, evaluator.x_val, evaluator.y_val, list(bits))
    targets = scan.targets(options.tolerance)
    limits = ctx.session.budget.limits(evaluator.baseline_metrics)
    if limits:
        targets = fit_to_budget(evaluator, targets, bits, limits)
    return [kmeans_policy(evaluator, targets, bits)]


def admm_policies(ctx: SearchContext, env: CompressionEnv) -> list[Policy]:
    """Yang et al.'s projection of the baseline weights onto the size budget."""
    evaluator = ctx.evaluator
    limits = size_limits(ctx.session.budget, evaluator.baseline_metrics, "admm (seed policy)")
    budget_bytes = [limits["bits"] / 8] if "bits" in limits else []
    if "size" in limits:
        budget_bytes.append(yang_budget_for_file(evaluator, limits["size"]))
    weights = {
        s.name: tensor_attr(evaluator.model.get_submodule(s.name), "weight").detach()
        for s in evaluator.specs
    }
    return [projected_policy(evaluator, weights, 8.0 * min(budget_bytes))]


BUILDERS: dict[str, Callable[[SearchContext, CompressionEnv], list[Policy]]] = {
    "uniform": uniform_policies,
    "deep-compression": deep_compression_policies,
    "admm": admm_policies,
}
"""The policies of each seed heuristic."""


def seeds_for(ctx: SearchContext, env: CompressionEnv | None = None) -> list[Seed]:
    """The seeds of ``ctx.config.seed_policies`` as ``env`` plays them: distinct policies,
    the heuristics' first candidates first (round robin), at most
    ``max(1, episodes // SEED_SHARE)``."""
    env = env or ctx.make_env()
    with torch.no_grad():
        found = [[(n, p) for p in BUILDERS[n](ctx, env)] for n in ctx.config.seed_policies]
    ordered = [pair for rank in itertools.zip_longest(*found) for pair in rank if pair]
    limit = max(1, ctx.budget // SEED_SHARE)
    seeds: list[Seed] = []
    seen: set[tuple[LayerPolicy, ...]] = set()
    for name, policy in ordered:
        actions = env.actions_for(in_space(env, policy))
        played = played_policy(env, actions)
        key = tuple(played.layers.values())
        if key not in seen and len(seeds) < limit:
            seen.add(key)
            seeds.append(Seed(name, played, actions))
    return seeds


def in_space(env: CompressionEnv, policy: Policy) -> Policy:
    """``policy`` as ``env`` can request it (ranges, grids, its quantizer), every layer's
    density scaled by one common factor until it meets the budget (the heuristic's
    allocation kept, as Deep Compression fits its densities) when it does not as it is.

    A heuristic priced otherwise (ADMM's 1-bit k-means codes) would otherwise be replayed
    greedily: its first layer at the top of its interval, the later ones at their minimum.
    """
    names = env.layer_names
    requested = env.requested_policy([env.encode(policy.layers[n]) for n in names])
    if env.space.feasible(requested.layers):
        return requested

    def scaled(factor: float) -> Policy:
        layers = {
            n: replace(lp, sparsity=1.0 - factor * (1.0 - lp.sparsity))
            for n, lp in requested.layers.items()
        }
        return env.requested_policy([env.encode(layers[n]) for n in names])

    factor = largest_fitting(lambda f: env.space.feasible(scaled(f).layers), 0.0, 1.0, steps=20)
    return scaled(factor)


def played_policy(env: CompressionEnv, actions: list[np.ndarray]) -> Policy:
    """The policy an episode playing ``actions`` chooses (no evaluation: the steps before
    the last are replayed on a copy of the walk)."""
    decided: dict[str, LayerPolicy] = {}
    for step, (role, action) in enumerate(zip(env.space.steps, actions, strict=True)):
        decided[role.name] = env.setting_for(step, decided, action)
    layers, _ = env.space.repair({**env.space.fixed, **decided})
    return Policy.for_specs(env.space.specs, layers)


def play_seed(env: CompressionEnv, seed: Seed) -> tuple[float, dict[str, Any]]:
    """One episode of ``seed``'s actions: its reward and terminal ``info``."""
    env.reset()
    for action in seed.actions:
        _, reward, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            return float(reward), info
    raise AssertionError("a seed has one action per step")


def record_seeds(ctx: SearchContext, seeds: list[Seed]) -> None:
    """Evaluate ``seeds`` and record them first (``meta["seed_policy"]``: the heuristic)."""
    env = ctx.make_env()
    for seed in seeds:
        if ctx.exhausted:
            return
        reward, info = play_seed(env, seed)
        ctx.record(info, reward, meta={"seed_policy": seed.name})
