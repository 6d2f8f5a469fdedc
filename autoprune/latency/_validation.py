"""Does the cost model predict? Predicted vs measured whole-model latency.

Random policies are applied for real (channels removed, exported to ONNX) and timed with
ONNX Runtime with the profile's settings, all together in interleaved rounds; the cost
model predicts the same policies from the pruned layer specs alone. Spearman rank
correlation and MAPE (:func:`validate_predictions`) say how well it predicts.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from autoprune.compress import ChannelPlan, prune_channels, pruned_specs
from autoprune.core.errors import AutopruneError
from autoprune.core.policy import Policy
from autoprune.core.specs import LayerSpec
from autoprune.cost import CostModel
from autoprune.latency._fit import measure_whole_models, random_prune_policies
from autoprune.latency._measured import MeasuredCostModel


def _pair(a: Sequence[float], b: Sequence[float], least: int) -> None:
    if len(a) != len(b):
        raise AutopruneError(
            f"got {len(a)} predictions and {len(b)} measurements; pass one of each per model"
        )
    if len(a) < least:
        raise AutopruneError(f"need at least {least} predictions to compare, got {len(a)}")


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation of ``a`` and ``b``; NaN when either is constant.

    Example:
        >>> spearman([1, 2, 3], [10, 30, 20])
        0.5
    """
    _pair(a, b, 2)
    if len(set(a)) < 2 or len(set(b)) < 2:
        return math.nan
    from scipy.stats import spearmanr  # slow import (about a second): only when used

    return float(spearmanr(a, b).statistic)


def mape(pred: Sequence[float], measured: Sequence[float]) -> float:
    """Mean absolute percentage error of ``pred`` against ``measured``, in percent.

    Example:
        >>> mape([1.1, 1.8], [1.0, 2.0])
        10.0
    """
    _pair(pred, measured, 1)
    if any(m == 0 for m in measured):
        raise AutopruneError("a measured value is 0; percentage errors need nonzero measurements")
    errors = [abs(p - m) / abs(m) for p, m in zip(pred, measured, strict=True)]
    return round(100.0 * sum(errors) / len(errors), 12)


def validate_predictions(predicted: Sequence[float], measured: Sequence[float]) -> dict:
    """Summary of a cost model against measurements on several (pruned) models.

    Returns:
        ``n``, ``spearman`` (rank agreement, what a search needs), ``mape_percent`` and
        ``scale`` (median measured / predicted: a constant factor the ranks do not care about).

    Example:
        >>> validate_predictions([1.0, 2.0, 4.0], [2.0, 4.0, 8.0])["scale"]
        2.0
    """
    _pair(predicted, measured, 2)
    ratios = sorted(m / p for p, m in zip(predicted, measured, strict=True) if p != 0)
    middle = len(ratios) // 2
    if not ratios:
        scale = math.nan
    elif len(ratios) % 2:
        scale = ratios[middle]
    else:
        scale = (ratios[middle - 1] + ratios[middle]) / 2
    return {
        "n": len(predicted),
        "spearman": spearman(predicted, measured),
        "mape_percent": mape(predicted, measured),
        "scale": scale,
    }


@dataclass
class LatencyValidation:
    """Predicted vs measured latency over a set of policies."""

    predicted_ms: list[float] = field(default_factory=list)
    measured_ms: list[float] = field(default_factory=list)
    keep_ratios: list[float] = field(default_factory=list)
    seconds: float = 0.0
    speed: float = 1.0
    """The probe layer's speed during the measurement against the fastest seen (1.0: idle)."""
    attempts: int = 1
    """Measurement windows taken (more than one when the machine was busy)."""

    def summary(self) -> dict[str, float]:
        """``n``, ``spearman``, ``mape_percent``, the fitted ``scale``, and the machine's
        ``speed`` and ``attempts`` during the measurement."""
        summary = validate_predictions(self.predicted_ms, self.measured_ms)
        summary["speed"] = self.speed
        summary["attempts"] = self.attempts
        return summary


def validate_latency(
    model: nn.Module,
    specs: Sequence[LayerSpec],
    cost_model: CostModel,
    example_input: torch.Tensor,
    policies: Sequence[Policy],
) -> LatencyValidation:
    """Predict and measure every policy (fp32 weights; pruning only).

    The layers of all policies missing from the lookup table are measured first, in one
    window. The pruned models are exported to ONNX and timed together in interleaved rounds
    with the cost model's profile settings (:func:`~autoprune.latency._fit.measure_whole_models`).
    The cost model should already be fitted to ``model``
    (:func:`~autoprune.latency._fit.fit_latency_model`); these policies are not the ones
    it was calibrated on.
    """
    if not isinstance(cost_model, MeasuredCostModel):
        raise AutopruneError("latency validation needs a measured profile such as --profile cpu")
    started = time.perf_counter()
    plan = ChannelPlan.build(model, example_input)
    result = LatencyValidation()
    shaped = [pruned_specs(specs, plan, p.keep_ratios()) for p in policies]
    keys = [
        k
        for s, p in zip(shaped, policies, strict=True)
        for k in cost_model.keys(s, p.layers).values()
    ]
    cost_model.table.ensure(keys)  # the layers of every policy in one measurement window
    pruned = []
    for policy, layer_specs in zip(policies, shaped, strict=True):
        keep = policy.keep_ratios()
        predicted = cost_model.estimate(layer_specs, policy.layers)
        result.predicted_ms.append(predicted.latency_ms)
        pruned.append(prune_channels(copy.deepcopy(model).eval(), example_input, keep))
        result.keep_ratios.append(float(np.mean([lp.keep_ratio for lp in policy.layers.values()])))
    measured = measure_whole_models(pruned, example_input, cost_model)
    result.measured_ms = measured.measured_ms
    result.speed = measured.speed
    result.attempts = measured.attempts
    result.seconds = time.perf_counter() - started
    return result


__all__ = [
    "LatencyValidation",
    "mape",
    "random_prune_policies",
    "spearman",
    "validate_latency",
    "validate_predictions",
]
