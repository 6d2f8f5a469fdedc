"""The shared evaluation path: compression, metrics, caching."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from autoprune.compress import CompressionOptions, compress_model
from autoprune.core.errors import AutopruneError
from autoprune.core.policy import LayerPolicy, Policy
from autoprune.core.specs import discover_layers
from autoprune.core.training import TrainConfig, top1_accuracy, train
from autoprune.cost import load_profile
from autoprune.deploy.apply import RECORD_EXTRAS
from autoprune.latency import build_cost_model
from autoprune.workflow.baseline import build_for
from autoprune.workflow.config import SearchConfig
from autoprune.workflow.evaluation import EvaluatorConfig, PolicyEvaluator
from autoprune.workflow.session import evaluator_config


@pytest.fixture(scope="module")
def evaluator(digits) -> PolicyEvaluator:
    torch.manual_seed(0)
    model = build_for("demo", digits)
    train(model, digits, TrainConfig(epochs=3, batch_size=64))
    specs = discover_layers(model, digits.input_shape)
    cost = build_cost_model(load_profile("bitfusion"))
    config = EvaluatorConfig(val_samples=200, calib_batches=2, calib_batch_size=64)
    return PolicyEvaluator(model, digits, specs, cost, config)


def test_identity_policy_matches_baseline(evaluator):
    result = evaluator.evaluate(Policy.identity(evaluator.specs))
    assert result.metrics == pytest.approx(evaluator.baseline_metrics)


def test_pruning_lowers_costs_and_original_stays_intact(evaluator):
    before = [p.clone() for p in evaluator.model.parameters()]
    half = Policy.uniform(evaluator.specs, keep_ratio=0.5)
    metrics = evaluator.evaluate(half).metrics
    base = evaluator.baseline_metrics
    assert metrics["macs"] < 0.35 * base["macs"]
    assert metrics["params"] < 0.4 * base["params"]
    assert metrics["latency"] < base["latency"] and metrics["energy"] < base["energy"]
    assert 0.0 <= metrics["accuracy"] <= 1.0
    for old, new in zip(before, evaluator.model.parameters(), strict=True):
        assert torch.equal(old, new), "evaluation must not modify the base model"


def test_quantization_shrinks_size_and_keeps_macs(evaluator):
    int4 = Policy.uniform(evaluator.specs, w_bits=4, a_bits=8)
    metrics = evaluator.evaluate(int4).metrics
    assert metrics["macs"] == evaluator.baseline_metrics["macs"]
    assert metrics["size"] < 0.2 * evaluator.baseline_metrics["size"]
    assert metrics["accuracy"] > 0.5 * evaluator.baseline_metrics["accuracy"]


def test_repeated_policy_is_a_cache_hit(evaluator):
    policy = Policy.uniform(evaluator.specs, keep_ratio=0.6, w_bits=6)
    first = evaluator.evaluate(policy)
    again = evaluator.evaluate(Policy.uniform(evaluator.specs, keep_ratio=0.6, w_bits=6))
    assert not first.cached and again.cached
    assert again.metrics == first.metrics
    # ratios that round to the same channel counts are the same compressed model
    assert evaluator.key(Policy.uniform(evaluator.specs, keep_ratio=0.6001, w_bits=6)) == (
        evaluator.key(policy)
    )


def test_cache_survives_state_dict_round_trip(evaluator, digits):
    state = evaluator.state_dict()
    fresh = PolicyEvaluator(
        evaluator.model, digits, evaluator.specs, evaluator.cost_model, evaluator.config
    )
    fresh.load_state_dict(state)
    assert fresh.evaluate(Policy.uniform(evaluator.specs, keep_ratio=0.5)).cached


def test_policy_for_another_model_is_refused(evaluator, digits):
    other = discover_layers(build_for("lenet300", digits), digits.input_shape)
    with pytest.raises(AutopruneError, match="another architecture"):
        evaluator.evaluate(Policy.identity(other))


def test_bad_evaluator_settings():
    with pytest.raises(AutopruneError, match="val_samples"):
        EvaluatorConfig(val_samples=0).check()


POLICIES = {
    "prune": {"conv1": LayerPolicy(keep_ratio=0.5), "conv2": LayerPolicy(keep_ratio=0.7)},
    "quantize": {"conv2": LayerPolicy(w_bits=4, a_bits=6), "fc": LayerPolicy(w_bits=3)},
    "joint": {
        "conv1": LayerPolicy(keep_ratio=0.6, w_bits=5, a_bits=8),
        "conv3": LayerPolicy(keep_ratio=0.4, sparsity=0.5, quantizer="kmeans", w_bits=4),
    },
}


@pytest.mark.parametrize("kind", list(POLICIES))
def test_fast_accuracy_counts_what_the_plain_path_counts(evaluator, kind):
    """The search's fast scoring equals compress_model + a plain evaluation, image for image."""
    policy = Policy.for_specs(evaluator.specs, POLICIES[kind])
    fast = evaluator.evaluate(policy).metrics["accuracy"]
    plain_model = compress_model(
        evaluator.model,
        policy,
        evaluator.example_input,
        evaluator.calib,
        evaluator.config.compression,
    )
    assert fast == top1_accuracy(plain_model, evaluator.x_val, evaluator.y_val)
    # scoring leaves the model it is given usable: compress() returns BatchNorm intact
    model = evaluator.compress(policy)
    assert evaluator.accuracy(model, copy_model=True) == fast
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_reconstruction_and_bn_recalibration_are_the_default(evaluator):
    defaults = evaluator_config(SearchConfig())
    assert defaults.compression.reconstruct and defaults.compression.bn_recalibration
    # the sizes benchmarks/reward_ranking.py found to rank policies as a fine-tune does
    assert (defaults.val_samples, defaults.calib_batches) == (5000, 4)
    assert evaluator.config.compression.reconstruct
    half = Policy.uniform(evaluator.specs, keep_ratio=0.5)
    without = evaluator.with_config(
        replace(evaluator.config, compression=CompressionOptions(reconstruct=False))
    )
    assert evaluator.evaluate(half).metrics["accuracy"] > without.evaluate(half).metrics["accuracy"]


def test_every_evaluation_setting_is_recorded_and_read_back(evaluator):
    record = evaluator.record()
    assert record["val_images"] == len(evaluator.y_val) and record["dataset"] == "digits"
    settings = {k: v for k, v in record.items() if k not in RECORD_EXTRAS}
    assert EvaluatorConfig.from_dict(settings) == evaluator.config
    with pytest.raises(AutopruneError, match="unknown field"):
        EvaluatorConfig.from_dict({**settings, "warp": 9})
