"""Weight quantization as parametrizations, trainable with a straight-through estimator.

Two quantizers, both registered with ``torch.nn.utils.parametrize`` on ``weight`` so that
the model stays trainable and the change stays reversible until :func:`squash`:

* :class:`LinearWeightQuant`: symmetric per-output-channel levels; the latent float weight
  is kept and receives the gradient unchanged (straight-through estimator).
* :class:`KMeansWeightQuant`: Deep Compression weight sharing; the weight is
  ``centroids[assignments]`` and the centroids are the trainable parameters, so each
  centroid's gradient is the sum of the gradients of the weights that share it.

The effective weight equals :meth:`autoprune.core.qtensor.QuantizedWeight.dequantize` of
:func:`export_quantized` bit for bit (the same float32 ``scale * level`` products).

Lifecycle (as in ``torch.ao``): :func:`apply_weight_compression` (sparsity mask, then
quantizer) → fine-tune → :func:`export_quantized` → :func:`squash`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from autoprune.compress.kmeans import kmeans_1d
from autoprune.compress.sparsity import (
    apply_sparsity,
    compressible_layer,
    latent_weight,
    parametrization_dict,
    sparsity_mask,
    tensor_attr,
    weight_parametrizations,
)
from autoprune.core.errors import AutopruneError
from autoprune.core.policy import FLOAT_BITS, LayerPolicy
from autoprune.core.qtensor import QuantizedWeight, Scheme, linear_max_level


def _check_bits(bits: int) -> None:
    if not 1 <= bits <= 8:
        raise AutopruneError(f"weight bits {bits} must be 1..8; use 32 to keep float weights")


def linear_quantize(
    weight: torch.Tensor, bits: int, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-output-channel scales and integer levels of symmetric linear quantization.

    For ``bits >= 2`` the scale is ``max|w_c| / linear_max_level(bits)`` and the level
    ``round(w / scale)``; for ``bits == 1`` the level is the sign (+1 at zero) and the
    scale the mean magnitude of the unpruned weights (the L2-optimal binary scale).
    All-zero channels get scale 1 (bits >= 2) or 0 (binary).

    Args:
        weight: The weight, output channels first.
        bits: 1..8.
        mask: False where the weight is pruned (excluded from the binary scale).

    Returns:
        ``(scale, level)``: float32 scales of shape ``(C,)`` and float32 integer-valued
        levels of shape ``(C, rest)``; the weight is ``scale[:, None] * level``.
    """
    _check_bits(bits)
    flat = weight.detach().to(torch.float32).reshape(weight.shape[0], -1)
    if bits == 1:
        keep = torch.ones_like(flat) if mask is None else mask.reshape(flat.shape).to(flat.dtype)
        scale = (flat.abs() * keep).sum(1) / keep.sum(1).clamp(min=1.0)
        level = torch.where(flat >= 0, 1.0, -1.0)
        return scale, level
    top = linear_max_level(bits)
    scale = flat.abs().amax(1) / top
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    level = torch.clamp(torch.round(flat / scale[:, None]), -top, top)
    return scale, level


def _masked(value: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return value
    return torch.where(mask, value, torch.zeros((), dtype=value.dtype))


class _LinearSTE(torch.autograd.Function):
    """Quantize in forward; pass the gradient straight through (masked) in backward."""

    @staticmethod
    def forward(
        ctx: Any, weight: torch.Tensor, bits: int, mask: torch.Tensor | None
    ) -> torch.Tensor:
        ctx.mask = mask
        scale, level = linear_quantize(weight, bits, mask)
        value = (scale[:, None] * level).reshape(weight.shape)
        return _masked(value, mask).to(weight.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return _masked(grad, ctx.mask), None, None


class LinearWeightQuant(nn.Module):
    """Parametrization: symmetric per-output-channel linear quantization with an STE.

    Example:
        >>> layer = nn.Linear(4, 2)
        >>> _ = parametrize.register_parametrization(layer, "weight", LinearWeightQuant(1))
        >>> [len(set(row)) for row in layer.weight.abs().tolist()]
        [1, 1]
    """

    mask: torch.Tensor | None

    def __init__(self, bits: int, mask: torch.Tensor | None = None) -> None:
        super().__init__()
        _check_bits(bits)
        self.bits = bits
        self.register_buffer("mask", None if mask is None else mask.detach().to(torch.bool).clone())

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return _LinearSTE.apply(weight, self.bits, self.mask)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, masked={self.mask is not None}"

    def encode(self, weight: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Codes (int32, flat) and float32 scales for :class:`QuantizedWeight`."""
        scale, level = linear_quantize(weight, self.bits, self.mask)
        offset = 0.0 if self.bits == 1 else float(linear_max_level(self.bits))
        code = (level.clamp(min=0) if self.bits == 1 else level + offset).to(torch.int32)
        return code.reshape(-1).cpu().numpy(), scale.cpu().numpy()


class KMeansWeightQuant(nn.Module):
    """Parametrization: shared centroids indexed by fixed per-weight assignments.

    The latent weight is ignored; ``centroids`` is the trainable parameter, so autograd
    gives each centroid the sum of its members' gradients (Deep Compression fine-tuning).

    Example:
        >>> quant = KMeansWeightQuant(torch.tensor([-1.0, 1.0]), torch.tensor([[1, 0]]), bits=1)
        >>> quant(torch.zeros(1, 2)).tolist()
        [[1.0, -1.0]]
    """

    assignments: torch.Tensor
    mask: torch.Tensor | None

    def __init__(
        self,
        centroids: torch.Tensor,
        assignments: torch.Tensor,
        mask: torch.Tensor | None = None,
        bits: int | None = None,
    ) -> None:
        super().__init__()
        count = centroids.numel()
        self.bits = bits if bits is not None else max(1, (count - 1).bit_length())
        _check_bits(self.bits)
        assert count <= 2**self.bits, "more centroids than codes"
        self.centroids = nn.Parameter(centroids.detach().to(torch.float32).clone())
        self.register_buffer("assignments", assignments.detach().to(torch.int64).clone())
        self.register_buffer("mask", None if mask is None else mask.detach().to(torch.bool).clone())

    @classmethod
    def fit(
        cls, weight: torch.Tensor, bits: int, mask: torch.Tensor | None = None
    ) -> KMeansWeightQuant:
        """Cluster the unpruned entries of ``weight`` with linear-init k-means."""
        flat = weight.detach().reshape(-1)
        keep = torch.ones_like(flat, dtype=torch.bool) if mask is None else mask.reshape(-1)
        centroids, members = kmeans_1d(flat[keep], bits)
        assignments = torch.zeros(flat.numel(), dtype=torch.int64, device=flat.device)
        assignments[keep] = members
        return cls(centroids, assignments.reshape(weight.shape), mask, bits)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return _masked(self.centroids[self.assignments], self.mask).to(weight.dtype)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, centroids={self.centroids.numel()}"

    def encode(self, weight: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Codes (int32, flat) and float32 centroids for :class:`QuantizedWeight`."""
        codes = self.assignments.reshape(-1).to(torch.int32).cpu().numpy()
        return codes, self.centroids.detach().to(torch.float32).cpu().numpy()


WeightQuantizer = LinearWeightQuant | KMeansWeightQuant


def _quantizer(module: nn.Module) -> WeightQuantizer | None:
    found = [p for p in weight_parametrizations(module) if isinstance(p, WeightQuantizer)]
    return found[0] if found else None


def _checked_layers(
    model: nn.Module, layers: Mapping[str, LayerPolicy]
) -> dict[str, nn.Conv2d | nn.Linear]:
    """Validate every entry before anything is changed; return the modules by name."""
    modules = {}
    for name, layer in layers.items():
        layer.check(name)
        modules[name] = compressible_layer(model, name)
        if layer.w_bits != FLOAT_BITS and _quantizer(modules[name]) is not None:
            raise AutopruneError(
                f"layer '{name}' is already quantized; call squash(model) first or "
                "quantize a fresh copy of the model"
            )
    return modules


def quantize_weights(model: nn.Module, layers: Mapping[str, LayerPolicy]) -> None:
    """Register the policy's weight quantizer on every layer whose ``w_bits`` is not 32.

    A layer's existing sparsity mask is respected: k-means clusters only the unpruned
    weights and pruned weights stay exactly zero under both quantizers.

    Raises:
        AutopruneError: for an unknown layer, a bad policy field, or a layer already
            quantized. Nothing is changed in that case.
    """
    modules = _checked_layers(model, layers)
    for name, layer in layers.items():
        if layer.w_bits == FLOAT_BITS:
            continue
        module = modules[name]
        mask = sparsity_mask(module)
        if layer.quantizer == "kmeans":
            quant: nn.Module = KMeansWeightQuant.fit(module.weight, layer.w_bits, mask)
        else:
            quant = LinearWeightQuant(layer.w_bits, mask)
        parametrize.register_parametrization(module, "weight", quant)


def apply_weight_compression(model: nn.Module, layers: Mapping[str, LayerPolicy]) -> None:
    """Fine-grained sparsity, then weight quantization on top of the mask, in place.

    Example:
        >>> model = nn.Sequential(nn.Linear(8, 4))
        >>> apply_weight_compression(model, {"0": LayerPolicy(w_bits=2, sparsity=0.5)})
        >>> int((model[0].weight == 0).sum()) >= 16
        True
    """
    _checked_layers(model, layers)
    apply_sparsity(model, {n: p.sparsity for n, p in layers.items() if p.sparsity > 0})
    quantize_weights(model, {n: p for n, p in layers.items() if p.w_bits != FLOAT_BITS})


def _quantizer_input(module: nn.Module, quant: nn.Module) -> torch.Tensor:
    """The tensor the quantizer receives: the latent weight after earlier parametrizations."""
    chain = weight_parametrizations(module)
    if chain[-1] is not quant:
        raise AutopruneError(
            "cannot export a weight with a parametrization after its quantizer; "
            "register the quantizer last (apply_weight_compression does)"
        )
    value = latent_weight(module)
    for param in chain[:-1]:
        value = param(value)
    return value


def export_layer(module: nn.Module) -> QuantizedWeight:
    """One layer's current effective weight in coded form (see :func:`export_quantized`)."""
    mask = sparsity_mask(module)
    flat_mask = None if mask is None else mask.reshape(-1).cpu().numpy().copy()
    shape = tuple(tensor_attr(module, "weight").shape)
    with torch.no_grad():
        quant = _quantizer(module)
        if quant is None:
            weight = tensor_attr(module, "weight")
            values = weight.detach().to(torch.float32).reshape(-1).cpu().numpy()
            empty = np.zeros(0, dtype=np.int32)
            return QuantizedWeight(shape, "float", FLOAT_BITS, empty, values.copy(), flat_mask)
        codes, codebook = quant.encode(_quantizer_input(module, quant))
    scheme: Scheme = "kmeans" if isinstance(quant, KMeansWeightQuant) else "linear"
    return QuantizedWeight(shape, scheme, quant.bits, codes, codebook, flat_mask)


def export_quantized(model: nn.Module, layer_names: Iterable[str]) -> dict[str, QuantizedWeight]:
    """Read each named layer's weight into a :class:`QuantizedWeight`.

    Call it before :func:`squash`: a squashed or never-quantized layer is exported with
    the ``float`` scheme. ``dequantize()`` of each result equals the layer's current
    effective weight bit for bit.
    """
    return {name: export_layer(compressible_layer(model, name)) for name in layer_names}


def independent_copy(model: nn.Module) -> nn.Module:
    """A deep copy that can be :func:`squash`-ed without touching ``model``.

    ``copy.deepcopy`` shares the class torch injects into each parametrized module, and
    removing a parametrization deletes the weight's property from that class, so squashing
    a plain copy would break the original. Each copied module gets a class of its own.
    """
    clone = copy.deepcopy(model)
    for module in clone.modules():
        if parametrize.is_parametrized(module):
            cls = type(module)
            module.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))
    return clone


def squash(model: nn.Module) -> nn.Module:
    """Remove every parametrization, keeping the effective weights as plain parameters.

    Activation quantizers (``autoprune.compress.act_quant``) are not touched.
    Returns the same model, changed in place.
    """
    parametrized = [m for m in model.modules() if parametrize.is_parametrized(m)]
    for module in parametrized:
        for tensor_name in list(parametrization_dict(module).keys()):
            parametrize.remove_parametrizations(module, tensor_name, leave_parametrized=True)
    return model
