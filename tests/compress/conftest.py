"""Tiny models shared by the compression tests (1x8x8 inputs, 10 classes, each < 10k params).

Fixtures:
    tiny_model: parametrised over every architecture below; yields ``(name, model, example)``.
    make_tiny_model: factory ``make_tiny_model(name) -> nn.Module`` for one architecture.
    example_input: ``torch.randn(2, 1, 8, 8)`` (seeded).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

# Tiny tensors: one intra-op thread avoids thread contention on the shared 2-core machine
# (a 2x1x8x8 conv takes ~0.5 ms with one thread and ~60 ms with two under load).
torch.set_num_threads(1)


def _conv_bn(
    cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1
) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    )


class ChainNet(nn.Module):
    """conv-BN-ReLU x3 with a max-pool, flatten of a 2x2 map into fc1, then the classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.conv3 = nn.Conv2d(16, 16, 3, padding=1)
        self.bn3 = nn.BatchNorm2d(16)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(16 * 2 * 2, 24)
        self.fc2 = nn.Linear(24, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.pool(torch.relu(self.bn2(self.conv2(x))))
        x = self.pool(torch.relu(self.bn3(self.conv3(x))))
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


class ResidualNet(nn.Module):
    """A stem, one identity residual block and one block with a strided 1x1 shortcut."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _conv_bn(1, 8)
        self.a1 = _conv_bn(8, 8)
        self.a2 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8))
        self.b1 = _conv_bn(8, 16, stride=2)
        self.b2 = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16))
        self.shortcut = nn.Sequential(nn.Conv2d(8, 16, 1, 2, bias=False), nn.BatchNorm2d(16))
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = torch.relu(x + self.a2(self.a1(x)))
        x = torch.relu(self.shortcut(x) + self.b2(self.b1(x)))
        return self.fc(x.mean(dim=(2, 3)))


class InvertedResidualNet(nn.Module):
    """MobileNetV2-style: 1x1 expand, 3x3 depthwise, 1x1 project with a residual add."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _conv_bn(1, 8)
        self.expand = _conv_bn(8, 24, kernel=1)
        self.dw = _conv_bn(24, 24, groups=24)
        self.project = nn.Sequential(nn.Conv2d(24, 8, 1, bias=False), nn.BatchNorm2d(8))
        self.head = _conv_bn(8, 16, kernel=1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = x + self.project(self.dw(self.expand(x)))
        return self.fc(self.head(x).mean(dim=(2, 3)))


class ConcatNet(nn.Module):
    """Two branches of different widths concatenated along channels, then a 1x1 conv."""

    def __init__(self) -> None:
        super().__init__()
        self.left = _conv_bn(1, 6)
        self.right = _conv_bn(1, 10, kernel=5)
        self.fuse = _conv_bn(16, 12, kernel=1)
        self.fc = nn.Linear(12, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.left(x), self.right(x)], dim=1)
        return self.fc(self.fuse(x).mean(dim=(2, 3)))


class GroupedNet(nn.Module):
    """A conv, two grouped convs (groups 2 and 4) and a 1x1 conv before the classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = _conv_bn(1, 8)
        self.group2 = _conv_bn(8, 16, groups=2)
        self.group4 = _conv_bn(16, 16, groups=4)
        self.mix = _conv_bn(16, 12, kernel=1)
        self.fc = nn.Linear(12, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.mix(self.group4(self.group2(self.conv1(x))))
        return self.fc(x.mean(dim=(2, 3)))


TINY_MODELS: dict[str, Callable[[], nn.Module]] = {
    "chain": ChainNet,
    "residual": ResidualNet,
    "inverted_residual": InvertedResidualNet,
    "concat": ConcatNet,
    "grouped": GroupedNet,
}


def _build(name: str) -> nn.Module:
    torch.manual_seed(0)
    return TINY_MODELS[name]().eval()


@pytest.fixture
def example_input() -> torch.Tensor:
    """A seeded batch of two 1x8x8 images."""
    return torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def make_tiny_model() -> Callable[[str], nn.Module]:
    """Factory building a seeded tiny model (eval mode) by name."""
    return _build


@pytest.fixture(params=list(TINY_MODELS))
def tiny_model(request: pytest.FixtureRequest, example_input: torch.Tensor) -> tuple:
    """``(name, model, example_input)`` for every tiny architecture."""
    return request.param, _build(request.param), example_input
