"""Per-layer pruning sensitivity: how much accuracy each layer loses at rising sparsity.

Deep Compression chose each layer's threshold from such a scan (Han et al. 2015, fig. 5):
prune one layer at a time by magnitude, without retraining, and measure validation
accuracy. A layer's target is then the largest scanned sparsity whose accuracy drop stays
within a tolerance; retraining recovers most of the drop later.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from autoprune.compress.sparsity import magnitude_mask, tensor_attr
from autoprune.core.errors import AutopruneError
from autoprune.core.training import top1_accuracy

DEFAULT_GRID = (0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98)
"""Sparsities scanned per layer."""


@dataclass(frozen=True)
class SensitivityScan:
    """Validation accuracy of the model with one layer pruned, per layer and sparsity.

    Attributes:
        baseline: Accuracy of the unpruned model.
        grid: The scanned sparsities, increasing.
        accuracy: Per layer, the accuracy at each sparsity of ``grid``.

    Example:
        >>> scan = SensitivityScan(0.9, (0.5, 0.9), {"fc": (0.89, 0.7)})
        >>> scan.targets(tolerance=0.02)
        {'fc': 0.5}
    """

    baseline: float
    grid: tuple[float, ...]
    accuracy: dict[str, tuple[float, ...]]

    def targets(self, tolerance: float) -> dict[str, float]:
        """Per layer, the largest sparsity losing at most ``tolerance`` accuracy (else 0)."""
        if not 0.0 <= tolerance <= 1.0:
            raise AutopruneError(
                f"tolerance {tolerance} must be an accuracy drop in [0, 1]; use e.g. 0.02"
            )
        chosen = {}
        for name, accuracies in self.accuracy.items():
            ok = [
                s
                for s, a in zip(self.grid, accuracies, strict=True)
                if self.baseline - a <= tolerance + 1e-9
            ]
            chosen[name] = max(ok, default=0.0)
        return chosen

    def to_dict(self) -> dict:
        """Plain-JSON form."""
        return {
            "baseline": self.baseline,
            "grid": list(self.grid),
            "accuracy": {name: list(values) for name, values in self.accuracy.items()},
        }


@contextmanager
def _pruned(weight: torch.Tensor, sparsity: float) -> Iterator[None]:
    """Zero the smallest-magnitude fraction of ``weight`` for the duration of the block."""
    saved = weight.detach().clone()
    with torch.no_grad():
        weight.mul_(magnitude_mask(saved, sparsity).to(weight.dtype))
    try:
        yield
    finally:
        with torch.no_grad():
            weight.copy_(saved)


def sensitivity_scan(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    layer_names: Sequence[str],
    grid: Sequence[float] = DEFAULT_GRID,
) -> SensitivityScan:
    """Prune each named layer alone at every sparsity of ``grid`` and measure accuracy.

    Args:
        model: A plain (unparametrized) trained model; restored exactly afterwards.
        x: Validation images.
        y: Validation labels.
        layer_names: Conv2d/Linear layers to scan.
        grid: Sparsities in [0, 1) to try.
    """
    ordered = tuple(sorted(set(grid)))
    if not ordered or any(not 0.0 <= s < 1.0 for s in ordered):
        raise AutopruneError(f"sensitivity grid {list(grid)} must hold sparsities in [0, 1)")
    model.eval()
    baseline = top1_accuracy(model, x, y)
    accuracy = {}
    for name in layer_names:
        weight = tensor_attr(model.get_submodule(name), "weight")
        row = []
        for sparsity in ordered:
            with _pruned(weight, sparsity):
                row.append(top1_accuracy(model, x, y))
        accuracy[name] = tuple(row)
    return SensitivityScan(baseline, ordered, accuracy)
