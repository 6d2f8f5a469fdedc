"""Evaluators for the environment tests.

Fixtures:
    demo_model: the untrained demo CNN (1x8x8 inputs).
    make_fake_evaluator: factory of :class:`FakeEvaluator` (real specs, plan and cost model;
        accuracy is the mean keep ratio, so an episode costs milliseconds).
    trained_evaluator: a real ``PolicyEvaluator`` on a demo CNN trained for two epochs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import pytest
import torch
from torch import nn

from autoprune.compress import ChannelPlan, CompressionOptions, pruned_specs
from autoprune.core.policy import Policy
from autoprune.core.specs import LayerSpec, discover_layers
from autoprune.core.training import TrainConfig, train
from autoprune.cost import CostReport, load_profile
from autoprune.data import DataSplits
from autoprune.latency import build_cost_model
from autoprune.models import build_model
from autoprune.workflow.evaluation import (
    COST_METRICS,
    Evaluation,
    EvaluatorConfig,
    PolicyEvaluator,
    cost_metrics,
)

# Tiny tensors: one intra-op thread avoids contention on the shared 2-core machine.
torch.set_num_threads(1)


class FakeEvaluator:
    """Duck-typed ``PolicyEvaluator`` with the real plan and costs and a cheap accuracy."""

    def __init__(
        self, model: nn.Module, input_shape: tuple[int, ...], round_to: int | None = None
    ) -> None:
        self.specs: list[LayerSpec] = discover_layers(model, input_shape)
        self.plan = ChannelPlan.build(model.eval(), torch.zeros((1, *input_shape)))
        self.cost_model = build_cost_model(load_profile("bitfusion"))
        self.config = EvaluatorConfig(compression=CompressionOptions(round_to=round_to))
        self.baseline_metrics = {"accuracy": 1.0, **self.costs(Policy.identity(self.specs))}
        self.evaluated: list[Policy] = []

    def pruned_specs(self, policy: Policy) -> list[LayerSpec]:
        keep = policy.keep_ratios()
        return pruned_specs(self.specs, self.plan, keep, self.config.compression.round_to)

    def cost_report(self, policy: Policy) -> CostReport:
        return self.cost_model.estimate(self.pruned_specs(policy), policy.layers)

    def costs(self, policy: Policy, metrics: Collection[str] = COST_METRICS) -> dict[str, float]:
        values = cost_metrics(self.cost_report(policy))
        return {metric: values[metric] for metric in metrics}

    def record(self) -> dict[str, object]:
        return {**self.config.to_dict(), "dataset": "fake"}

    def evaluate(self, policy: Policy) -> Evaluation:
        self.evaluated.append(policy)
        ratios = [lp.keep_ratio for lp in policy.layers.values()]
        metrics = {"accuracy": sum(ratios) / len(ratios), **self.costs(policy)}
        return Evaluation(metrics, cached=False, seconds=0.0)


@pytest.fixture(scope="session")
def demo_model() -> nn.Module:
    torch.manual_seed(0)
    return build_model("demo", in_channels=1, num_classes=10, input_size=(8, 8)).eval()


@pytest.fixture(scope="session")
def make_fake_evaluator(demo_model: nn.Module) -> Callable[..., FakeEvaluator]:
    def make(
        model: nn.Module | None = None,
        input_shape: tuple[int, ...] = (1, 8, 8),
        round_to: int | None = None,
    ) -> FakeEvaluator:
        return FakeEvaluator(demo_model if model is None else model, input_shape, round_to)

    return make


@pytest.fixture(scope="session")
def trained_evaluator(digits: DataSplits) -> PolicyEvaluator:
    torch.manual_seed(0)
    model = build_model("demo", in_channels=1, num_classes=10, input_size=(8, 8))
    train(model, digits, TrainConfig(epochs=2, batch_size=64))
    specs = discover_layers(model, digits.input_shape)
    cost = build_cost_model(load_profile("bitfusion"))
    config = EvaluatorConfig(val_samples=200, calib_batches=2, calib_batch_size=64)
    return PolicyEvaluator(model, digits, specs, cost, config)
