"""Accuracy recovery without training: BatchNorm recalibration and least-squares reconstruction.

* :func:`recalibrate_bn` re-estimates BatchNorm running statistics on a few batches; after
  channels are removed the stored statistics no longer describe the activations.
* :func:`reconstruct_next_layer` is AMC's channel reconstruction: a layer whose *input*
  channels were pruned gets new weights fitted by ridge least squares, so that on calibration
  data its output matches what the original model's layer produced.

Example:
    >>> import copy
    >>> from autoprune.compress.pruning import prune_channels_report
    >>> model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3))
    >>> pruned = copy.deepcopy(model)
    >>> report = prune_channels_report(pruned, torch.zeros(1, 1, 8, 8), {"0": 0.5})
    >>> batches = [torch.randn(4, 1, 8, 8) for _ in range(2)]
    >>> errors = reconstruct_next_layer(
    ...     model, pruned, batches, report.input_pruned, kept_out=report.kept_out)
    >>> errors["2"][1] <= errors["2"][0]
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import chain, islice

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from autoprune.compress.importance import Batch, split_batch
from autoprune.errors import AutopruneError, unknown_name
from autoprune.modes import eval_mode


def recalibrate_bn(model: nn.Module, batches: Iterable[Batch], num_batches: int = 20) -> nn.Module:
    """Reset and re-estimate every BatchNorm's running mean/var on up to ``num_batches`` batches.

    Statistics are a cumulative average (``momentum=None``) computed in train mode for the
    BatchNorm layers only (dropout and the rest stay in eval mode), without gradients. Every
    module's training flag and momentum is restored afterwards. Returns ``model``.

    Raises:
        AutopruneError: when ``num_batches`` < 1 or ``batches`` is empty.
    """
    if num_batches < 1:
        raise AutopruneError(f"num_batches={num_batches} must be at least 1")
    iterator = iter(batches)
    first = next(iterator, None)
    if first is None:
        raise AutopruneError("recalibrate_bn got no batches; pass at least one training batch")
    norms = [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]
    if not norms:
        return model
    momenta = {m: m.momentum for m in norms}
    device = _device(model)
    try:
        with eval_mode(model), torch.no_grad():
            for norm in norms:
                norm.reset_running_stats()
                norm.momentum = None
                norm.train()
            for batch in chain([first], islice(iterator, num_batches - 1)):
                model(split_batch(batch)[0].to(device))
    finally:
        for norm, momentum in momenta.items():
            norm.momentum = momentum
    return model


def reconstruct_next_layer(
    original: nn.Module,
    pruned: nn.Module,
    calib_batches: Iterable[Batch],
    layer_names: Sequence[str],
    *,
    kept_out: Mapping[str, Sequence[int]] | None = None,
    num_batches: int = 4,
    max_rows: int = 4096,
    ridge: float = 1e-4,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Refit the weights of ``layer_names`` in ``pruned`` by least squares (AMC).

    For each layer (give them in run order, as :attr:`PruneReport.input_pruned` does) the
    inputs are taken from the pruned model and the targets are the original model's outputs
    of the same layer, on up to ``max_rows`` random positions (conv, via im2col) or samples
    (linear). The bias is kept; weights change only when the fit lowers the error.

    Args:
        original: The unpruned model (left untouched).
        pruned: The pruned copy, refitted in place.
        calib_batches: Batches of inputs (tensors or ``(inputs, targets)``).
        layer_names: Conv2d/Linear layers whose input channels were pruned.
        kept_out: Original output channels kept per layer (``PruneReport.kept_out``);
            needed for layers whose own outputs were pruned too.
        num_batches: Batches used.
        max_rows: Rows of the least-squares problem per layer.
        ridge: Ridge strength relative to the mean squared input.
        seed: Seed of the position sampling.

    Returns:
        Per layer, the relative squared error of the bias-free output ``(before, after)`` on
        the sampled rows.
    """
    batches = [split_batch(b)[0] for b in islice(calib_batches, num_batches)]
    if not batches:
        raise AutopruneError("reconstruct_next_layer got no batches; pass calibration batches")
    generator = torch.Generator().manual_seed(seed)
    per_batch = max(1, max_rows // len(batches))
    targets = _outputs(original, layer_names, batches)
    errors = {}
    for name in layer_names:
        layer = _layer(pruned, name)
        rows = _kept_rows(name, layer, targets[name][0], kept_out)
        inputs = _outputs(pruned, [name], batches, capture_input=True)[name]
        design, target = [], []
        for x, y in zip(inputs, targets[name], strict=True):
            a, t = _rows(layer, x, y[:, rows], per_batch, generator)
            design.append(a)
            target.append(t)
        errors[name] = _refit(layer, torch.cat(design), torch.cat(target), ridge)
    return errors


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _layer(model: nn.Module, name: str) -> nn.Conv2d | nn.Linear:
    layers = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if name not in layers:
        raise unknown_name("layer", name, layers)
    module = model.get_submodule(name)
    if parametrize.is_parametrized(module):
        raise AutopruneError(
            f"layer '{name}' carries a parametrization; reconstruct before sparsity/quantization"
        )
    return module


def _kept_rows(
    name: str,
    layer: nn.Module,
    reference: torch.Tensor,
    kept_out: Mapping[str, Sequence[int]] | None,
) -> list[int]:
    outputs = layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features
    channel_dim = 1 if isinstance(layer, nn.Conv2d) else reference.dim() - 1
    original = reference.shape[channel_dim]
    rows = list(kept_out[name]) if kept_out and name in kept_out else list(range(original))
    if len(rows) != outputs:
        raise AutopruneError(
            f"layer '{name}' has {outputs} outputs but the original has {original}; pass "
            "kept_out=report.kept_out from prune_channels_report"
        )
    return rows


def _outputs(
    model: nn.Module, names: Sequence[str], batches: list[torch.Tensor], capture_input: bool = False
) -> dict[str, list[torch.Tensor]]:
    """Outputs (or inputs) of the named layers on every batch, in eval mode without gradients."""
    store: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    handles = []
    for name in names:
        module = _layer(model, name)
        if capture_input:
            hook = lambda mod, args, name=name: store[name].append(args[0].detach())  # noqa: E731
            handles.append(module.register_forward_pre_hook(hook))
        else:
            hook = lambda mod, args, out, name=name: store[name].append(out.detach())  # noqa: E731
            handles.append(module.register_forward_hook(hook))
    device = _device(model)
    try:
        with eval_mode(model), torch.no_grad():
            for x in batches:
                model(x.to(device))
    finally:
        for handle in handles:
            handle.remove()
    return store


def _rows(
    layer: nn.Module, x: torch.Tensor, y: torch.Tensor, count: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random subset of least-squares rows: inputs ``(n, in*kh*kw)``, targets ``(n, out)``."""
    if isinstance(layer, nn.Conv2d):
        if layer.padding_mode == "zeros":
            x = F.pad(x, layer._reversed_padding_repeated_twice)
        else:
            x = F.pad(x, layer._reversed_padding_repeated_twice, mode=layer.padding_mode)
        cols = F.unfold(x, layer.kernel_size, dilation=layer.dilation, stride=layer.stride)
        design = cols.transpose(1, 2).reshape(-1, cols.shape[1])
        target = y.flatten(2).transpose(1, 2).reshape(-1, y.shape[1])
    else:
        design = x.reshape(-1, x.shape[-1])
        target = y.reshape(-1, y.shape[-1])
    if design.shape[0] > count:
        pick = torch.randperm(design.shape[0], generator=generator)[:count].to(design.device)
        design, target = design[pick], target[pick]
    if layer.bias is not None:
        target = target - layer.bias.detach()
    return design.double().cpu(), target.double().cpu()


def _refit(
    layer: nn.Module, design: torch.Tensor, target: torch.Tensor, ridge: float
) -> tuple[float, float]:
    """Solve the (per conv group) ridge problems; keep the new weights only if they fit better."""
    weight = layer.weight.detach()
    groups = layer.groups if isinstance(layer, nn.Conv2d) else 1
    old = weight.reshape(weight.shape[0], -1).double().cpu()
    new = torch.empty_like(old)
    cols, outs = old.shape[1], old.shape[0] // groups
    for g in range(groups):
        a = design[:, g * cols : (g + 1) * cols]
        t = target[:, g * outs : (g + 1) * outs]
        new[g * outs : (g + 1) * outs] = _ridge_solve(a, t, ridge).T
    before = _relative_error(design, target, old, groups)
    after = _relative_error(design, target, new, groups)
    if after < before:
        with torch.no_grad():
            layer.weight.copy_(new.reshape(weight.shape).to(weight))
        return before, after
    return before, before


def _ridge_solve(a: torch.Tensor, t: torch.Tensor, ridge: float) -> torch.Tensor:
    """argmin_w ||a w - t||² + λ||w||², λ = ridge x mean squared column of ``a``."""
    lam = ridge * float(a.pow(2).sum(dim=0).mean()) + 1e-12
    eye = torch.eye(a.shape[1], dtype=a.dtype) * lam**0.5
    stacked_a = torch.cat([a, eye])
    stacked_t = torch.cat([t, torch.zeros(a.shape[1], t.shape[1], dtype=t.dtype)])
    return torch.linalg.lstsq(stacked_a, stacked_t).solution


def _relative_error(
    design: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, groups: int
) -> float:
    cols, outs = weight.shape[1], weight.shape[0] // groups
    pred = torch.cat(
        [
            design[:, g * cols : (g + 1) * cols] @ weight[g * outs : (g + 1) * outs].T
            for g in range(groups)
        ],
        dim=1,
    )
    return float((pred - target).pow(2).sum() / target.pow(2).sum().clamp(min=1e-12))
