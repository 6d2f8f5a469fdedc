"""LeNet-300-100 and Caffe's LeNet-5, the two MNIST networks of Deep Compression."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from autoprune.models._common import check_build_args, require_min_size


class LeNet300(nn.Sequential):
    """LeNet-300-100: flatten, fc 300, ReLU, fc 100, ReLU, fc ``num_classes``.

    At 1x28x28 it has 266,200 weights (784*300 + 300*100 + 100*10).

    Example:
        >>> LeNet300(in_channels=1, num_classes=10, input_size=(28, 28))[1].in_features
        784
    """

    def __init__(
        self, in_channels: int = 1, num_classes: int = 10, input_size: tuple[int, int] = (28, 28)
    ) -> None:
        check_build_args(in_channels, num_classes, input_size)
        features = in_channels * input_size[0] * input_size[1]
        super().__init__(
            OrderedDict(
                flatten=nn.Flatten(),
                fc1=nn.Linear(features, 300),
                relu1=nn.ReLU(inplace=True),
                fc2=nn.Linear(300, 100),
                relu2=nn.ReLU(inplace=True),
                fc3=nn.Linear(100, num_classes),
            )
        )


def _lenet5_side(size: int) -> int:
    """Spatial side after conv 5x5, pool 2, conv 5x5, pool 2 (no padding)."""
    return ((size - 4) // 2 - 4) // 2


class LeNet5(nn.Sequential):
    """Caffe's LeNet-5: conv 20@5x5, pool, conv 50@5x5, pool, fc 500, ReLU, fc ``num_classes``.

    As in Caffe's ``lenet_train_test.prototxt`` the convolutions have no activation; the only
    ReLU follows fc 500. At 1x28x28 it has 430,500 weights; inputs need at least 16x16 pixels.

    Example:
        >>> LeNet5(in_channels=1, num_classes=10, input_size=(28, 28)).fc1.in_features
        800
    """

    def __init__(
        self, in_channels: int = 1, num_classes: int = 10, input_size: tuple[int, int] = (28, 28)
    ) -> None:
        check_build_args(in_channels, num_classes, input_size)
        require_min_size("lenet5", input_size, 16)
        height, width = (_lenet5_side(s) for s in input_size)
        super().__init__(
            OrderedDict(
                conv1=nn.Conv2d(in_channels, 20, 5),
                pool1=nn.MaxPool2d(2),
                conv2=nn.Conv2d(20, 50, 5),
                pool2=nn.MaxPool2d(2),
                flatten=nn.Flatten(),
                fc1=nn.Linear(50 * height * width, 500),
                relu=nn.ReLU(inplace=True),
                fc2=nn.Linear(500, num_classes),
            )
        )
