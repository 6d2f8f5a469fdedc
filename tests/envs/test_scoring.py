"""PolicyScorer: the end of an episode (evaluation, reward, record), also outside one."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from autoprune.core.budget import Budget
from autoprune.core.errors import AutopruneError
from autoprune.core.policy import LayerPolicy, Policy
from envs.compression_env import CompressionEnv
from envs.scoring import PolicyScorer


def _kmeans_policy(specs: list, sparsity: float, bits: int) -> Policy:
    layer = LayerPolicy(w_bits=bits, sparsity=sparsity, quantizer="kmeans")
    return Policy.for_specs(specs, dict.fromkeys((s.name for s in specs), layer))


def test_an_episode_is_scored_by_the_environment_scorer(make_fake_evaluator: Callable) -> None:
    evaluator = make_fake_evaluator()
    env = CompressionEnv(evaluator, ["flops=0.5"], reward="mnas", mode="prune")
    env.reset()
    for _ in env.layer_names:
        _, reward, done, _, info = env.step(np.array([0.0], np.float32))
    assert done
    again = Policy.for_specs(evaluator.specs, info["policy"].layers)
    scored_reward, scored = env.scorer.score(again)
    assert scored_reward == reward
    assert scored["metrics"] == info["metrics"] and scored["feasible"] == info["feasible"]
    assert info["repaired"] is False and "repaired" not in scored
    assert info["policy"].meta["search"] == "CompressionEnv-v1"
    assert info["policy"].meta["mode"] == "prune" and info["policy"].meta["reward"] == "mnas"
    effective = again.with_effective(evaluator.plan).meta["effective"]
    assert again.meta == {
        "reward": "mnas",
        "evaluation": evaluator.record(),
        "effective": effective,
    }


def test_score_policy_records_the_environment_and_keeps_the_policy_meta(
    make_fake_evaluator: Callable,
) -> None:
    evaluator = make_fake_evaluator()
    env = CompressionEnv(evaluator, ["size=0.5"], mode="sparse")
    policy = _kmeans_policy(evaluator.specs, 0.8, 4)
    policy.meta = {"method": "outside"}
    reward, info = env.score_policy(policy)
    assert reward == info["metrics"]["accuracy"]  # the default reward
    assert info["policy"] is policy and evaluator.evaluated[-1] is policy
    assert policy.meta["method"] == "outside" and policy.meta["mode"] == "sparse"
    assert policy.budget == env.budget.to_dict() and policy.metrics == info["metrics"]


def test_a_retrained_accuracy_replaces_the_evaluators_and_pays_the_reward(
    make_fake_evaluator: Callable,
) -> None:
    evaluator = make_fake_evaluator()
    budget = Budget.parse(["size=0.5"])
    scorer = PolicyScorer(evaluator, budget, "accuracy")
    policy = _kmeans_policy(evaluator.specs, 0.9, 3)
    reward, info = scorer.score(policy, retrained_accuracy=0.25)
    metrics = info["metrics"]
    assert reward == 0.25 and metrics["accuracy"] == 0.25
    assert metrics["accuracy_without_retraining"] == 1.0  # the fake: mean keep ratio
    assert metrics["accuracy_drop"] == pytest.approx(0.75)
    size = metrics["size"]
    assert metrics["budget_use_size"] == pytest.approx(size / (0.5 * scorer.baseline["size"]))
    assert info["feasible"] == (size <= 0.5 * scorer.baseline["size"])
    assert set(info) == {"policy", "metrics", "feasible", "cached", "eval_seconds", "seconds"}


def test_a_callable_reward_gets_its_keyword_arguments(make_fake_evaluator: Callable) -> None:
    def scaled(metrics: dict, baseline: dict, limits: dict, *, scale: float) -> float:
        return scale * metrics["accuracy"]

    evaluator = make_fake_evaluator()
    scorer = PolicyScorer(evaluator, "flops=0.9", scaled, {"scale": 3.0})
    reward, _ = scorer.score(Policy.identity(evaluator.specs))
    assert scorer.reward_name == "scaled" and reward == pytest.approx(3.0)
    with pytest.raises(AutopruneError, match="neither a name nor a callable"):
        PolicyScorer(evaluator, None, 3)  # type: ignore[arg-type]
