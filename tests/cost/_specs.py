"""Hand-made LayerSpecs for the cost tests (shapes as discovery would report them)."""

from __future__ import annotations

from autoprune.core.specs import LayerSpec


def conv_spec(
    name: str,
    cin: int,
    cout: int,
    hw: int,
    *,
    k: int = 3,
    stride: int = 1,
    pad: int | None = None,
    groups: int = 1,
    bias: bool = True,
) -> LayerSpec:
    """A square Conv2d spec; ``pad`` defaults to ``k // 2``."""
    pad = k // 2 if pad is None else pad
    out = (hw + 2 * pad - k) // stride + 1
    weights = cout * (cin // groups) * k * k
    if groups == 1:
        kind = "conv"
    elif groups == cin == cout:
        kind = "depthwise"
    else:
        kind = "grouped"
    return LayerSpec(
        name=name,
        kind=kind,
        in_channels=cin,
        out_channels=cout,
        kernel=(k, k),
        stride=(stride, stride),
        groups=groups,
        in_hw=(hw, hw),
        out_hw=(out, out),
        macs=weights * out * out,
        params=weights + (cout if bias else 0),
        prunable=True,
    )


def linear_spec(name: str, fin: int, fout: int, *, bias: bool = True) -> LayerSpec:
    """A Linear spec."""
    return LayerSpec(
        name=name,
        kind="linear",
        in_channels=fin,
        out_channels=fout,
        kernel=(1, 1),
        stride=(1, 1),
        groups=1,
        in_hw=(1, 1),
        out_hw=(1, 1),
        macs=fin * fout,
        params=fin * fout + (fout if bias else 0),
        prunable=False,
    )


def small_net(width: int = 8) -> list[LayerSpec]:
    """conv(1→w) → conv(w→2w, stride 2) → fc(2w*7*7 → 10): a pruned net has a smaller width."""
    return [
        conv_spec("conv1", 1, width, 14),
        conv_spec("conv2", width, 2 * width, 14, stride=2),
        linear_spec("fc", 2 * width * 7 * 7, 10),
    ]
