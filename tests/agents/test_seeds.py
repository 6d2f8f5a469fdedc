"""Seed policies (agents/_seeds.py) and the collapse of issue 26 on a real evaluator.

The searches here run on the shared trained demo CNN (``run_config``) in ``sparse`` mode
under a size budget; the collapse reproduction trains LeNet-300-100 on digits for a few
seconds (64-300-100-10: its first layer holds 84% of the weights, as in the issue).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from agents import run_search
from agents._context import search_env
from agents._seeds import in_space
from autoprune.core.budget import Budget
from autoprune.core.errors import AutopruneError
from autoprune.core.policy import LayerPolicy, Policy
from autoprune.core.results import repeats_message
from autoprune.core.training import TrainConfig, train
from autoprune.data import DataSplits
from autoprune.tracking._dashboard import summary_tags
from autoprune.workflow.baseline import build_for
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.session import SearchSession

SEEDS = ("uniform", "deep-compression", "admm")
SPARSE = {"mode": "sparse", "targets": ("size=0.1",), "seed_policies": SEEDS}


@pytest.mark.parametrize("agent", ["tpe", "ddpg", "ppo"])
def test_seeded_search_evaluates_the_seeds_first_and_keeps_the_best(
    run_config: Callable[..., SearchConfig], agent: str
) -> None:
    """Optuna enqueues the seeds, DDPG replays them as its first (warm-up) episodes, PPO's
    runner records them first; the search's best is at least every seed's reward."""
    result = run_search(run_config(agent, episodes=12, **SPARSE))
    tags = [r.policy.meta.get("seed_policy") for r in result.history]
    assert tags[:3] == list(SEEDS) and tags[3:] == [None] * 9
    uniform = result.history[0].policy.layers.values()
    assert len({(lp.sparsity, lp.w_bits) for lp in uniform}) == 1  # one setting everywhere
    assert result.best is not None
    assert result.best.reward >= max(r.reward for r in result.history[:3])


def test_no_seed_policies_means_no_seed_episodes(run_config: Callable[..., SearchConfig]) -> None:
    result = run_search(run_config("random", episodes=4, **{**SPARSE, "seed_policies": ()}))
    assert all("seed_policy" not in r.policy.meta for r in result.history)


def test_seed_policies_are_parsed_and_checked() -> None:
    config = SearchConfig.from_mapping({"mode": "sparse", "seed_policies": "uniform, admm"})
    assert config.seed_policies == ("uniform", "admm")
    assert SearchConfig.from_mapping({"seed_policies": "none"}).seed_policies == ()
    assert SearchConfig().seed_policies == ("uniform",)
    assert config.to_dict()["seed_policies"] == ["uniform", "admm"]
    with pytest.raises(AutopruneError, match="unknown seed policy 'amc'"):
        SearchConfig.from_mapping({"mode": "sparse", "seed_policies": ["amc"]})
    with pytest.raises(AutopruneError, match="seed policy 'admm' chooses sparsities"):
        SearchConfig.from_mapping({"mode": "prune", "seed_policies": ["admm"]})


@pytest.fixture(scope="module")
def lenet300_weights(tmp_path_factory: pytest.TempPathFactory, digits: DataSplits) -> Path:
    torch.manual_seed(0)
    model = build_for("lenet300", digits)
    train(model, digits, TrainConfig(epochs=5, lr=0.05, batch_size=64))
    path = tmp_path_factory.mktemp("lenet300") / "lenet300.pt"
    torch.save(model.state_dict(), path)
    return path


@pytest.mark.slow
def test_tight_size_budget_search_no_longer_collapses(
    base_config: SearchConfig, lenet300_weights: Path
) -> None:
    """Issue 26 at 1/33 of the file: with AMC's clip, random search evaluates one policy
    (fc1 at the top of its interval, the rest at their minimum) again and again; with the
    scale wall every episode is a different policy and the best is far above the clipped
    one."""
    found = {}
    for wall in ("clip", "scale"):
        config = base_config.replace(
            model="lenet300",
            weights=str(lenet300_weights),
            agent="random",
            episodes=20,
            mode="sparse",
            targets=("size=0.03",),
            seed_policies=(),
            wall=wall,
            val_samples=300,
        )
        result = run_search(config)
        assert result.best is not None
        common, repeats = Counter(
            tuple(r.policy.layers.values()) for r in result.history
        ).most_common(1)[0]
        clipped = next(r for r in result.history if tuple(r.policy.layers.values()) == common)
        found[wall] = (result, repeats, clipped.metrics["accuracy"])
    clip, repeats, clipped_accuracy = found["clip"]
    scale = found["scale"][0]
    assert clip.distinct_policies <= 5 and repeats >= 10  # measured: 3 distinct, 11 alike
    assert repeats_message(clip.history) is not None
    assert summary_tags(clip)["search.distinct_policies"] == str(clip.distinct_policies)
    assert scale.distinct_policies == 20 and repeats_message(scale.history) is None
    assert scale.best is not None and clip.best is not None
    # measured: clipped policy 13.9%, clip's best 38.2%, scale's best 88.9%
    assert scale.best.metrics["accuracy"] > max(
        clipped_accuracy + 0.3, clip.best.metrics["accuracy"]
    )


def test_a_seed_over_the_budget_keeps_its_allocation(
    run_config: Callable[..., SearchConfig], session: SearchSession
) -> None:
    """A heuristic's policy priced over the budget in the search's space has every density
    scaled by one factor (not the first layer at its top and the rest at their minimum)."""
    config = run_config("random", mode="sparse", targets=("size=0.05",))
    env = search_env(config, replace(session, budget=Budget.parse(list(config.targets))))
    densities = {"conv1": 0.8, "conv2": 0.4, "conv3": 0.2, "fc": 0.4}
    heuristic = Policy.for_specs(
        env.space.specs, {n: LayerPolicy(w_bits=5, sparsity=1 - d) for n, d in densities.items()}
    )
    assert not env.space.feasible(heuristic.layers)
    fitted = in_space(env, heuristic)
    assert env.space.feasible(fitted.layers)
    factors = [(1 - fitted.layers[n].sparsity) / d for n, d in densities.items()]
    assert max(factors) - min(factors) < 0.02 and max(factors) < 0.9
    assert all(fitted.layers[n].w_bits == 5 for n in densities)
