"""``deep-compression``: Han et al.'s prune → k-means share → Huffman recipe as a baseline.

Not an RL method: per-layer target sparsities come from a sensitivity scan on the validation
split (or ``targets``), the model is pruned gradually with retraining, then k-means-shared
(8-bit conv, 5-bit fc) with centroid fine-tuning (:func:`autoprune.deep_compression.
deep_compress`). It produces ONE policy, recorded once (``--episodes 1``), with the
retrained model's validation ``accuracy`` and the shared evaluator's
``accuracy_without_retraining`` (see :func:`agents._admm_method.record_policy`); the
``.apz`` sizes of its stages are kept in the policy's ``meta`` and the retrained model is
coded into the run folder as ``trained_model.apz``.

Deep Compression has no budget of its own. When the search has a ``size`` or ``bits``
target (or any other) and ``fit_size`` is on, every layer's density is scaled by one common
factor (keeping the scan's allocation), down or up, to the largest that the cost model
predicts meets every target: the budget is used, not only respected. The method's space
is therefore its fixed bit-widths with any sparsity down to one weight per layer:
:meth:`DeepCompressionMethod.check_budget` refuses, before anything is written, a budget
that even that policy misses.

Its options (:class:`DeepCompressionOptions`) are
:class:`~autoprune.deep_compression.DeepCompressionConfig` itself, less the settings the
search makes (:data:`DC_SET_BY_SEARCH`), plus ``fit_size``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from agents._admm_method import check_single_evaluation, record_policy, refuse_search_settings
from agents._base import SearchMethod, parse_options
from agents._context import SearchContext
from autoprune.core.budget import Budget
from autoprune.core.errors import AutopruneError, unknown_name
from autoprune.core.policy import LayerPolicy, Policy
from autoprune.deep_compression import (
    DeepCompressionConfig,
    PruneSchedule,
    deep_compress,
    sensitivity_scan,
    targets_for_budget,
)
from autoprune.workflow.evaluation import PolicyEvaluator
from envs import check_reachable

FIT_STEPS = 40
"""Bisection steps when scaling densities to the budget."""


@dataclass(frozen=True)
class DeepCompressionOptions(DeepCompressionConfig):
    """Options of ``deep-compression`` (``agent_options``): the settings of
    :class:`~autoprune.deep_compression.DeepCompressionConfig` except
    :data:`DC_SET_BY_SEARCH` (``schedule`` as a mapping), and whether the search's targets
    scale the densities.

    Example:
        >>> DeepCompressionOptions(tolerance=0.01).fc_bits, DeepCompressionOptions().fit_size
        (5, True)
    """

    fit_size: bool = True
    """Scale the densities to the largest that meets the search's targets (``size``,
    ``bits``)."""


DC_SET_BY_SEARCH = {
    "seed": "the search's seed is used; pass --seed",
    "scan_samples": "the scan uses the evaluator's validation images; set val_samples",
}
"""Settings of :class:`~autoprune.deep_compression.DeepCompressionConfig` that
``deep-compression`` sets itself, and why."""


def kmeans_policy(
    evaluator: PolicyEvaluator, targets: dict[str, float], bits: dict[str, int]
) -> Policy:
    """The policy of per-layer sparsities ``targets`` with k-means codes of ``bits``."""
    layers = {
        n: LayerPolicy(w_bits=bits[n], sparsity=s, quantizer="kmeans") for n, s in targets.items()
    }
    return Policy.for_specs(evaluator.specs, layers)


def _fits(
    evaluator: PolicyEvaluator,
    targets: dict[str, float],
    bits: dict[str, int],
    limits: dict[str, float],
) -> bool:
    costs = evaluator.costs(kmeans_policy(evaluator, targets, bits), list(limits))
    return all(costs[m] <= limit * (1 + 1e-9) for m, limit in limits.items())


def sparsest(evaluator: PolicyEvaluator, bits: dict[str, int]) -> dict[str, float]:
    """The sparsity of every layer when it keeps one weight: the end of the method's space."""
    counts = {s.name: s.weight_count for s in evaluator.specs}
    return targets_for_budget(counts, bits, float(sum(bits.values())))


def fit_to_budget(
    evaluator: PolicyEvaluator,
    base: dict[str, float],
    bits: dict[str, int],
    limits: dict[str, float],
) -> dict[str, float]:
    """``base`` with every density scaled by one common factor, the largest whose predicted
    costs meet ``limits``: down when ``base`` misses them, up (less pruning, densities
    capped at 1) when it leaves part of the budget unused.

    Raises:
        AutopruneError: When one weight per layer does not fit either (checked before the
            search by :meth:`DeepCompressionMethod.check_budget`).
    """
    counts = {s.name: s.weight_count for s in evaluator.specs}
    low = float(sum(bits.values()))
    high = float(sum(bits[n] * counts[n] for n in counts))  # every weight kept
    fitted = targets_for_budget(counts, bits, low, base)
    if not _fits(evaluator, fitted, bits, limits):
        raise AutopruneError(
            "the budget is below one weight per layer plus biases and codebooks; raise it"
        )
    for _ in range(FIT_STEPS):
        mid = (low + high) / 2
        candidate = targets_for_budget(counts, bits, mid, base)
        if _fits(evaluator, candidate, bits, limits):
            low, fitted = mid, candidate
        else:
            high = mid
    return fitted


class DeepCompressionMethod(SearchMethod):
    """``deep-compression``: one Deep Compression run, one recorded evaluation."""

    name = "deep-compression"
    fixed_evaluations = 1
    Options = DeepCompressionOptions
    objectives = ("accuracy", "size")

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        refuse_search_settings(options, DC_SET_BY_SEARCH, self.name)
        options = dict(options or {})
        if isinstance(options.get("schedule"), Mapping):
            schedule = parse_options(PruneSchedule, options["schedule"], f"{self.name} schedule")
            options["schedule"] = schedule
        super().__init__(options)
        self.options.check()

    def bit_widths(self, evaluator: PolicyEvaluator) -> dict[str, int]:
        """The fixed k-means width of every layer (``fc_bits`` linear, ``conv_bits`` conv)."""
        options = self.options
        return {
            s.name: options.fc_bits if s.kind == "linear" else options.conv_bits
            for s in evaluator.specs
        }

    def check_budget(self, evaluator: PolicyEvaluator, budget: Budget) -> bool:
        """Refuse a budget that one weight per layer at the fixed bit-widths misses (or, with
        ``fit_size`` off, that the given ``targets`` miss)."""
        bits = self.bit_widths(evaluator)
        options = self.options
        cheapest = sparsest(evaluator, bits)
        if not options.fit_size and options.targets is not None:
            cheapest = {n: float(options.targets.get(n, 0.0)) for n in bits}
        costs = evaluator.costs(kmeans_policy(evaluator, cheapest, bits), budget.metrics)
        settings = {"conv_bits": options.conv_bits, "fc_bits": options.fc_bits}
        fixes = ["lower fc_bits", "conv_bits (agent options)"]
        if not options.fit_size:
            fixes = ["turn fit_size on"]
        space = "method 'deep-compression'"
        check_reachable(budget, evaluator.baseline_metrics, costs, space, settings, fixes)
        return True

    def _targets(self, ctx: SearchContext, bits: dict[str, int]) -> dict[str, float]:
        options = self.options
        evaluator = ctx.evaluator
        if options.targets is not None:
            for name in options.targets:
                if name not in bits:
                    raise unknown_name("layer in targets", name, list(bits))
            base = {n: float(options.targets.get(n, 0.0)) for n in bits}
        else:
            model, x, y = ctx.session.model, evaluator.x_val, evaluator.y_val
            scan = sensitivity_scan(model, x, y, list(bits), options.grid)
            base = scan.targets(options.tolerance)
        limits = ctx.session.budget.limits(evaluator.baseline_metrics)
        if options.fit_size and limits:
            return fit_to_budget(evaluator, base, bits, limits)
        return base

    def run(self, ctx: SearchContext) -> None:
        """Choose the targets, compress the session's model and record the policy."""
        check_single_evaluation(ctx, self.name)
        options = self.options
        bits = self.bit_widths(ctx.evaluator)
        config = replace(options, targets=self._targets(ctx, bits), seed=ctx.config.seed)
        result = deep_compress(ctx.session.model, ctx.session.data, config)
        final = result.stages["huffman"]
        meta = {
            "method": self.name,
            "method_val_accuracy": final.val_accuracy,
            "apz_bytes": final.file_bytes,
            "apz_ratio": final.ratio,
            "yang_bytes": final.yang_bytes,
        }
        record_policy(ctx, result.policy, meta, result.coded)
