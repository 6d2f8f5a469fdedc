"""``admm``: Yang et al.'s joint sparsity + k-means quantization under the size target.

Not an RL method: it trains the model once with ADMM (:func:`autoprune.admm.admm_compress`)
and produces ONE policy (per-layer sparsity and k-means bit-width), recorded once: the
method's evaluation budget is that single evaluation (``--episodes 1``). Its ``accuracy`` is
the ADMM-trained model's on the evaluator's validation images; the shared evaluator's score
of the policy on the original weights (comparable with searches that do not retrain) is
``accuracy_without_retraining``; costs come from the shared cost model.

The search needs a ``size`` or ``bits`` target. ``bits`` is Yang et al.'s own count
(Σ bits × nonzeros) and is ADMM's budget as it is. The evaluator's ``size`` counts what a
file stores (relative indices, codebooks, float biases, filler entries); for it ADMM's budget
also counts a relative index per kept weight (5 bits fc, 8 bits conv) and float32 codebooks,
and its value is found by bisection on the cost model's size predictions (projections of
the original weights, no training) so that the policy meets the target; ``yang_budget=True``
passes a ``size`` target as Yang's bare count instead. Before anything is written,
:meth:`AdmmMethod.check_budget` refuses a budget that the projection at ADMM's smallest
budget (:data:`FLOOR_BITS_PER_WEIGHT`) misses.

Its options (:class:`AdmmOptions`) are :class:`~autoprune.admm.AdmmConfig` itself, less
the settings the search makes (:data:`ADMM_SET_BY_SEARCH`), plus ``yang_budget``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch

from agents._base import SearchMethod
from agents._context import SearchContext
from autoprune.admm import AdmmConfig, Overhead, admm_compress, project_joint
from autoprune.compress.sparsity import tensor_attr
from autoprune.core.bisection import largest_fitting
from autoprune.core.budget import Budget
from autoprune.core.errors import AutopruneError
from autoprune.core.policy import LayerPolicy, Policy
from autoprune.deep_compression import CodedModel
from autoprune.workflow.coded_file import write_coded_within
from autoprune.workflow.evaluation import PolicyEvaluator
from envs import check_reachable
from envs.scoring import PolicyScorer

CALIBRATION_STEPS = 12
"""Bisection steps of the Yang budget (relative precision about 2**-12)."""
FLOOR_BITS_PER_WEIGHT = 1e-3
"""ADMM's smallest budget, in Yang bits per weight of the model (the end of its space)."""


@dataclass(frozen=True)
class AdmmOptions(AdmmConfig):
    """Options of ``admm`` (``agent_options``): the settings of
    :class:`~autoprune.admm.AdmmConfig` except :data:`ADMM_SET_BY_SEARCH`, and how a ``size``
    target becomes ADMM's budget.

    Example:
        >>> AdmmOptions(epochs=2).finetune_epochs, AdmmOptions().yang_budget
        (3, False)
    """

    yang_budget: bool = False
    """Use a ``size`` target as Σ bits × nonzeros directly instead of fitting it to the file."""


ADMM_SET_BY_SEARCH = {
    "seed": "the search's seed is used; pass --seed",
    "index_bits": "the size target sets it; yang_budget: true counts bits × nonzeros alone",
    "codebook_bits": "the size target sets it; yang_budget: true counts bits × nonzeros alone",
    "layers": "the method compresses every layer of the model",
}
"""Settings of :class:`~autoprune.admm.AdmmConfig` that ``admm`` sets itself, and why."""


def refuse_search_settings(
    options: Mapping[str, Any] | None, set_by_search: Mapping[str, str], method: str
) -> None:
    """Refuse agent options that the method sets from the search itself.

    Raises:
        AutopruneError: Naming each such option and where its value comes from.
    """
    given = sorted(set(options or {}) & set(set_by_search))
    if given:
        reasons = "; ".join(f"{name}: {set_by_search[name]}" for name in given)
        raise AutopruneError(
            f"agent option(s) {given} of method '{method}' are set by the search; remove them "
            f"({reasons})"
        )


def check_single_evaluation(ctx: SearchContext, method: str) -> None:
    """Refuse a budget of more than one evaluation (these methods make one policy)."""
    if ctx.remaining != 1:
        raise AutopruneError(
            f"method '{method}' makes exactly one policy and one evaluation, but the search "
            f"has {ctx.remaining} left; pass --episodes 1"
        )


TRAINED_MODEL = "trained_model.apz"
"""The one-shot method's own retrained model, coded, in the run folder."""


def record_policy(
    ctx: SearchContext, policy: Policy, meta: dict[str, Any], trained: CodedModel
) -> None:
    """Record the method's policy like an episode, and code its retrained model into the run
    folder (:data:`TRAINED_MODEL`; its bytes are ``meta["trained_apz_bytes"]``).

    The file is held to the budget's ``size``/``bits`` limits as the search's best model is
    (:func:`autoprune.workflow.coded_file.write_coded_within`; pruned weights in
    ``meta["trimmed"]``).
    The policy is scored as the environment scores an episode's
    (:class:`envs.scoring.PolicyScorer`, with the search's reward): ``accuracy`` is the
    method's own retrained model, as written, on the evaluator's validation images (these
    methods train, so that is their result); ``accuracy_without_retraining`` is the shared
    evaluator's score of the policy applied to the original weights, comparable with the RL
    and Optuna searches; ``size`` and ``bits`` are the written file's (what ``apply RUN``
    ships), the other costs come from the shared evaluator.
    """
    evaluator, budget = ctx.evaluator, ctx.session.budget
    limits = budget.limits(evaluator.baseline_metrics)
    path = ctx.run_dir / TRAINED_MODEL
    # The file records how it is scored (dataset, images, model source), as apply's files do,
    # so that apply ships it with the same header and load_compressed rebuilds it alone.
    policy.meta = {**policy.meta, "evaluation": evaluator.record()}
    report, trimmed = write_coded_within(trained, path, {"policy": policy.to_dict()}, limits)
    policy.meta = {**policy.meta, **meta, "trained_apz_bytes": report.file_bytes}
    if trimmed:
        policy.meta["trimmed"] = trimmed
    accuracy = evaluator.accuracy(trained.model, copy_model=True)
    scorer = PolicyScorer(evaluator, budget, ctx.config.reward, ctx.config.reward_kwargs)
    shipped = {"size": float(report.file_bytes), "bits": float(trained.yang_bits)}
    reward, info = scorer.score(policy, retrained_accuracy=accuracy, shipped=shipped)
    ctx.record(info, reward)


def size_limits(budget: Budget, baseline: dict[str, float], method: str) -> dict[str, float]:
    """The budget's ``size`` (bytes) and ``bits`` limits; an error when it has neither."""
    limits = budget.limits(baseline)
    found: dict[str, float] = {m: float(limits[m]) for m in ("size", "bits") if m in limits}
    if not found:
        raise AutopruneError(
            f"method '{method}' needs a model-size target; pass e.g. --target size=0.025 "
            "(a fraction of the float model), --target size=20KB or --target bits=26.7KB"
        )
    return found


def storage_overhead(evaluator: PolicyEvaluator) -> Overhead:
    """Relative-index bits by layer kind (Deep Compression: 5 fc, 8 conv), float32 codebooks."""
    index = {s.name: 5 if s.kind == "linear" else 8 for s in evaluator.specs}
    return Overhead(index, codebook_bits=32)


def _weights(evaluator: PolicyEvaluator) -> dict[str, torch.Tensor]:
    model = evaluator.model
    return {
        s.name: tensor_attr(model.get_submodule(s.name), "weight").detach() for s in evaluator.specs
    }


def projected_policy(
    evaluator: PolicyEvaluator, weights: dict[str, torch.Tensor], budget_bits: float
) -> Policy:
    """The policy that projecting ``weights`` onto a Yang budget of ``budget_bits`` gives.

    A layer the projection empties is priced with one weight (a policy cannot prune all).
    """
    overhead = storage_overhead(evaluator)
    with torch.no_grad():
        projection = project_joint(weights, budget_bits, max_iter=10, overhead=overhead)
    layers = {
        name: LayerPolicy(
            w_bits=projection.bits[name],
            sparsity=(mask.numel() - max(1, int(mask.sum()))) / mask.numel(),
            quantizer="kmeans",
        )
        for name, mask in projection.masks.items()
    }
    return Policy.for_specs(evaluator.specs, layers)


def _predicted_size(evaluator: PolicyEvaluator, weights: dict, budget_bits: float) -> float:
    policy = projected_policy(evaluator, weights, budget_bits)
    return evaluator.costs(policy, ["size"])["size"]


def yang_budget_for_file(evaluator: PolicyEvaluator, limit_bytes: float) -> float:
    """The largest Yang budget (bytes) whose projected policy the cost model fits in the limit.

    Raises:
        AutopruneError: When even a budget of one bit per 1000 weights does not fit.
    """
    weights = _weights(evaluator)
    dense_bits = 32.0 * sum(w.numel() for w in weights.values())
    high = min(8.0 * limit_bytes, dense_bits)
    low = floor_bits(evaluator)

    def fits(budget_bits: float) -> bool:
        return _predicted_size(evaluator, weights, budget_bits) <= limit_bytes

    if not fits(high) and not fits(low):
        raise AutopruneError(
            f"size target of {limit_bytes:.0f} bytes is below what biases, codebooks and "
            "indices alone take; raise the size target"
        )
    return largest_fitting(fits, low, high, steps=CALIBRATION_STEPS) / 8


def floor_bits(evaluator: PolicyEvaluator) -> float:
    """ADMM's smallest Yang budget in bits (:data:`FLOOR_BITS_PER_WEIGHT` per weight)."""
    return FLOOR_BITS_PER_WEIGHT * sum(s.weight_count for s in evaluator.specs)


class AdmmMethod(SearchMethod):
    """``admm``: one ADMM run under the size target, one recorded evaluation."""

    name = "admm"
    fixed_evaluations = 1
    Options = AdmmOptions
    objectives = ("accuracy", "size")

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        refuse_search_settings(options, ADMM_SET_BY_SEARCH, self.name)
        super().__init__(options)
        self.options.check()

    def check_budget(self, evaluator: PolicyEvaluator, budget: Budget) -> bool:
        """Refuse a budget without a size target, or one that ADMM's smallest budget misses."""
        size_limits(budget, evaluator.baseline_metrics, self.name)
        cheapest = projected_policy(evaluator, _weights(evaluator), floor_bits(evaluator))
        costs = evaluator.costs(cheapest, budget.metrics)
        settings = {"Yang bits per weight": FLOOR_BITS_PER_WEIGHT}
        space = f"method '{self.name}'"
        check_reachable(budget, evaluator.baseline_metrics, costs, space, settings, fixes=[])
        return True

    def _yang_bytes(self, ctx: SearchContext) -> float:
        """ADMM's budget (Yang's count, bytes) meeting the search's size and bits limits."""
        limits = size_limits(ctx.session.budget, ctx.evaluator.baseline_metrics, self.name)
        candidates = [limits["bits"] / 8] if "bits" in limits else []
        if "size" in limits:
            size = limits["size"]
            yang = self.options.yang_budget
            candidates.append(size if yang else yang_budget_for_file(ctx.evaluator, size))
        return min(candidates)

    def run(self, ctx: SearchContext) -> None:
        """Calibrate the budget, run ADMM on the session's model, record the policy."""
        check_single_evaluation(ctx, self.name)
        options = self.options
        yang_bytes = self._yang_bytes(ctx)
        dense_bytes = 4.0 * sum(s.weight_count for s in ctx.evaluator.specs)
        sized = "size" in ctx.session.budget.metrics and not options.yang_budget
        overhead = storage_overhead(ctx.evaluator) if sized else None
        config = replace(
            options,
            index_bits=None if overhead is None else dict(overhead.index_bits or {}),
            codebook_bits=0 if overhead is None else overhead.codebook_bits,
            seed=ctx.config.seed,
        )
        budget = min(yang_bytes, dense_bytes)
        result = admm_compress(ctx.session.model, ctx.session.data, budget, config)
        meta = {
            "method": self.name,
            "admm_budget_bytes": result.budget_bits / 8,
            "admm_cost_bytes": result.cost_bits / 8,
            "yang_bytes": result.yang_bits / 8,
            "method_val_accuracy": result.val_accuracy,
        }
        record_policy(ctx, result.policy, meta, result.coded)
