"""Fold inference-mode BatchNorm into the convolution that feeds it.

In eval mode ``bn(conv(x))`` is one affine map per output channel, so it equals a single
convolution with scaled weights and a shifted bias. Folding removes a full pass over every
feature map, which is a large share of CPU inference time for small CNNs. The pairs come
from torch-pruning's dependency graph: a Conv2d whose only consumer is a BatchNorm2d that
reads nothing else. A folded model is for inference only (its BatchNorm layers become
``nn.Identity``).

Example:
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    >>> _ = net[1].running_mean.fill_(0.5)
    >>> x = torch.randn(2, 1, 6, 6)
    >>> expected = net(x)
    >>> fold_batchnorm(net, [("0", "1")])
    1
    >>> torch.allclose(net(x), expected, atol=1e-6), type(net[1]).__name__
    (True, 'Identity')
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch_pruning as tp
from torch import nn
from torch.nn.utils import parametrize


def batchnorm_pairs(graph: tp.DependencyGraph) -> list[tuple[str, str]]:
    """``(conv, batchnorm)`` names where the BatchNorm is the conv's only consumer."""
    names = {module: name for name, module in graph.model.named_modules()}
    pairs = []
    for module, node in graph.module2node.items():
        if not isinstance(module, nn.Conv2d) or len(node.outputs) != 1:
            continue
        consumer = node.outputs[0]
        if not isinstance(consumer.module, nn.BatchNorm2d) or len(consumer.inputs) != 1:
            continue
        if module in names and consumer.module in names:
            pairs.append((names[module], names[consumer.module]))
    return sorted(pairs)


@torch.no_grad()
def fold_batchnorm(model: nn.Module, pairs: Sequence[tuple[str, str]]) -> int:
    """Fold each pair's eval-mode BatchNorm into its conv, in place; returns how many.

    A pair is skipped when the conv carries a parametrization (sparsity or quantized
    weights must stay as they are) or the BatchNorm has no running statistics.
    """
    modules = dict(model.named_modules())
    folded = 0
    for conv_name, norm_name in pairs:
        conv, norm = modules.get(conv_name), modules.get(norm_name)
        if not isinstance(conv, nn.Conv2d) or not isinstance(norm, nn.BatchNorm2d):
            continue
        if parametrize.is_parametrized(conv) or norm.running_mean is None:
            continue
        assert norm.running_var is not None  # BatchNorm allocates it with running_mean
        scale = norm.running_var.add(norm.eps).rsqrt()
        if norm.weight is not None:
            scale = scale * norm.weight
        shift = -norm.running_mean * scale
        if norm.bias is not None:
            shift = shift + norm.bias
        if conv.bias is not None:
            shift = shift + conv.bias * scale
        conv.weight.mul_(scale.reshape(-1, 1, 1, 1).to(conv.weight))
        conv.bias = nn.Parameter(shift.to(conv.weight))
        owner, _, attr = norm_name.rpartition(".")
        setattr(modules[owner] if owner else model, attr, nn.Identity())
        folded += 1
    return folded
