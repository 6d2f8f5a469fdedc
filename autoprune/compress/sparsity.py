"""Fine-grained magnitude sparsity kept as a weight parametrization.

Each layer gets a :class:`SparsityMask` on ``weight``: the effective weight is the latent
weight where the mask is True and exactly zero elsewhere. Because the mask is applied in
every forward pass and blocks the gradient, no optimizer step (momentum and weight decay
included) can revive a pruned weight. :func:`autoprune.compress.quantize.squash` turns the
masked weights into plain parameters when fine-tuning is over.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn
from torch.nn.utils import parametrize

from autoprune.core.errors import AutopruneError, unknown_name

LAYER_TYPES = (nn.Conv2d, nn.Linear)


def compressible_layer(model: nn.Module, name: str) -> nn.Conv2d | nn.Linear:
    """The Conv2d/Linear submodule called ``name``.

    Raises:
        AutopruneError: when no Conv2d/Linear layer of ``model`` has that name.
    """
    layers = {n: m for n, m in model.named_modules() if isinstance(m, LAYER_TYPES)}
    if name not in layers:
        raise unknown_name("layer", name, list(layers))
    return layers[name]


def tensor_attr(module: nn.Module, name: str) -> torch.Tensor:
    """``getattr(module, name)`` narrowed to a tensor (a parameter, buffer or parametrized one).

    ``nn.Module.__getattr__`` is typed ``Tensor | Module``; this checks which at runtime.

    Raises:
        TypeError: when the attribute is not a tensor.
    """
    value = getattr(module, name)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{type(module).__name__}.{name} is a {type(value).__name__}, not a tensor")
    return value


def parametrization_dict(module: nn.Module) -> nn.ModuleDict:
    """``module.parametrizations``, by tensor name (the module must be parametrized)."""
    parametrizations = module.parametrizations
    # register_parametrization always stores a ModuleDict of ParametrizationLists here.
    assert isinstance(parametrizations, nn.ModuleDict)
    return parametrizations


def weight_chain(module: nn.Module) -> parametrize.ParametrizationList:
    """The ``ParametrizationList`` on ``module.weight`` (the weight must be parametrized)."""
    chain = parametrization_dict(module)["weight"]
    assert isinstance(chain, parametrize.ParametrizationList)
    return chain


def weight_parametrizations(module: nn.Module) -> list[nn.Module]:
    """The parametrizations on ``module.weight`` in the order they apply (empty if none)."""
    if not parametrize.is_parametrized(module, "weight"):
        return []
    return list(weight_chain(module))


def latent_weight(module: nn.Module) -> torch.Tensor:
    """The stored weight before any parametrization (the plain weight if none)."""
    if parametrize.is_parametrized(module, "weight"):
        return weight_chain(module).original
    return tensor_attr(module, "weight")


class SparsityMask(nn.Module):
    """Parametrization zeroing the weights where ``mask`` is False.

    Example:
        >>> layer = nn.Linear(2, 1)
        >>> with torch.no_grad():
        ...     _ = layer.weight.copy_(torch.tensor([[0.5, -2.0]]))
        >>> mask = torch.tensor([[False, True]])
        >>> _ = parametrize.register_parametrization(layer, "weight", SparsityMask(mask))
        >>> layer.weight.tolist()
        [[0.0, -2.0]]
    """

    mask: torch.Tensor

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask.detach().to(torch.bool).clone())

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return torch.where(self.mask, weight, torch.zeros((), dtype=weight.dtype))

    def extra_repr(self) -> str:
        return f"density={float(self.mask.float().mean()):.4f}"


def sparsity_mask(module: nn.Module) -> torch.Tensor | None:
    """The boolean mask of the layer's :class:`SparsityMask`, or None when unmasked."""
    for param in weight_parametrizations(module):
        if isinstance(param, SparsityMask):
            return param.mask
    return None


def magnitude_mask(
    weight: torch.Tensor, sparsity: float, pruned: torch.Tensor | None = None
) -> torch.Tensor:
    """Mask keeping all but the ``round(sparsity * n)`` smallest-magnitude weights.

    Ties are broken by position (earlier first), so the pruned count is exact.

    Args:
        weight: The weights to rank by magnitude.
        sparsity: Fraction of weights to prune, in [0, 1).
        pruned: An earlier mask (False = pruned); those weights stay pruned and count
            towards the fraction.

    Example:
        >>> magnitude_mask(torch.tensor([0.1, -0.3, 0.1, 0.2]), 0.5).tolist()
        [False, True, False, True]
    """
    _check_sparsity("weight", sparsity)
    scores = weight.detach().reshape(-1).abs()
    count = round(sparsity * scores.numel())
    if pruned is not None:
        previous = ~pruned.reshape(-1)
        scores = scores.masked_fill(previous, -math.inf)
        count = max(count, int(previous.sum()))
    order = torch.argsort(scores, stable=True)
    mask = torch.ones(scores.numel(), dtype=torch.bool, device=weight.device)
    mask[order[:count]] = False
    return mask.reshape(weight.shape)


def _check_sparsity(name: str, sparsity: float) -> None:
    if not 0.0 <= sparsity < 1.0 or math.isnan(sparsity):
        raise AutopruneError(
            f"layer '{name}': sparsity {sparsity} is outside [0, 1); "
            "use the fraction of weights to zero such as 0.9"
        )


def _check_maskable(name: str, module: nn.Module) -> None:
    others = [p for p in weight_parametrizations(module) if not isinstance(p, SparsityMask)]
    if others:
        raise AutopruneError(
            f"layer '{name}' already has a {type(others[0]).__name__} on its weight; "
            "apply sparsity before quantization (apply_weight_compression does both in order)"
        )


def apply_sparsity(model: nn.Module, sparsity: Mapping[str, float]) -> dict[str, torch.Tensor]:
    """Zero the smallest-magnitude fraction of each named layer's weights, in place.

    A layer that already has a mask is pruned further over its effective weight; pruned
    weights are never revived, so its sparsity becomes the larger of the two. Layers with
    sparsity 0 are left untouched. Biases are never pruned.

    Args:
        model: The network; named layers must be Conv2d or Linear.
        sparsity: Fraction of each layer's weights to zero, in [0, 1), by module name.

    Returns:
        The boolean mask (False = pruned) of every layer that was masked, by name.

    Raises:
        AutopruneError: for an unknown layer, a fraction outside [0, 1), or a layer
            whose weight is already quantized. Nothing is changed in that case.
    """
    modules = {}
    for name, fraction in sparsity.items():
        _check_sparsity(name, fraction)
        modules[name] = compressible_layer(model, name)
        _check_maskable(name, modules[name])
    masks = {}
    for name, fraction in sparsity.items():
        if fraction == 0.0:
            continue
        module = modules[name]
        existing = sparsity_mask(module)
        mask = magnitude_mask(latent_weight(module), fraction, existing)
        if existing is None:
            parametrize.register_parametrization(module, "weight", SparsityMask(mask))
        else:
            existing.copy_(mask)
        current = sparsity_mask(module)
        assert current is not None  # registered or updated just above
        masks[name] = current
    return masks


def sparsity_of(model: nn.Module, name: str) -> float:
    """Fraction of exactly-zero entries in the layer's current (effective) weight."""
    module = compressible_layer(model, name)
    with torch.no_grad():
        weight = module.weight
        return float((weight == 0).sum()) / weight.numel()


def mask_smallest_kept(module: nn.Module, count: int) -> int:
    """Prune ``count`` more weights of a masked layer: its smallest kept latent weights.

    Every mask on the weight (the :class:`SparsityMask` and a quantizer's copy) is updated
    in place, so the layer's codebook and codes stay as they are; one weight is always
    kept. Returns how many weights were pruned (0 for an unmasked layer).
    """
    mask = sparsity_mask(module)
    if mask is None or count <= 0:
        return 0
    flat = mask.reshape(-1)
    count = min(count, int(flat.sum()) - 1)
    if count <= 0:
        return 0
    scores = latent_weight(module).detach().reshape(-1).abs().masked_fill(~flat, math.inf)
    order = torch.argsort(scores, stable=True)[:count]
    for param in weight_parametrizations(module):
        other = getattr(param, "mask", None)
        if isinstance(other, torch.Tensor) and other is not mask:
            other.reshape(-1)[order] = False
    flat[order] = False
    return count
