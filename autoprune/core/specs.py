"""Layer discovery: one frozen :class:`LayerSpec` per Conv/Linear layer of a model."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

from autoprune.core.errors import AutopruneError
from autoprune.core.user_code import user_errors

if TYPE_CHECKING:  # torch is imported by discover_layers: LayerSpec is plain data
    import torch
    from torch import nn

LayerKind = Literal["conv", "depthwise", "grouped", "linear"]


@dataclass(frozen=True)
class LayerSpec:
    """Static description of one compressible layer, measured by a traced forward pass.

    Attributes:
        name: Fully-qualified module name (``model.get_submodule(name)``).
        kind: ``conv``, ``depthwise`` (groups == in == out channels), ``grouped`` or ``linear``.
        in_channels: Input channels (input features for linear layers).
        out_channels: Output channels (output features for linear layers).
        kernel: Kernel size ``(kh, kw)``; ``(1, 1)`` for linear layers.
        stride: Stride ``(sh, sw)``; ``(1, 1)`` for linear layers.
        groups: Convolution groups; 1 for linear layers.
        in_hw: Input spatial size ``(h, w)``; ``(1, 1)`` for linear layers.
        out_hw: Output spatial size ``(h, w)``; ``(1, 1)`` for linear layers.
        macs: Multiply-accumulates for one sample.
        params: Weight and bias parameters.
        prunable: Whether the output channels may be removed (False for the classifier).

    Example:
        >>> from torch import nn
        >>> spec = discover_layers(nn.Sequential(nn.Linear(4, 3)), (4,))[0]
        >>> (spec.kind, spec.macs, spec.params, spec.prunable)
        ('linear', 12, 15, False)
    """

    name: str
    kind: LayerKind
    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    groups: int
    in_hw: tuple[int, int]
    out_hw: tuple[int, int]
    macs: int
    params: int
    prunable: bool

    @property
    def weight_count(self) -> int:
        """Number of weights (no bias)."""
        kh, kw = self.kernel
        return self.out_channels * (self.in_channels // self.groups) * kh * kw

    def to_dict(self) -> dict:
        """Plain-JSON form."""
        return asdict(self)


def _conv_kind(module: nn.Conv2d) -> LayerKind:
    if module.groups == 1:
        return "conv"
    if module.groups == module.in_channels == module.out_channels:
        return "depthwise"
    return "grouped"


def _spec_for(name: str, module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> LayerSpec:
    from torch import nn

    params = sum(p.numel() for p in module.parameters(recurse=False))
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        out_h, out_w = int(y.shape[-2]), int(y.shape[-1])
        macs = module.out_channels * out_h * out_w * (module.in_channels // module.groups) * kh * kw
        return LayerSpec(
            name=name,
            kind=_conv_kind(module),
            in_channels=module.in_channels,
            out_channels=module.out_channels,
            kernel=(kh, kw),
            stride=tuple(module.stride),  # type: ignore[arg-type]
            groups=module.groups,
            in_hw=(int(x.shape[-2]), int(x.shape[-1])),
            out_hw=(out_h, out_w),
            macs=macs,
            params=params,
            prunable=True,
        )
    assert isinstance(module, nn.Linear)
    positions = int(x.numel() // (x.shape[0] * module.in_features))
    return LayerSpec(
        name=name,
        kind="linear",
        in_channels=module.in_features,
        out_channels=module.out_features,
        kernel=(1, 1),
        stride=(1, 1),
        groups=1,
        in_hw=(1, 1),
        out_hw=(1, 1),
        macs=module.in_features * module.out_features * positions,
        params=params,
        prunable=True,
    )


def discover_layers(model: nn.Module, input_shape: tuple[int, ...]) -> list[LayerSpec]:
    """List every Conv2d/Linear layer of ``model`` in execution order.

    Args:
        model: The network; it is run once in eval mode on zeros (no gradients).
        input_shape: Shape of one sample without the batch dimension, e.g. ``(1, 28, 28)``.

    Returns:
        One :class:`LayerSpec` per layer, ordered by first execution. The last layer
        executed (the classifier) is marked not prunable. Layers that never run are skipped.
    """
    import torch
    from torch import nn

    from autoprune.core.modes import eval_mode

    seen: dict[str, LayerSpec] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):

            def hook(mod: nn.Module, inputs: tuple, output: torch.Tensor, name: str = name) -> None:
                if name not in seen:
                    seen[name] = _spec_for(name, mod, inputs[0], output)

            hooks.append(module.register_forward_hook(hook))
    try:
        device = next(model.parameters(), torch.empty(0)).device
        with eval_mode(model), torch.no_grad(), user_errors("the model's forward pass"):
            model(torch.zeros((1, *input_shape), device=device))
    finally:
        for handle in hooks:
            handle.remove()
    specs = list(seen.values())
    if specs:
        last = specs[-1]
        specs[-1] = LayerSpec(**{**asdict(last), "prunable": False})
    return specs


def parse_input_shape(text: str | None) -> tuple[int, int, int] | None:
    """``"C,H,W"`` (``--input-shape``, config key ``input_shape``) as a tuple; None stays None.

    Example:
        >>> parse_input_shape("3,224,224"), parse_input_shape(None)
        ((3, 224, 224), None)
    """
    if text is None:
        return None
    parts = [p.strip() for p in str(text).replace("x", ",").split(",")]
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise AutopruneError(
            f"input shape {text!r} is invalid; write channels,height,width as positive "
            "integers, e.g. 3,224,224"
        )
    channels, height, width = (int(p) for p in parts)
    return channels, height, width


def deployment_shape(
    input_shape: tuple[int, int, int] | None, data_shape: tuple[int, ...]
) -> tuple[int, ...]:
    """The shape a model is priced at: ``input_shape`` when given, else the data's.

    Raises:
        AutopruneError: when ``input_shape`` has other channels than the data.

    Example:
        >>> deployment_shape((3, 224, 224), (3, 32, 32)), deployment_shape(None, (1, 8, 8))
        ((3, 224, 224), (1, 8, 8))
    """
    if input_shape is None:
        return tuple(data_shape)
    if len(data_shape) != 3 or data_shape[0] != input_shape[0]:
        raise AutopruneError(
            f"input shape {','.join(map(str, input_shape))} does not match the data's "
            f"{','.join(map(str, data_shape))}: the channels must agree; pass "
            f"--input-shape {data_shape[0]},H,W"
        )
    return tuple(input_shape)
