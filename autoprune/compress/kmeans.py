"""One-dimensional k-means for weight sharing (Deep Compression, Han et al. 2016).

Centroids start evenly spaced between the smallest and the largest weight (linear
initialisation, which Deep Compression found best because it keeps the few large weights
represented), then Lloyd iterations run until the assignment stops changing. Everything is
deterministic: no random restarts, ties go to the lower centroid.
"""

from __future__ import annotations

import torch

from autoprune.core.errors import AutopruneError

DEFAULT_MAX_ITER = 100


def _check_bits(bits: int) -> None:
    if not 1 <= bits <= 8:
        raise AutopruneError(f"k-means bits {bits} must be 1..8; use 32 to keep float weights")


def linear_init(values: torch.Tensor, k: int) -> torch.Tensor:
    """``k`` centroids evenly spaced from ``values.min()`` to ``values.max()`` (float64).

    Example:
        >>> linear_init(torch.tensor([0.0, 3.0, 1.0]), 4).tolist()
        [0.0, 1.0, 2.0, 3.0]
    """
    assert values.numel() > 0 and k >= 1
    flat = values.detach().reshape(-1).to(torch.float64)
    return torch.linspace(float(flat.min()), float(flat.max()), k, dtype=torch.float64)


def _assign(sorted_values: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Index of the nearest (sorted) centroid for each value; ties go to the lower one."""
    boundaries = (centroids[1:] + centroids[:-1]) / 2
    return torch.searchsorted(boundaries, sorted_values, right=False)


def _update(
    sorted_values: torch.Tensor, assignments: torch.Tensor, centroids: torch.Tensor
) -> torch.Tensor:
    """Move each centroid to the mean of its members; empty clusters stay where they are."""
    k = centroids.numel()
    counts = torch.bincount(assignments, minlength=k)
    sums = torch.bincount(assignments, weights=sorted_values, minlength=k)
    means = sums / counts.clamp(min=1)
    return torch.where(counts > 0, means, centroids)


def _drop_empty(centroids: torch.Tensor, assignments: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Remove centroids without members and renumber the assignments densely."""
    used = torch.bincount(assignments, minlength=centroids.numel()) > 0
    new_index = torch.cumsum(used.to(torch.int64), 0) - 1
    return centroids[used], new_index[assignments]


def kmeans_1d(
    values: torch.Tensor, bits: int, max_iter: int = DEFAULT_MAX_ITER
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster scalar values into at most ``2**bits`` shared values.

    Args:
        values: The values to cluster (any shape; flattened). Pass only unpruned weights.
        bits: Code width, 1..8; at most ``2**bits`` centroids (fewer when clusters empty).
        max_iter: Upper bound on Lloyd iterations.

    Returns:
        ``(centroids, assignments)``: ascending float32 centroids without empty clusters,
        and an int64 centroid index per value in the flattened order of ``values``.
        With no values at all, one centroid ``0.0`` and no assignments.

    Example:
        >>> c, a = kmeans_1d(torch.tensor([-1.0, -0.9, 2.0, 2.2]), bits=1)
        >>> [round(v, 2) for v in c.tolist()], a.tolist()
        ([-0.95, 2.1], [0, 0, 1, 1])
    """
    _check_bits(bits)
    if max_iter < 1:
        raise AutopruneError(f"k-means max_iter {max_iter} must be at least 1; use e.g. 100")
    flat = values.detach().reshape(-1).to(torch.float64).cpu()
    if flat.numel() == 0:
        return torch.zeros(1, dtype=torch.float32), torch.zeros(0, dtype=torch.int64)
    order = torch.argsort(flat, stable=True)
    sorted_values = flat[order]
    centroids = linear_init(sorted_values, min(2**bits, flat.numel()))
    assignments = _assign(sorted_values, centroids)
    for _ in range(max_iter):
        centroids = _update(sorted_values, assignments, centroids)
        new_assignments = _assign(sorted_values, centroids)
        if torch.equal(new_assignments, assignments):
            break
        assignments = new_assignments
    centroids, assignments = _drop_empty(centroids, assignments)
    unsorted = torch.empty_like(assignments)
    unsorted[order] = assignments
    return centroids.to(values.device, torch.float32), unsorted.to(values.device)
