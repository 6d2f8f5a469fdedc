"""The ``.apz`` size model: predicted bytes against files really written."""

from __future__ import annotations

import copy
import statistics

import numpy as np
import pytest
import torch
from torch import nn

from autoprune.coding._layer import encode_layer
from autoprune.compress import CompressionOptions, Compressor
from autoprune.compress.pruning import ChannelPruner
from autoprune.compress.quantize import apply_weight_compression, export_layer
from autoprune.core.policy import LayerPolicy, Policy
from autoprune.core.specs import discover_layers
from autoprune.core.training import TrainConfig, train
from autoprune.cost import ApzSizeModel, load_profile
from autoprune.cost._apz_layer import LayerSample, predict_layer
from autoprune.latency import build_cost_model
from autoprune.workflow.baseline import build_for
from autoprune.workflow.coded_file import finalize_and_code
from autoprune.workflow.evaluation import EvaluatorConfig, PolicyEvaluator


def random_layers(specs, rng: np.random.Generator) -> dict[str, LayerPolicy]:
    """Sparse + quantized settings as the benchmark draws them."""
    return {
        spec.name: LayerPolicy(
            keep_ratio=float(rng.uniform(0.5, 1.0)) if spec.prunable else 1.0,
            w_bits=int(rng.integers(2, 9)),
            sparsity=float(rng.uniform(0.0, 0.95)),
            quantizer=str(rng.choice(["linear", "kmeans"])),
        )
        for spec in specs
    }


def written_layer(weight: torch.Tensor, setting: LayerPolicy, index_bits: int):
    """The writer's streams of one layer compressed by the real quantizers."""
    layer = nn.Linear(1, 1, bias=False)
    layer.weight = nn.Parameter(weight.clone())
    model = nn.Sequential()
    model.add_module("x", layer)
    apply_weight_compression(model, {"x": setting})
    return encode_layer(
        "x", export_layer(layer), index_bits=index_bits, huffman=True, layout="auto"
    )


@pytest.mark.parametrize("seed", range(24))
def test_layer_streams_equal_the_writer(seed):
    rng = np.random.default_rng(seed)
    shape = (16, 8, 3, 3) if seed % 2 else (30, 100)
    weight = torch.from_numpy(rng.standard_t(4, size=shape).astype(np.float32))
    setting = LayerPolicy(
        w_bits=int(rng.choice([1, 2, 3, 5, 8, 32])),
        sparsity=float(rng.choice([0.0, rng.uniform(0.0, 0.97)])),
        quantizer=str(rng.choice(["linear", "kmeans"])),
    )
    index_bits = 8 if len(shape) == 4 else 5
    real = written_layer(weight, setting, index_bits)
    rows = weight.numpy().reshape(shape[0], -1)
    predicted = predict_layer(LayerSample(rows, shape, index_bits), setting)
    assert predicted.layout == real.meta["layout"]
    assert predicted.kept == real.meta["kept"] and predicted.fillers == real.meta["fillers"]
    assert {role: s.length for role, s in predicted.streams} == {
        role: s.nbytes for role, s in real.streams.items()
    }


@pytest.mark.parametrize(
    "setting",
    [
        LayerPolicy(w_bits=7, sparsity=0.1, quantizer="kmeans"),
        LayerPolicy(w_bits=4, sparsity=0.9, quantizer="kmeans"),
        LayerPolicy(w_bits=5, sparsity=0.6),
        LayerPolicy(w_bits=32, sparsity=0.8),
    ],
)
def test_large_layers_are_predicted_from_a_sample_of_rows(setting):
    rng = np.random.default_rng(1)
    rows = rng.standard_t(4, size=(400, 300)) * rng.uniform(0.2, 2.0, (400, 1))
    model = nn.Sequential(nn.Linear(300, 400), nn.ReLU(), nn.Linear(400, 10)).eval()
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(rows))
    specs = discover_layers(model, (300,))
    pruner = ChannelPruner(model, torch.zeros(1, 300))
    layers = {"0": setting}
    exact = ApzSizeModel(model, specs, pruner, sample_weights=10**9).predict(layers)
    sampled = ApzSizeModel(model, specs, pruner, sample_weights=20_000).predict(layers)
    assert sampled.layers["0"].total == pytest.approx(exact.layers["0"].total, rel=0.03)


@pytest.fixture(scope="module")
def trained(digits):
    torch.manual_seed(0)
    model = build_for("demo", digits)
    train(model, digits, TrainConfig(epochs=1, batch_size=64))
    return model.eval(), discover_layers(model, digits.input_shape)


def write_real(compressed: nn.Module, specs, path, policy: Policy):
    return finalize_and_code(
        compressed, [s.name for s in specs], path, {"policy": policy.to_dict()}
    )


def test_prediction_equals_the_file_when_weights_are_not_refitted(trained, digits, tmp_path):
    model, specs = trained
    calib = [digits.x_train[:64]]
    options = CompressionOptions(reconstruct=False)
    compressor = Compressor(model, torch.zeros(1, *digits.input_shape), calib, options)
    size_model = ApzSizeModel(model, specs, compressor.pruner)
    rng = np.random.default_rng(0)
    for trial in range(5):
        policy = Policy.for_specs(specs, random_layers(specs, rng))
        predicted = size_model.predict(policy.layers)
        report = write_real(compressor.compress(policy), specs, tmp_path / f"{trial}.apz", policy)
        assert predicted.extra_bytes == report.extra_bytes
        assert predicted.layer_bytes == sum(layer.total_bytes for layer in report.layers)
        assert abs(predicted.header_bytes - report.overhead_bytes) <= 8  # CRC digits
        assert abs(predicted.total - report.file_bytes) <= 8


@pytest.fixture(scope="module")
def evaluator(trained, digits) -> PolicyEvaluator:
    model, specs = trained
    cost = build_cost_model(load_profile("bitfusion"))
    config = EvaluatorConfig(val_samples=200, calib_batches=2, calib_batch_size=64)
    return PolicyEvaluator(model, digits, specs, cost, config)


def test_evaluator_size_is_the_apz_file_apply_writes(evaluator, tmp_path):
    rng = np.random.default_rng(1)
    errors = []
    for _ in range(6):
        policy = Policy.for_specs(evaluator.specs, random_layers(evaluator.specs, rng))
        report = evaluator.cost_report(policy)
        assert report.size_source == "apz"
        size = evaluator.costs(policy)["size"]
        assert size == report.apz_bytes == report.metric("size")
        policy.meta = {"evaluation": evaluator.record()}
        policy.metrics = {"accuracy": 0.9123, **evaluator.costs(policy)}
        written = write_real(
            evaluator.compress(policy), evaluator.specs, tmp_path / "m.apz", policy
        )
        errors.append(abs(size / written.file_bytes - 1))
        # Yang's count needs no prediction: bits x nonzeros of the written layers.
        assert evaluator.costs(policy)["bits"] == 8 * written.yang_bytes
    assert max(errors) <= 0.10 and statistics.median(errors) <= 0.03


def test_baseline_size_is_the_float_file(evaluator, tmp_path):
    identity = Policy.identity(evaluator.specs)
    written = write_real(
        evaluator.compress(identity), evaluator.specs, tmp_path / "f.apz", identity
    )
    predicted = evaluator.baseline_metrics["size"]
    assert predicted == pytest.approx(written.file_bytes, rel=0.02)
    assert evaluator.baseline_metrics["bits"] == 32 * sum(s.weight_count for s in evaluator.specs)


def test_layer_results_are_memoised(evaluator):
    rng = np.random.default_rng(2)
    layers = random_layers(evaluator.specs, rng)
    first = evaluator.size_model.predict(layers)
    again = evaluator.size_model.predict(dict(layers))
    assert all(first.layers[n] is again.layers[n] for n in first.layers)
    assert first.total == again.total


def test_cost_model_without_weights_keeps_the_analytic_size(trained):
    _, specs = trained
    cost = build_cost_model(load_profile("bitfusion"))
    layers = {s.name: LayerPolicy(w_bits=4, sparsity=0.5) for s in specs}
    report = cost.estimate(specs, layers)
    assert report.apz_bytes is None and report.size_source == "analytic"
    assert report.metric("size") == report.stored_bytes
    kept = sum(s.weight_count - round(0.5 * s.weight_count) for s in specs)
    assert report.metric("bits") == 4 * kept
    assert report.to_dict()["size_source"] == "analytic"


def test_survivors_match_real_channel_pruning(trained, digits):
    model, specs = trained
    pruner = ChannelPruner(model, torch.zeros(1, *digits.input_shape))
    size_model = ApzSizeModel(model, specs, pruner)
    survivors = size_model.survivors
    rng = np.random.default_rng(3)
    for _ in range(3):
        layers = random_layers(specs, rng)
        keep = {n: lp.keep_ratio for n, lp in layers.items() if lp.keep_ratio < 1}
        pruned = copy.deepcopy(model)
        pruner.prune(pruned, keep)
        kept = survivors.group_kept(layers)
        state = pruned.state_dict()
        for key, shape in survivors.extra_shapes(kept).items():
            assert tuple(state[key].shape) == shape
        for spec in specs:
            out_idx, in_idx = survivors.kept_indices(
                spec.name, survivors.layer_key(spec.name, kept)
            )
            original = model.get_submodule(spec.name).weight.detach()
            assert torch.equal(original[out_idx][:, in_idx], state[f"{spec.name}.weight"])
