"""Deep Compression under a size budget: scale per-layer densities until Σ bits × kept fits.

Deep Compression has no budget of its own: it prunes each layer as far as its sensitivity
allows. To compare it with budgeted methods at the same size, :func:`targets_for_budget`
keeps the relative allocation of given per-layer sparsities (from a scan or the paper) and
scales every layer's density by one common factor, the largest for which Yang et al.'s count
``Σ bits_l × kept_l`` fits the budget (densities capped at 1, at least one weight kept).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from autoprune.core.bisection import largest_fitting
from autoprune.core.errors import AutopruneError

_BISECTION_STEPS = 60


def _kept(count: int, density: float, factor: float) -> int:
    return max(1, min(count, math.floor(factor * density * count)))


def targets_for_budget(
    weight_counts: Mapping[str, int],
    bits: Mapping[str, int],
    budget_bits: float,
    base: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Per-layer sparsities with the relative densities of ``base`` that fit ``budget_bits``.

    Args:
        weight_counts: Weights per layer.
        bits: Code width per layer (e.g. 8 conv, 5 fc).
        budget_bits: Σ bits × kept must not exceed this.
        base: Sparsities giving the relative allocation (None: the same density everywhere).

    Returns:
        The sparsity of every layer, ``(n - kept) / n`` with an integral ``kept >= 1``.

    Raises:
        AutopruneError: When one weight per layer already exceeds the budget.

    Example:
        >>> targets_for_budget({"a": 100, "b": 100}, {"a": 5, "b": 5}, 500, {"a": 0.5, "b": 0.9})
        {'a': 0.16, 'b': 0.84}
    """
    density = {n: 1.0 - float((base or {}).get(n, 0.0)) for n in weight_counts}
    if any(d <= 0 for d in density.values()):
        raise AutopruneError("base sparsities must be below 1; keep some weights in every layer")

    def cost(factor: float) -> int:
        return sum(bits[n] * _kept(c, density[n], factor) for n, c in weight_counts.items())

    if cost(0.0) > budget_bits:
        raise AutopruneError(
            f"budget of {budget_bits:g} bits cannot keep one weight per layer ({cost(0.0)} "
            "bits); raise the budget"
        )
    factor = largest_fitting(
        lambda f: cost(f) <= budget_bits, 0.0, 1.0 / min(density.values()), steps=_BISECTION_STEPS
    )
    return {n: (c - _kept(c, density[n], factor)) / c for n, c in weight_counts.items()}
