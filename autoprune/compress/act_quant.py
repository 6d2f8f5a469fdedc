"""Fake quantization of each layer's input activations (asymmetric, per tensor).

:func:`attach_activation_quant` gives each chosen Conv2d/Linear layer an
:class:`ActivationFakeQuant` child (``layer.input_quant``) and a forward pre-hook that
passes the layer's input through it. The lifecycle follows ``torch.ao``: attach →
:func:`calibrate_activations` (observe min/max on a few batches, then freeze scale and
zero point) → evaluate or fine-tune (the gradient passes straight through inside the
range) → :func:`remove_activation_quant`.

Uncalibrated quantizers pass their input through unchanged. The hook is a module-level
function that looks the quantizer up on the layer, so models survive ``copy.deepcopy``
and ``torch.onnx.export`` (TorchScript exporter; 8-bit exports as QuantizeLinear /
DequantizeLinear, fewer bits as plain Round/Clip arithmetic).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from autoprune.compress.sparsity import compressible_layer
from autoprune.core.errors import AutopruneError
from autoprune.core.modes import eval_mode
from autoprune.core.policy import FLOAT_BITS, LayerPolicy

ATTRIBUTE = "input_quant"
"""Name of the quantizer child module on each quantized layer."""


class ActivationFakeQuant(nn.Module):
    """Asymmetric per-tensor fake quantizer with a min/max observer.

    Example:
        >>> quant = ActivationFakeQuant(2)
        >>> quant.observe(torch.tensor([0.0, 3.0]))
        >>> quant.freeze()
        >>> quant(torch.tensor([0.4, 1.6, 9.0])).tolist()
        [0.0, 2.0, 3.0]
    """

    min_val: torch.Tensor
    max_val: torch.Tensor
    scale: torch.Tensor
    zero_point: torch.Tensor

    def __init__(self, bits: int) -> None:
        super().__init__()
        if not 2 <= bits <= 8:
            raise AutopruneError(f"activation bits {bits} must be 2..8; use 32 to keep float")
        self.bits = bits
        self.calibrated = False
        self.observing = False
        self.register_buffer("min_val", torch.tensor(float("inf")))
        self.register_buffer("max_val", torch.tensor(float("-inf")))
        self.register_buffer("scale", torch.tensor(1.0))
        self.register_buffer("zero_point", torch.tensor(0, dtype=torch.int32))
        self.register_load_state_dict_post_hook(_sync_calibrated)

    @property
    def quant_max(self) -> int:
        """Largest integer code (the smallest is 0)."""
        return 2**self.bits - 1

    def reset(self) -> None:
        """Forget the observed range and return to pass-through."""
        self.min_val.fill_(float("inf"))
        self.max_val.fill_(float("-inf"))
        self.calibrated = False

    def observe(self, x: torch.Tensor) -> None:
        """Widen the observed range to cover ``x``."""
        with torch.no_grad():
            self.min_val.copy_(torch.minimum(self.min_val, x.detach().min().float()))
            self.max_val.copy_(torch.maximum(self.max_val, x.detach().max().float()))

    def freeze(self) -> None:
        """Fix scale and zero point from the observed range (which is widened to hold 0)."""
        if not bool(self.min_val <= self.max_val):
            return
        with torch.no_grad():
            low = torch.clamp(self.min_val, max=0.0)
            high = torch.clamp(self.max_val, min=0.0)
            eps = torch.finfo(torch.float32).eps
            self.scale.copy_(torch.clamp((high - low) / self.quant_max, min=eps))
            zero = torch.clamp(torch.round(-low / self.scale), 0, self.quant_max)
            self.zero_point.copy_(zero.to(torch.int32))
        self.calibrated = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observing:
            self.observe(x)
            return x
        if not self.calibrated:
            return x
        if self.bits != 8 and torch.onnx.is_in_onnx_export():
            codes = torch.round(x * (1.0 / self.scale)) + self.zero_point
            return (torch.clamp(codes, 0, self.quant_max) - self.zero_point) * self.scale
        return torch.fake_quantize_per_tensor_affine(
            x, self.scale, self.zero_point, 0, self.quant_max
        )

    def extra_repr(self) -> str:
        return f"bits={self.bits}, calibrated={self.calibrated}"


def _sync_calibrated(module: ActivationFakeQuant, incompatible_keys: Any) -> None:
    """After ``load_state_dict``: a loaded observed range means a frozen quantizer."""
    module.calibrated = bool(module.min_val <= module.max_val)


def _quantize_input(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Forward pre-hook: fake-quantize the first positional input."""
    quant = getattr(module, ATTRIBUTE)
    return (quant(args[0]), *args[1:])


def _quantizers(model: nn.Module) -> list[ActivationFakeQuant]:
    return [m for m in model.modules() if isinstance(m, ActivationFakeQuant)]


def attach_activation_quant(
    model: nn.Module, layers: Mapping[str, LayerPolicy]
) -> list[RemovableHandle]:
    """Fake-quantize the input of every layer whose ``a_bits`` is not 32, in place.

    Returns:
        The pre-hook handles (``remove_activation_quant`` also works without them).

    Raises:
        AutopruneError: for an unknown layer, a bad policy field, or a layer that already
            has an activation quantizer. Nothing is changed in that case.
    """
    modules = {}
    for name, layer in layers.items():
        layer.check(name)
        modules[name] = compressible_layer(model, name)
        if layer.a_bits != FLOAT_BITS and isinstance(
            getattr(modules[name], ATTRIBUTE, None), ActivationFakeQuant
        ):
            raise AutopruneError(
                f"layer '{name}' already has an activation quantizer; "
                "call remove_activation_quant(model) first"
            )
    handles = []
    for name, layer in layers.items():
        if layer.a_bits == FLOAT_BITS:
            continue
        module = modules[name]
        quant = ActivationFakeQuant(layer.a_bits).to(module.weight.device)
        module.add_module(ATTRIBUTE, quant)
        handles.append(module.register_forward_pre_hook(_quantize_input))
    return handles


def _as_input(batch: torch.Tensor | tuple | list) -> torch.Tensor:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def calibrate_activations(model: nn.Module, batches: Iterable[torch.Tensor]) -> None:
    """Observe each quantized input's range on ``batches``, then freeze the quantizers.

    The model runs in eval mode without gradients (BatchNorm statistics are untouched)
    and float inputs are observed everywhere at once; the training flag is restored.
    A batch may be an input tensor or an ``(inputs, targets)`` pair, already on the
    model's device. Does nothing when no quantizer is attached.

    Raises:
        AutopruneError: when ``batches`` is empty.
    """
    quants = _quantizers(model)
    if not quants:
        return
    for quant in quants:
        quant.reset()
        quant.observing = True
    seen = 0
    try:
        with eval_mode(model), torch.no_grad():
            for batch in batches:
                model(_as_input(batch))
                seen += 1
    finally:
        for quant in quants:
            quant.observing = False
    if seen == 0:
        raise AutopruneError("no calibration batches; pass at least one batch of inputs")
    for quant in quants:
        quant.freeze()


def remove_activation_quant(model: nn.Module) -> None:
    """Remove every activation quantizer and its pre-hook from ``model``, in place."""
    for module in list(model.modules()):
        if not isinstance(getattr(module, ATTRIBUTE, None), ActivationFakeQuant):
            continue
        hooks = module._forward_pre_hooks
        for key in [k for k, hook in hooks.items() if hook is _quantize_input]:
            del hooks[key]
        delattr(module, ATTRIBUTE)
