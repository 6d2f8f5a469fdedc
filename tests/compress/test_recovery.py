from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autoprune.compress.pruning import prune_channels_report
from autoprune.compress.recovery import recalibrate_bn, reconstruct_next_layer
from autoprune.core.errors import AutopruneError


def _blobs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two separable classes: bright left half (0) or bright right half (1), plus noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    x = 0.5 * torch.randn(n, 1, 8, 8, generator=g)
    x[labels == 0, :, :, :4] += 1.0
    x[labels == 1, :, :, 4:] += 1.0
    return x, labels


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).float().mean())


def _trained_chain(make_tiny_model) -> nn.Module:
    """A few steps of plain gradient descent (no torch.optim: its first use imports dynamo)."""
    model = make_tiny_model("chain").train()
    for step in range(30):
        x, y = _blobs(64, seed=step)
        model.zero_grad()
        F.cross_entropy(model(x), y).backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
    return model.eval()


def test_recalibration_restores_accuracy_lost_to_stale_statistics(make_tiny_model):
    model = _trained_chain(make_tiny_model)
    x_val, y_val = _blobs(256, seed=1000)
    trained = _accuracy(model, x_val, y_val)
    assert trained > 0.9
    with torch.no_grad():  # statistics of some other network (what pruning leaves behind)
        for norm in (model.bn1, model.bn2, model.bn3):
            norm.running_mean.add_(3.0)
            norm.running_var.mul_(25.0)
    stale = _accuracy(model, x_val, y_val)
    batches = [_blobs(64, seed=500 + i) for i in range(5)]
    recalibrate_bn(model, batches, num_batches=5)
    assert stale < 0.75
    assert _accuracy(model, x_val, y_val) > 0.9


def test_recalibration_computes_the_exact_mean_and_restores_state(make_tiny_model):
    model = make_tiny_model("chain")
    model.bn2.momentum = 0.3
    batches = [torch.randn(4, 1, 8, 8) for _ in range(3)]
    seen = []
    handle = model.bn2.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach()))
    recalibrate_bn(model, batches + [torch.randn(4, 1, 8, 8)], num_batches=3)
    handle.remove()
    assert len(seen) == 3
    inputs = torch.cat(seen)
    assert torch.allclose(model.bn2.running_mean, inputs.mean(dim=(0, 2, 3)), atol=1e-6)
    assert model.bn2.momentum == 0.3
    assert not any(m.training for m in model.modules())


def test_recalibration_rejects_empty_input(make_tiny_model):
    model = make_tiny_model("chain")
    mean = model.bn1.running_mean.clone()
    with pytest.raises(AutopruneError, match="no batches"):
        recalibrate_bn(model, [])
    with pytest.raises(AutopruneError, match="num_batches"):
        recalibrate_bn(model, [torch.zeros(2, 1, 8, 8)], num_batches=0)
    assert torch.equal(model.bn1.running_mean, mean)


def _layer_error(original, pruned, name, rows, x) -> float:
    outs = {}
    hooks = [
        original.get_submodule(name).register_forward_hook(lambda m, a, o: outs.update(orig=o)),
        pruned.get_submodule(name).register_forward_hook(lambda m, a, o: outs.update(new=o)),
    ]
    with torch.no_grad():
        original(x)
        pruned(x)
    for h in hooks:
        h.remove()
    target = outs["orig"][:, rows]
    return float((outs["new"] - target).pow(2).sum() / target.pow(2).sum())


@pytest.mark.parametrize(
    ("name", "keep", "layer"),
    [
        ("chain", {"conv2": 0.5}, "conv3"),  # conv with bias
        ("chain", {"conv2": 0.5, "conv3": 0.5}, "conv3"),  # its own outputs pruned too
        ("chain", {"conv3": 0.5}, "fc1"),  # flatten -> linear
        ("grouped", {"conv1.0": 0.5}, "group2.0"),  # groups=2
        ("inverted_residual", {"expand.0": 0.5}, "project.0"),  # after a depthwise
    ],
)
def test_least_squares_reduces_the_next_layer_error(make_tiny_model, name, keep, layer):
    original = make_tiny_model(name)
    pruned = copy.deepcopy(original)
    report = prune_channels_report(pruned, torch.zeros(1, 1, 8, 8), keep)
    assert layer in report.input_pruned
    calib = [torch.randn(16, 1, 8, 8) for _ in range(4)]
    held_out = torch.randn(32, 1, 8, 8)
    rows = report.kept_out.get(layer, slice(None))
    plain = _layer_error(original, pruned, layer, rows, held_out)
    errors = reconstruct_next_layer(original, pruned, calib, [layer], kept_out=report.kept_out)
    refit = _layer_error(original, pruned, layer, rows, held_out)
    before, after = errors[layer]
    assert after < before
    assert refit < 0.9 * plain


def test_design_rows_reproduce_an_unpruned_layer_exactly(make_tiny_model):
    for name, layer in (("chain", "conv3"), ("grouped", "group4.0"), ("chain", "fc1")):
        original = make_tiny_model(name)
        copy_ = copy.deepcopy(original)
        errors = reconstruct_next_layer(original, copy_, [torch.randn(4, 1, 8, 8)], [layer])
        assert errors[layer][0] < 1e-10


def test_reconstruction_needs_the_kept_outputs_when_outputs_shrank(make_tiny_model):
    original = make_tiny_model("chain")
    pruned = copy.deepcopy(original)
    prune_channels_report(pruned, torch.zeros(1, 1, 8, 8), {"conv2": 0.5, "conv3": 0.5})
    batches = [torch.randn(4, 1, 8, 8)]
    with pytest.raises(AutopruneError, match="kept_out"):
        reconstruct_next_layer(original, pruned, batches, ["conv3"])
    with pytest.raises(AutopruneError, match="unknown layer 'bn3'"):
        reconstruct_next_layer(original, pruned, batches, ["bn3"])
    with pytest.raises(AutopruneError, match="no batches"):
        reconstruct_next_layer(original, pruned, [], ["conv3"])
