"""A small MobileNetV2 (Sandler et al. 2018) sized for 28x28 inputs."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from autoprune.models._common import check_build_args

# (expansion t, output channels c, repeats n, first stride s), as in the paper's Table 2.
_BLOCKS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 2, 2),
    (6, 64, 2, 1),
)
_STEM = 16
_HEAD = 256


def _conv(
    in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1
) -> nn.Conv2d:
    """A bias-free "same"-padded convolution (a BatchNorm always follows)."""
    return nn.Conv2d(
        in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False
    )


class InvertedResidual(nn.Module):
    """1x1 expand (ReLU6), 3x3 depthwise (ReLU6), 1x1 linear projection, optional residual.

    The expansion layer is left out when ``expansion == 1``; the residual add is used when
    ``stride == 1`` and the input and output channels match.

    Example:
        >>> block = InvertedResidual(16, 24, stride=2, expansion=6)
        >>> block(torch.zeros(1, 16, 8, 8)).shape
        torch.Size([1, 24, 4, 4])
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.use_residual = stride == 1 and in_channels == out_channels
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        if expansion != 1:
            layers["expand"] = _conv(in_channels, hidden, 1)
            layers["expand_bn"] = nn.BatchNorm2d(hidden)
            layers["expand_relu"] = nn.ReLU6(inplace=True)
        layers["dw"] = _conv(hidden, hidden, 3, stride, groups=hidden)
        layers["dw_bn"] = nn.BatchNorm2d(hidden)
        layers["dw_relu"] = nn.ReLU6(inplace=True)
        layers["project"] = _conv(hidden, out_channels, 1)
        layers["project_bn"] = nn.BatchNorm2d(out_channels)
        self.body = nn.Sequential(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x + body(x)`` when the block is residual, else ``body(x)``."""
        out = self.body(x)
        return x + out if self.use_residual else out


class MobileNetV2Small(nn.Module):
    """MobileNetV2 with a 16-channel stride-1 stem, 7 inverted residual blocks and a 256 head.

    Blocks ``(t, c, n, s)``: (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 2, 2), (6, 64, 2, 1), so a
    28x28 input ends at 7x7 before the 1x1 head conv, global average pool and ``fc``.

    Example:
        >>> model = MobileNetV2Small(in_channels=1, num_classes=10)
        >>> model(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self, in_channels: int = 1, num_classes: int = 10, input_size: tuple[int, int] = (28, 28)
    ) -> None:
        check_build_args(in_channels, num_classes, input_size)
        super().__init__()
        self.stem = nn.Sequential(
            OrderedDict(
                conv=_conv(in_channels, _STEM, 3),
                bn=nn.BatchNorm2d(_STEM),
                relu=nn.ReLU6(inplace=True),
            )
        )
        blocks: list[nn.Module] = []
        channels = _STEM
        for expansion, width, repeats, first_stride in _BLOCKS:
            for index in range(repeats):
                stride = first_stride if index == 0 else 1
                blocks.append(InvertedResidual(channels, width, stride, expansion))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            OrderedDict(
                conv=_conv(channels, _HEAD, 1),
                bn=nn.BatchNorm2d(_HEAD),
                relu=nn.ReLU6(inplace=True),
            )
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(_HEAD, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class logits of shape ``(batch, num_classes)``."""
        x = self.head(self.blocks(self.stem(x)))
        return self.fc(self.flatten(self.avgpool(x)))
