"""Bisection for the largest setting that still fits a budget.

Every budget search in autoprune has the same shape: a monotone test (it holds up to some
threshold and fails beyond it) and the largest value that passes. One helper for a range of
real numbers and one for an ascending list of choices.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def largest_fitting(
    fits: Callable[[float], bool], low: float, high: float, *, steps: int = 50
) -> float:
    """The largest ``x`` in ``[low, high]`` with ``fits(x)``, to within ``(high - low) / 2**steps``.

    ``fits`` must hold below a threshold and fail above it; ``low`` is taken to fit (check it
    first when it may not). ``high`` is returned when it fits; otherwise the result is the
    largest point found to fit, never one found not to.

    Example:
        >>> round(largest_fitting(lambda x: x * x <= 2.0, 0.0, 2.0, steps=30), 6)
        1.414214
        >>> largest_fitting(lambda x: True, 0.0, 1.0)
        1.0
    """
    if fits(high):
        return high
    for _ in range(steps):
        mid = (low + high) / 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return low


def largest_fitting_choice(fits: Callable[[T], bool], choices: Sequence[T]) -> T:
    """The largest of ascending ``choices`` with ``fits``; ``choices[0]`` is taken to fit.

    Example:
        >>> largest_fitting_choice(lambda bits: bits * 1000 <= 4500, [2, 3, 4, 5, 6, 8])
        4
        >>> largest_fitting_choice(lambda bits: False, [2])
        2
    """
    low, high = 0, len(choices) - 1
    if high <= 0 or fits(choices[high]):
        return choices[max(high, 0)]
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if fits(choices[mid]) else (low, mid)
    return choices[low]
