"""Gradual pruning schedule of Zhu & Gupta (2017): sparsity rises on a cubic curve.

``s_t = s_f + (s_i − s_f) (1 − t / n)³`` for pruning steps ``t = 0 .. n``: fast pruning while
the network is redundant, slower as it approaches the final sparsity ``s_f``.
"""

from __future__ import annotations

from autoprune.core.errors import AutopruneError


def cubic_sparsity(step: int, steps: int, final: float, initial: float = 0.0) -> float:
    """The target sparsity at pruning step ``step`` of ``steps``.

    Example:
        >>> [round(cubic_sparsity(t, 4, 0.9), 4) for t in range(5)]
        [0.0, 0.5203, 0.7875, 0.8859, 0.9]
    """
    if steps < 1 or not 0 <= step <= steps:
        raise AutopruneError(f"pruning step {step} must lie in 0..{steps} (steps >= 1)")
    return final + (initial - final) * (1.0 - step / steps) ** 3


def step_batches(steps: int, total_batches: int, ramp: float) -> list[int]:
    """After how many training batches each pruning step ``1..steps`` takes effect.

    The steps are spread evenly over the first ``ramp`` fraction of the training batches;
    the rest of training recovers at the final sparsity. Every step follows at least one
    batch; step 0 (the initial sparsity) is applied before the first batch.

    Example:
        >>> step_batches(4, 100, 0.8)
        [20, 40, 60, 80]
    """
    if not 0.0 < ramp <= 1.0:
        raise AutopruneError(f"ramp {ramp} must lie in (0, 1]; use e.g. 0.75")
    span = ramp * total_batches
    return [max(1, round(span * t / steps)) for t in range(1, steps + 1)]
