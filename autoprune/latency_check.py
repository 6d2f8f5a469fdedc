"""Does the cost model predict? Predicted vs measured whole-model latency.

Random policies are applied for real (channels removed, exported to ONNX) and timed with
ONNX Runtime with the profile's settings, all together in interleaved rounds; the cost
model predicts the same policies from the pruned layer specs alone. Spearman rank
correlation and MAPE say how well it predicts.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from autoprune.compress import ChannelPlan, prune_channels, pruned_specs
from autoprune.cost import CostModel, MeasuredCostModel
from autoprune.cost.validation import validate_predictions
from autoprune.errors import AutopruneError
from autoprune.latency_model import measure_whole_models, random_prune_policies
from autoprune.policy import Policy
from autoprune.specs import LayerSpec


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
    with the cost model's profile settings (:func:`~autoprune.latency_model.measure_whole_models`).
    The cost model should already be fitted to ``model``
    (:func:`~autoprune.latency_model.fit_latency_model`); these policies are not the ones
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


__all__ = ["LatencyValidation", "random_prune_policies", "validate_latency"]
