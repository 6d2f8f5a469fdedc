"""The one-pass recovery: BatchNorm statistics and least-squares refits in execution order."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autoprune.compress.pruning import prune_channels_report
from autoprune.compress.refit import ReconstructionTargets, _design, recover
from autoprune.compress.sparsity import apply_sparsity, sparsity_mask
from autoprune.core.errors import AutopruneError


def _inputs_of(model: nn.Module, names: list[str], x: torch.Tensor) -> dict[str, torch.Tensor]:
    seen: dict[str, torch.Tensor] = {}
    hooks = [
        model.get_submodule(n).register_forward_pre_hook(
            lambda m, a, n=n: seen.setdefault(n, a[0].detach().clone())
        )
        for n in names
    ]
    with torch.no_grad():
        model.eval()(x)
    for hook in hooks:
        hook.remove()
    return seen


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "mode"),
    [(1, 1, 1, "zeros"), (2, 0, 1, "zeros"), (1, 2, 2, "zeros"), (1, 1, 1, "reflect")],
)
def test_design_rows_are_the_unfolded_patches(memory_format, stride, padding, dilation, mode):
    layer = nn.Conv2d(3, 5, 3, stride, padding, dilation, padding_mode=mode)
    x = torch.randn(2, 3, 9, 9).contiguous(memory_format=memory_format)
    padded = F.pad(
        x, layer._reversed_padding_repeated_twice, mode="constant" if mode == "zeros" else mode
    )
    cols = F.unfold(padded, 3, dilation=dilation, stride=stride)  # (N, C*9, L)
    expected = cols.transpose(1, 2).reshape(-1, cols.shape[1])
    rows = torch.tensor([0, 3, len(expected) - 1, len(expected) // 2])
    assert torch.equal(_design(layer, x, rows), expected[rows].float())
    # and the rows fit the layer's own output exactly
    out = layer(x).permute(0, 2, 3, 1).reshape(-1, 5)
    weight = layer.weight.reshape(5, -1)
    assert torch.allclose(_design(layer, x, rows) @ weight.T + layer.bias, out[rows], atol=1e-5)


def test_batchnorm_statistics_are_those_of_the_inputs_the_pass_produced(make_tiny_model):
    model = make_tiny_model("chain")
    with torch.no_grad():
        for norm in (model.bn1, model.bn2, model.bn3):
            norm.running_mean.add_(3.0)
            norm.running_var.mul_(9.0)
    calib = torch.randn(32, 1, 8, 8)
    recover(model, calib)
    inputs = _inputs_of(model, ["bn1", "bn2", "bn3"], calib)  # with the new statistics
    for name, x in inputs.items():
        norm = model.get_submodule(name)
        assert torch.allclose(norm.running_mean, x.mean(dim=(0, 2, 3)), atol=1e-5), name
        assert torch.allclose(norm.running_var, x.var(dim=(0, 2, 3)), rtol=1e-4), name
    assert not any(m.training for m in model.modules())


@pytest.mark.parametrize(
    ("name", "keep", "layer"),
    [
        ("chain", {"conv2": 0.5}, "conv3"),
        ("chain", {"conv2": 0.5, "conv3": 0.5}, "conv3"),
        ("chain", {"conv3": 0.5}, "fc1"),
        ("grouped", {"conv1.0": 0.5}, "group2.0"),
        ("inverted_residual", {"expand.0": 0.5}, "project.0"),
    ],
)
def test_refit_is_the_ridge_solution_toward_the_pruned_weights(make_tiny_model, name, keep, layer):
    original = make_tiny_model(name)
    calib = torch.randn(24, 1, 8, 8)
    targets = ReconstructionTargets.record(original, calib, max_rows=200)
    pruned = copy.deepcopy(original)
    report = prune_channels_report(pruned, calib[:1], keep)
    module = pruned.get_submodule(layer)
    start = module.weight.detach().double().reshape(module.weight.shape[0], -1).clone()
    errors = recover(
        pruned,
        calib,
        targets=targets,
        refit=report.input_pruned,
        kept_out=report.kept_out,
        ridge=(1e-2,),
    )
    before, after = errors[layer]
    assert after < before  # on held-out rows
    # the refitted layer's inputs (what the pass gave it) and its new weights solve the
    # normal equations of min ||a w - t||² + λ||w - w0||² (float64, group by group)
    x = _inputs_of(pruned, [layer], calib)[layer]
    recorded = targets.layers[layer]
    design = _design(module, x, recorded.rows).double()
    target = recorded.output.double()
    if layer in report.kept_out:
        target = target[:, list(report.kept_out[layer])]
    groups = getattr(module, "groups", 1)
    weight = module.weight.detach().double().reshape(module.weight.shape[0], -1)
    cols, outs = weight.shape[1], weight.shape[0] // groups
    for g in range(groups):
        a = design[:, g * cols : (g + 1) * cols]
        t = target[:, g * outs : (g + 1) * outs]
        w = weight[g * outs : (g + 1) * outs].T
        w0 = start[g * outs : (g + 1) * outs].T
        lam = 1e-2 * (a * a).sum(0).mean()
        residual = a.T @ (a @ w - t) + lam * (w - w0)
        assert residual.abs().max() < 1e-3 * (a.T @ t).abs().max()


def test_an_underdetermined_refit_stays_near_the_pruned_weights(make_tiny_model):
    """Fewer rows than inputs (a linear layer on a few images): no overfitting."""
    original = make_tiny_model("chain")
    calib, held_out = torch.randn(12, 1, 8, 8), torch.randn(64, 1, 8, 8)
    targets = ReconstructionTargets.record(original, calib)
    pruned = copy.deepcopy(original)
    report = prune_channels_report(pruned, calib[:1], {"conv3": 0.5})
    plain = copy.deepcopy(pruned)
    recover(pruned, calib, targets=targets, refit=["fc1"], batchnorm=False)
    recover(plain, calib, batchnorm=False)

    def error(model: nn.Module) -> float:
        outputs = _inputs_of(model, ["fc2"], held_out)["fc2"]
        reference = _inputs_of(original, ["fc2"], held_out)["fc2"]
        return float((outputs - reference).pow(2).mean())

    assert "fc1" in report.input_pruned
    assert error(pruned) <= error(plain) * 1.01


def test_refit_needs_targets_and_a_known_layer(make_tiny_model):
    model = make_tiny_model("chain")
    calib = torch.randn(4, 1, 8, 8)
    with pytest.raises(AutopruneError, match="targets"):
        recover(model, calib, refit=["conv2"])
    targets = ReconstructionTargets.record(model, calib)
    with pytest.raises(AutopruneError, match="'bn2' cannot be refitted"):
        recover(model, calib, targets=targets, refit=["bn2"])


@pytest.mark.parametrize("layer", [nn.Linear(40, 12), nn.Conv2d(3, 6, 3, padding=1)])
def test_a_sparse_layer_is_refitted_over_its_kept_weights_only(layer):
    torch.manual_seed(0)
    model = nn.Sequential(layer).eval()
    inputs, fresh = _correlated(layer).chunk(2)
    targets = ReconstructionTargets.record(model, inputs)
    sparse = copy.deepcopy(model)
    apply_sparsity(sparse, {"0": 0.8})
    mask = sparsity_mask(sparse[0]).clone()
    pruned = sparse[0].weight.detach().clone()
    errors = recover(sparse, inputs, targets=targets, refit=["0"], batchnorm=False)
    before, after = errors["0"]
    assert after < 0.9 * before  # the kept weights make up for part of the pruned ones
    assert torch.equal(sparsity_mask(sparse[0]), mask)
    weight = sparse[0].weight.detach()
    assert torch.all(weight[~mask] == 0) and not torch.equal(weight, pruned)
    # the refit output is closer to the original on fresh inputs too
    original = model(fresh)
    refit_error = (sparse(fresh) - original).pow(2).sum()
    masked = copy.deepcopy(model)
    apply_sparsity(masked, {"0": 0.8})
    assert refit_error < (masked(fresh) - original).pow(2).sum()


def _correlated(layer: nn.Module) -> torch.Tensor:
    """Inputs with correlated features (with independent ones, the kept weights are already
    the best fit and nothing can be made up)."""
    if isinstance(layer, nn.Linear):
        return torch.randn(512, 8) @ torch.randn(8, 40) + 0.1 * torch.randn(512, 40)
    smooth = F.interpolate(torch.randn(64, 1, 4, 4), size=(8, 8), mode="bilinear")
    return smooth.repeat(1, 3, 1, 1) + 0.1 * torch.randn(64, 3, 8, 8)
