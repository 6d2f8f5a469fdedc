"""VGG-small: a plain chain of three conv blocks and two fully-connected layers."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from autoprune.models._common import check_build_args, require_min_size


class VGGSmall(nn.Sequential):
    """conv32, conv64, conv128 (3x3 pad 1, BN, ReLU, max-pool 2 each), fc 256, ReLU, fc.

    Inputs need at least 8x8 pixels (three halvings).

    Example:
        >>> VGGSmall(in_channels=1, num_classes=10, input_size=(28, 28)).fc1.in_features
        1152
    """

    def __init__(
        self, in_channels: int = 1, num_classes: int = 10, input_size: tuple[int, int] = (28, 28)
    ) -> None:
        check_build_args(in_channels, num_classes, input_size)
        require_min_size("vgg_small", input_size, 8)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        channels = in_channels
        for index, width in enumerate((32, 64, 128), start=1):
            layers[f"conv{index}"] = nn.Conv2d(channels, width, 3, padding=1, bias=False)
            layers[f"bn{index}"] = nn.BatchNorm2d(width)
            layers[f"relu{index}"] = nn.ReLU(inplace=True)
            layers[f"pool{index}"] = nn.MaxPool2d(2)
            channels = width
        height, width = (s // 8 for s in input_size)
        layers["flatten"] = nn.Flatten()
        layers["fc1"] = nn.Linear(channels * height * width, 256)
        layers["relu4"] = nn.ReLU(inplace=True)
        layers["fc2"] = nn.Linear(256, num_classes)
        super().__init__(layers)
