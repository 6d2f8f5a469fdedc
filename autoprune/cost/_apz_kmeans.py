"""Cluster sizes of the k-means weight sharing, without running it on every weight.

:func:`cluster_sizes` repeats :func:`autoprune.compress.kmeans.kmeans_1d` (linear
initialisation from the smallest to the largest kept weight, boundaries at centroid
midpoints, a value on a boundary goes to the lower centroid, empty clusters keep their
centroid and are dropped at the end) on sorted points with prefix sums: 1-D clusters are
intervals, so an iteration costs ``O(k log n)``.

Points are either the kept weights themselves (exact) or :class:`ValueBins`, a fine
histogram of a large layer's weights with the count and sum of each bin, from which the
kept weights of any sparsity are read without touching the weights again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_ITER = 100
"""Lloyd iterations at most, as ``kmeans_1d``."""
HALF_BINS = 8192
"""Bins on each side of zero of :class:`ValueBins`."""


def cluster_sizes(
    points: np.ndarray, weights: np.ndarray, low: float, high: float, bits: int
) -> np.ndarray:
    """Members of every non-empty cluster, in centroid order.

    Args:
        points: Ascending point positions (weights, or bin means).
        weights: How many weights each point stands for.
        low: Smallest kept weight (where the first centroid starts).
        high: Largest kept weight (where the last centroid starts).
        bits: Code bits; at most ``2**bits`` clusters.
    """
    total = float(weights.sum())
    if points.size == 0 or total <= 0:
        return np.zeros(1, dtype=np.float64)
    counts_before = np.concatenate(([0.0], np.cumsum(weights, dtype=np.float64)))
    sums_before = np.concatenate(([0.0], np.cumsum(points * weights, dtype=np.float64)))
    k = int(min(1 << bits, max(1, round(total))))
    centroids = np.linspace(low, high, k)
    ends: np.ndarray | None = None
    for _ in range(MAX_ITER + 1):
        boundaries = (centroids[1:] + centroids[:-1]) / 2
        new_ends = np.append(np.searchsorted(points, boundaries, side="right"), points.size)
        if ends is not None and np.array_equal(new_ends, ends):
            break
        ends = new_ends
        starts = np.concatenate(([0], ends[:-1]))
        counts = counts_before[ends] - counts_before[starts]
        sums = sums_before[ends] - sums_before[starts]
        centroids = np.where(counts > 0, sums / np.maximum(counts, 1e-300), centroids)
    assert ends is not None  # the loop runs at least once
    starts = np.concatenate(([0], ends[:-1]))
    counts = counts_before[ends] - counts_before[starts]
    return counts[counts > 0]


def exact_sizes(values: np.ndarray, bits: int) -> np.ndarray:
    """:func:`cluster_sizes` of the kept weights themselves (what ``kmeans_1d`` finds)."""
    ordered = np.sort(values.astype(np.float64))
    if ordered.size == 0:
        return np.zeros(1, dtype=np.float64)
    ones = np.ones(ordered.size)
    return cluster_sizes(ordered, ones, ordered[0], ordered[-1], bits)


@dataclass(frozen=True)
class ValueBins:
    """A histogram of a layer's weights over ``[-M, M]``, ``M`` the largest magnitude.

    Bins ``HALF_BINS - 1 - i`` and ``HALF_BINS + i`` hold the same magnitudes, so magnitude
    pruning removes bins from the middle outwards.

    Example:
        >>> bins = ValueBins.of(np.array([-2.0, -0.1, 0.1, 0.5, 3.0]))
        >>> float(bins.kept(2)[1].sum())
        3.0
    """

    counts: np.ndarray
    sums: np.ndarray
    low: float
    high: float

    @classmethod
    def of(cls, values: np.ndarray) -> ValueBins:
        """Bin ``values`` (any shape)."""
        flat = values.astype(np.float64).ravel()
        top = float(np.abs(flat).max()) if flat.size else 0.0
        span = (-top, top) if top > 0 else (-1.0, 1.0)
        counts, _ = np.histogram(flat, bins=2 * HALF_BINS, range=span)
        sums, _ = np.histogram(flat, bins=2 * HALF_BINS, range=span, weights=flat)
        low, high = (float(flat.min()), float(flat.max())) if flat.size else (0.0, 0.0)
        return cls(counts.astype(np.float64), sums, low, high)

    def kept(self, cut: int) -> tuple[np.ndarray, np.ndarray, float, float]:
        """Points, weights and range of the weights left after pruning the ``cut`` smallest.

        The bin where the cut falls keeps its share of the weights (a fraction of its count).
        """
        counts = self.counts.copy()
        if cut > 0:
            by_magnitude = counts[HALF_BINS:] + counts[HALF_BINS - 1 :: -1]
            pruned = np.cumsum(by_magnitude)
            edge = min(int(np.searchsorted(pruned, cut, side="left")), HALF_BINS - 1)
            before = pruned[edge - 1] if edge else 0.0
            share = 1.0 - (cut - before) / max(by_magnitude[edge], 1.0)
            counts[HALF_BINS - edge : HALF_BINS + edge] = 0.0
            counts[[HALF_BINS - 1 - edge, HALF_BINS + edge]] *= max(share, 0.0)
        present = counts > 0
        points = self.sums[present] / self.counts[present]
        if not present.any():
            return points, counts[present], 0.0, 0.0
        # The extreme weight of a side survives whenever anything on that side does.
        low = self.low if cut == 0 or present[:HALF_BINS].any() else float(points[0])
        high = self.high if cut == 0 or present[HALF_BINS:].any() else float(points[-1])
        return points, counts[present], low, high
