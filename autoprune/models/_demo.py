"""The demo CNN: the small network of the embedded default (scikit-learn digits, 1x8x8)."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from autoprune.models._common import check_build_args, require_min_size


class DemoCNN(nn.Sequential):
    """Three 3x3 conv blocks (16, 32, 64 channels), one max-pool, global average pool, one fc.

    Four compressible layers (three prunable convs and the classifier); trains on the
    8x8 scikit-learn digits in seconds. Works for any input of at least 2x2 pixels.

    Example:
        >>> import torch
        >>> model = DemoCNN(in_channels=1, num_classes=10)
        >>> model(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self, in_channels: int = 1, num_classes: int = 10, input_size: tuple[int, int] = (8, 8)
    ) -> None:
        check_build_args(in_channels, num_classes, input_size)
        require_min_size("demo", input_size, 2)
        super().__init__(
            OrderedDict(
                conv1=nn.Conv2d(in_channels, 16, 3, padding=1, bias=False),
                bn1=nn.BatchNorm2d(16),
                relu1=nn.ReLU(inplace=True),
                conv2=nn.Conv2d(16, 32, 3, padding=1, bias=False),
                bn2=nn.BatchNorm2d(32),
                relu2=nn.ReLU(inplace=True),
                pool=nn.MaxPool2d(2),
                conv3=nn.Conv2d(32, 64, 3, padding=1, bias=False),
                bn3=nn.BatchNorm2d(64),
                relu3=nn.ReLU(inplace=True),
                avgpool=nn.AdaptiveAvgPool2d(1),
                flatten=nn.Flatten(),
                fc=nn.Linear(64, num_classes),
            )
        )
