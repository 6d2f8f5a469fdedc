"""Scoring a finished policy: evaluation, reward and the record of an episode's end."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from autoprune.core.budget import Budget
from autoprune.core.errors import AutopruneError
from autoprune.core.policy import Policy
from envs.rewards import RewardFn, make_reward
from envs.search_space import EvaluatorLike

BudgetLike = Budget | str | Iterable[str] | Mapping[str, str | float] | None
"""A budget, or what :meth:`Budget.parse` reads (``"size=0.05"``, a list or a mapping)."""


class PolicyScorer:
    """Scores a finished policy as :class:`~envs.compression_env.CompressionEnv` ends an episode.

    It evaluates the policy with the evaluator (cached by policy), pays the reward and
    completes the policy's record (metrics, budget, how it was scored). The environment
    holds one (its ``scorer``); a method that builds its policy outside an
    episode (the one-shot ``admm`` and ``deep-compression``, whose spaces no mode of the
    environment covers) scores it with its own, so that its record is an episode's.

    Example:
        >>> scorer = PolicyScorer(evaluator, ["size=0.05"], "mnas")  # doctest: +SKIP
        >>> reward, info = scorer.score(policy)  # doctest: +SKIP
        >>> info["feasible"], info["metrics"]["budget_use_size"]  # doctest: +SKIP
        (True, 0.98)
    """

    def __init__(
        self,
        evaluator: EvaluatorLike,
        budget: BudgetLike = None,
        reward: str | RewardFn = "accuracy",
        reward_kwargs: Mapping[str, float] | None = None,
    ) -> None:
        self.evaluator = evaluator
        if isinstance(budget, str):
            budget = [budget]
        self.budget = budget if isinstance(budget, Budget) else Budget.parse(budget)
        self.reward_fn, self.reward_name = _resolve_reward(reward, reward_kwargs)
        self.baseline = dict(evaluator.baseline_metrics)
        self.limits = self.budget.limits(self.baseline)

    def score(
        self,
        policy: Policy,
        *,
        retrained_accuracy: float | None = None,
        shipped: Mapping[str, float] | None = None,
    ) -> tuple[float, dict[str, Any]]:
        """Evaluate ``policy``, pay the reward and set its ``metrics``, ``budget`` and ``meta``.

        Args:
            policy: A full policy; ``reward``, ``evaluation`` and ``effective`` (what each
                layer really keeps, see :mod:`autoprune.core.effective`) are added to its
                ``meta``.
            retrained_accuracy: The accuracy of a model that the method retrained to
                ``policy``; it is the ``accuracy`` (of the reward and the record), and the
                evaluator's (the policy applied to the original weights) is kept as
                ``accuracy_without_retraining``.
            shipped: Costs measured on that model's own coded file (``size``, ``bits``); they
                replace the predictions of the policy on the original weights.

        Returns:
            The reward and the terminal ``info``: ``policy``, ``metrics`` (accuracy, costs,
            ``accuracy_drop`` and ``budget_use_<metric>``), ``feasible``, ``cached``,
            ``eval_seconds`` and ``seconds``.
        """
        evaluation = self.evaluator.evaluate(policy)
        measured = dict(evaluation.metrics)
        if retrained_accuracy is not None:
            measured["accuracy_without_retraining"] = measured["accuracy"]
            measured["accuracy"] = retrained_accuracy
        measured.update(shipped or {})
        reward = float(self.reward_fn(measured, self.baseline, self.limits))
        usage = self.budget.usage(measured, self.baseline)
        metrics = {
            **measured,
            "accuracy_drop": self.baseline["accuracy"] - measured["accuracy"],
            **{f"budget_use_{metric}": use for metric, use in usage.items()},
        }
        policy.metrics = dict(metrics)
        policy.budget = self.budget.to_dict()
        record = {"reward": self.reward_name, "evaluation": self.evaluator.record()}
        round_to = self.evaluator.config.compression.round_to
        truth = policy.with_effective(self.evaluator.plan, round_to).meta  # coupled layers
        policy.meta = {**truth, **record}
        return reward, {
            "policy": policy,
            "metrics": metrics,
            "feasible": self.budget.satisfied(measured, self.baseline),
            "cached": evaluation.cached,
            "eval_seconds": evaluation.eval_seconds,
            "seconds": evaluation.seconds,
        }


def _resolve_reward(
    reward: str | RewardFn, kwargs: Mapping[str, float] | None
) -> tuple[RewardFn, str]:
    if isinstance(reward, str):
        return make_reward(reward, **dict(kwargs or {})), reward
    if not callable(reward):
        raise AutopruneError(
            f"reward {reward!r} is neither a name nor a callable; pass e.g. reward='accuracy'"
        )
    name = getattr(reward, "__name__", type(reward).__name__)
    return (partial(reward, **kwargs) if kwargs else reward), name
