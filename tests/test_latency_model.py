"""Fitting the measured latency model to one network (epilogues + layer-sum line)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from autoprune.compress import ChannelPlan, pruned_specs
from autoprune.core.specs import discover_layers
from autoprune.cost import load_profile
from autoprune.latency import MeasuredCostModel, build_cost_model
from autoprune.latency import _fit as latency_model
from autoprune.latency import _lut as lut
from autoprune.latency._fit import (
    LINE_VERSIONS,
    fit_latency_model,
    random_prune_policies,
)
from autoprune.models import build_model

EXAMPLE = torch.zeros(1, 1, 28, 28)


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch):
    """The cpu profile with the shortest measurement windows, each measured once."""
    monkeypatch.setattr(latency_model, "WHOLE_MODEL_ROUNDS", 1)
    monkeypatch.setattr(latency_model, "MAX_ATTEMPTS", 1)
    monkeypatch.setattr(lut, "MAX_ATTEMPTS", 1)
    cpu = load_profile("cpu")
    timing = replace(cpu.measurement, warmup=1, repeats=2, rounds=1, model_seconds=0.0)
    return replace(cpu, measurement=timing)


def test_fit_measures_the_network_once_then_reuses_its_layer_sum_line(
    tmp_path: Path, quick, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = build_model("vgg_small").eval()
    specs = discover_layers(model, (1, 28, 28))
    first = fit_latency_model(
        build_cost_model(quick, lut_cache_dir=tmp_path), model, EXAMPLE, specs
    )
    assert isinstance(first, MeasuredCostModel) and first.line is not None
    assert first.line.points == 1 + LINE_VERSIONS and first.line.scale > 0
    assert first.epilogues["conv1"].ops == ("Relu", "MaxPool")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the layer-sum line was measured again")

    monkeypatch.setattr(latency_model, "measure_whole_models", refuse)
    again = fit_latency_model(
        build_cost_model(quick, lut_cache_dir=tmp_path), model, EXAMPLE, specs
    )
    assert isinstance(again, MeasuredCostModel)
    assert again.line == first.line and again.table.measurements == 0

    plan = ChannelPlan.build(model, EXAMPLE)
    small = pruned_specs(specs, plan, {name: 0.3 for name in plan.prunable})
    assert again.estimate(small, {}).latency_ms < again.estimate(specs, {}).latency_ms


def test_modelled_profiles_pass_through_unchanged() -> None:
    roofline = build_cost_model(load_profile("bitfusion"))
    model = build_model("vgg_small").eval()
    specs = discover_layers(model, (1, 28, 28))
    assert fit_latency_model(roofline, model, EXAMPLE, specs) is roofline


class _NotExportable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.svd(self.fc(x)).S  # no ONNX operator for an SVD


def test_a_network_that_cannot_be_exported_keeps_single_layer_timings(quick) -> None:
    model = _NotExportable().eval()
    specs = discover_layers(model, (4,))
    cost = build_cost_model(quick)
    with pytest.warns(UserWarning, match="not calibrated"):
        fitted = fit_latency_model(cost, model, torch.zeros(1, 4), specs)
    assert fitted is cost and cost.line is None and cost.epilogues == {}


def test_random_policies_span_small_to_large_and_respect_the_floor() -> None:
    model = build_model("resnet20").eval()
    specs = discover_layers(model, (1, 28, 28))
    plan = ChannelPlan.build(model, EXAMPLE)
    policies = random_prune_policies(specs, plan, 30, min_keep=0.25, seed=3)
    means = [sum(p.keep_ratios().values()) / len(p.keep_ratios()) for p in policies]
    assert min(means) < 0.45 and max(means) > 0.8
    assert all(0.25 <= r <= 1.0 for p in policies for r in p.keep_ratios().values())
    again = random_prune_policies(specs, plan, 30, min_keep=0.25, seed=3)
    assert [p.layers for p in again] == [p.layers for p in policies]
