"""compress_model: a whole policy applied to a copy of the model."""

from __future__ import annotations

import torch
from torch import nn

from autoprune.compress import CompressionOptions, compress_model
from autoprune.compress.act_quant import ActivationFakeQuant
from autoprune.core.policy import LayerPolicy, Policy
from autoprune.core.specs import discover_layers
from autoprune.core.training import TrainConfig, top1_accuracy, train
from autoprune.workflow.baseline import build_for


def _calib(digits, n=2):
    return [digits.x_train[i * 64 : (i + 1) * 64] for i in range(n)]


def test_policy_is_applied_for_real(digits):
    model = build_for("demo", digits)
    specs = discover_layers(model, digits.input_shape)
    policy = Policy.for_specs(
        specs,
        {
            "conv1": LayerPolicy(keep_ratio=0.5, w_bits=4, a_bits=8),
            "conv2": LayerPolicy(keep_ratio=0.25, sparsity=0.5),
            "conv3": LayerPolicy(w_bits=3, quantizer="kmeans", a_bits=6),
        },
    )
    example = torch.zeros(1, *digits.input_shape)
    compressed = compress_model(model, policy, example, _calib(digits))
    assert compressed.conv1.out_channels == 8 and compressed.conv2.out_channels == 8
    assert model.conv1.out_channels == 16, "the original must be untouched"
    per_channel = [row.unique().numel() for row in compressed.conv1.weight.detach()]
    assert max(per_channel) <= 16
    zeros = (compressed.conv2.weight == 0).float().mean().item()
    assert abs(zeros - 0.5) < 0.02
    assert compressed.conv3.weight.detach().unique().numel() <= 8
    quantizers = [m for m in compressed.modules() if isinstance(m, ActivationFakeQuant)]
    assert len(quantizers) == 2
    assert compressed(digits.x_val[:4]).shape == (4, 10)


def test_bn_recalibration_raises_accuracy_of_a_pruned_model(digits):
    torch.manual_seed(0)
    model = build_for("demo", digits)
    train(model, digits, TrainConfig(epochs=3, batch_size=64))
    specs = discover_layers(model, digits.input_shape)
    policy = Policy.uniform(specs, keep_ratio=0.5)
    example = torch.zeros(1, *digits.input_shape)
    calib = _calib(digits, 4)
    stale = compress_model(
        model, policy, example, calib, CompressionOptions(reconstruct=False, bn_recalibration=False)
    )
    fresh = compress_model(model, policy, example, calib, CompressionOptions(reconstruct=False))
    acc_stale = top1_accuracy(stale, digits.x_val, digits.y_val)
    acc_fresh = top1_accuracy(fresh, digits.x_val, digits.y_val)
    assert acc_fresh > acc_stale


def test_reconstruction_option_runs_and_keeps_shapes(digits):
    model = build_for("demo", digits).eval()
    specs = discover_layers(model, digits.input_shape)
    policy = Policy.uniform(specs, keep_ratio=0.5)
    example = torch.zeros(1, *digits.input_shape)
    plain = compress_model(
        model, policy, example, _calib(digits), CompressionOptions(reconstruct=False)
    )
    rebuilt = compress_model(
        model, policy, example, _calib(digits), CompressionOptions(reconstruct=True)
    )
    assert [m.weight.shape for m in plain.modules() if isinstance(m, nn.Conv2d)] == [
        m.weight.shape for m in rebuilt.modules() if isinstance(m, nn.Conv2d)
    ]
    assert not torch.equal(plain.conv2.weight, rebuilt.conv2.weight)
