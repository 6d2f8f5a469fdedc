"""Tiny CNNs shared by the export tests: a plain chain and a residual + depthwise net."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

SAMPLE_SHAPE = (1, 8, 8)


class ResidualDepthwiseNet(nn.Module):
    """Conv-BN-ReLU stem, a depthwise conv block with a residual add, pooling, classifier."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.block = nn.Sequential(
            nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.BatchNorm2d(8)
        )
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Sequential(nn.Conv2d(8, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU())
        self.fc = nn.Sequential(nn.Linear(32 * 2 * 2, 64), nn.ReLU(), nn.Linear(64, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        y = torch.relu(self.block(y) + y)
        y = self.pool(self.head(self.pool(y)))
        return self.fc(torch.flatten(y, 1))


def _randomise_batchnorm(model: nn.Module, seed: int) -> nn.Module:
    """Give BatchNorm layers non-trivial statistics so folding them is actually tested."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
            module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
            module.weight.data.copy_(1 + 0.2 * torch.randn(n, generator=generator))
            module.bias.data.copy_(0.1 * torch.randn(n, generator=generator))
    return model.eval()


@pytest.fixture
def residual_net() -> nn.Module:
    torch.manual_seed(0)
    return _randomise_batchnorm(ResidualDepthwiseNet(), seed=1)


@pytest.fixture
def plain_net() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 10),
    )
    return _randomise_batchnorm(model, seed=2)


def prototype_batch(
    prototypes: torch.Tensor, size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples of a 10-class toy task: a class prototype image plus Gaussian noise."""
    labels = torch.randint(len(prototypes), (size,), generator=generator)
    noise = 0.7 * torch.randn((size, *SAMPLE_SHAPE), generator=generator)
    return prototypes[labels] + noise, labels


@pytest.fixture(scope="session")
def prototypes() -> torch.Tensor:
    return torch.randn((10, *SAMPLE_SHAPE), generator=torch.Generator().manual_seed(3))


@pytest.fixture(scope="session")
def toy_batches(prototypes: torch.Tensor) -> Callable[[int, int, int], list[np.ndarray]]:
    """``toy_batches(count, size, seed)``: input batches of the toy task as float32 arrays."""

    def make(count: int, size: int, seed: int) -> list[np.ndarray]:
        generator = torch.Generator().manual_seed(seed)
        return [prototype_batch(prototypes, size, generator)[0].numpy() for _ in range(count)]

    return make


@pytest.fixture(scope="session")
def trained_net(prototypes: torch.Tensor) -> nn.Module:
    """The residual net trained for a few steps on the toy task (confident predictions)."""
    torch.manual_seed(0)
    model = ResidualDepthwiseNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(4)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: extra threads only add contention
    try:
        for _ in range(30):
            x, y = prototype_batch(prototypes, 32, generator)
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()
