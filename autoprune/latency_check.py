"""Does the cost model predict? Predicted vs measured whole-model latency.

Random policies are applied for real (channels removed, exported to ONNX) and timed with
ONNX Runtime with the profile's settings; the cost model predicts the same policies from
the pruned layer specs alone. Spearman rank correlation and MAPE say how well it predicts.
"""

from __future__ import annotations

import copy
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from autoprune.compress import ChannelPlan, prune_channels, pruned_specs
from autoprune.cost import CostModel, HardwareProfile, measure_onnx_latency
from autoprune.cost.validation import validate_predictions
from autoprune.export import export_onnx
from autoprune.policy import LayerPolicy, Policy
from autoprune.specs import LayerSpec


@dataclass
class LatencyValidation:
    """Predicted vs measured latency over a set of policies."""

    predicted_ms: list[float] = field(default_factory=list)
    measured_ms: list[float] = field(default_factory=list)
    keep_ratios: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, float]:
        """``n``, ``spearman``, ``mape_percent`` (and the fitted ``scale``)."""
        return validate_predictions(self.predicted_ms, self.measured_ms)


def random_prune_policies(
    specs: Sequence[LayerSpec],
    plan: ChannelPlan,
    samples: int,
    *,
    min_keep: float = 0.2,
    seed: int = 0,
) -> list[Policy]:
    """``samples`` policies with one random keep ratio per prunable group.

    The mean ratio of each policy is drawn first (so the set spans small to large models),
    then every group's ratio is drawn around it.
    """
    rng = np.random.default_rng(seed)
    prunable = set(plan.prunable)
    policies = []
    for _ in range(samples):
        centre = rng.uniform(min_keep, 1.0)
        layers = {}
        for spec in specs:
            if spec.name in prunable:
                ratio = float(np.clip(centre + rng.normal(0, 0.15), min_keep, 1.0))
                layers[spec.name] = LayerPolicy(keep_ratio=ratio)
        policies.append(Policy.for_specs(list(specs), layers))
    return policies


def validate_latency(
    model: nn.Module,
    specs: Sequence[LayerSpec],
    cost_model: CostModel,
    profile: HardwareProfile,
    example_input: torch.Tensor,
    policies: Sequence[Policy],
) -> LatencyValidation:
    """Predict and measure every policy (fp32 weights; pruning only)."""
    started = time.perf_counter()
    plan = ChannelPlan.build(model, example_input)
    result = LatencyValidation()
    batch = (profile.batch_size, *example_input.shape[1:])
    with tempfile.TemporaryDirectory(prefix="autoprune-latency-") as tmp:
        for i, policy in enumerate(policies):
            keep = policy.keep_ratios()
            predicted = cost_model.estimate(pruned_specs(specs, plan, keep), policy.layers)
            pruned = prune_channels(copy.deepcopy(model).eval(), example_input, keep)
            path = export_onnx(pruned, example_input, Path(tmp) / f"p{i}.onnx")
            measured = measure_onnx_latency(
                path,
                batch,
                threads=profile.threads,
                warmup=max(profile.warmup, 5),
                repeats=max(profile.repeats, 30),
            )
            result.predicted_ms.append(predicted.latency_ms)
            result.measured_ms.append(measured)
            result.keep_ratios.append(
                float(np.mean([lp.keep_ratio for lp in policy.layers.values()]))
            )
    result.seconds = time.perf_counter() - started
    return result
