"""A regression network compressed from Python objects: your model, your data, your metric.

No names anywhere: the network is an ``nn.Module`` defined here, the data are generated
tensors in ``DataLoader``s, the reward's quality term is the negative validation MSE
(``evaluate``), and fine-tuning uses the same MSE loss (``finetune``). The task is to
predict, from a noisy 16x16 image of a blob, the blob's centre (two numbers).

    python examples/regression_objects.py --episodes 20
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import autoprune


def blobs(count: int, seed: int) -> TensorDataset:
    """Images of one Gaussian blob plus noise, and the blob's centre in [-1, 1]^2."""
    generator = torch.Generator().manual_seed(seed)
    centre = torch.rand(count, 2, generator=generator) * 2 - 1
    axis = torch.linspace(-1, 1, 16)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    dist = (xx[None] - centre[:, 0, None, None]) ** 2 + (yy[None] - centre[:, 1, None, None]) ** 2
    images = torch.exp(-dist / 0.08) + 0.1 * torch.randn(count, 16, 16, generator=generator)
    return TensorDataset(images[:, None].float(), centre.float())


def regressor() -> nn.Module:
    """A small CNN with a two-number head (no classes anywhere)."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 2),
    )  # fmt: skip


def fit(model: nn.Module, loader: DataLoader, epochs: int, lr: float = 3e-3) -> None:
    """The user's own training loop: Adam on the mean squared error."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for x, y in loader:
            loss = nn.functional.mse_loss(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()


def negative_mse(model: nn.Module, loader: DataLoader) -> float:
    """Higher is better: minus the mean squared error over ``loader``."""
    total, count = 0.0, 0
    with torch.no_grad():
        for x, y in loader:
            total += float(nn.functional.mse_loss(model(x), y, reduction="sum"))
            count += y.numel()
    return -total / count


def main(episodes: int = 20, runs_dir: str = "runs", train_epochs: int = 8) -> dict:
    """Train, search at half the FLOPs, apply with one epoch of fine-tuning; the numbers."""
    torch.manual_seed(0)
    loaders = {
        "train": DataLoader(blobs(2000, 0), batch_size=64, shuffle=True),
        "val": DataLoader(blobs(400, 1), batch_size=200),
        "test": DataLoader(blobs(400, 2), batch_size=200),
    }
    model = regressor()
    fit(model, loaders["train"], train_epochs)

    def evaluate(candidate: nn.Module) -> float:
        return negative_mse(candidate, loaders["val"])

    def finetune(candidate: nn.Module, epochs: int) -> None:
        fit(candidate, loaders["train"], epochs, lr=1e-3)

    run = autoprune.search(
        model, loaders, target="flops=0.5", agent="tpe", episodes=episodes,
        runs_dir=runs_dir, evaluate=evaluate, finetune=finetune,
    )  # fmt: skip
    applied = autoprune.apply(run, finetune_epochs=1)
    return {
        "val_mse_original": -run.baseline_metrics["accuracy"],
        "val_mse_best_policy": -run.best.metrics["accuracy"] if run.best else None,
        "val_mse_after_apply": -applied.compressed["val_accuracy"],
        "test_mse_after_apply": -negative_mse(applied.model, loaders["test"]),
        "macs_ratio": applied.compressed["macs"] / applied.original["macs"],
        "run": str(run.run_dir),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--runs-dir", default="runs")
    args = parser.parse_args()
    for key, value in main(args.episodes, str(Path(args.runs_dir))).items():
        print(f"{key}: {value}")
