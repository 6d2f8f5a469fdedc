"""The one-line error for a budget that even the cheapest policy of a search violates."""

from __future__ import annotations

import math
from collections.abc import Mapping

from autoprune.budget import Constraint
from autoprune.errors import AutopruneError

_KNOBS: dict[str, tuple[str, str]] = {
    "keep": ("min_keep", "lower"),
    "sparsity": ("max_sparsity", "raise"),
    "w_bits": ("min_bits", "lower"),
    "a_bits": ("min_bits", "lower"),
}
"""The setting that bounds each dimension from below, and how to widen it."""
_COUNT_UNITS = {"macs": " MACs", "params": " params", "size": " bytes", "bits": " bits"}


def infeasible_error(
    constraint: Constraint,
    baseline: Mapping[str, float],
    smallest: float,
    mode: str,
    settings: Mapping[str, float | int],
) -> AutopruneError:
    """The error naming the target, the smallest reachable value and the fix.

    The smallest value is rounded *up* to the digits shown, so that passing it back as the
    target gives a feasible budget.

    Args:
        constraint: The violated constraint.
        baseline: Metrics of the uncompressed model.
        smallest: The constrained metric of the search's cheapest policy.
        mode: The search mode.
        settings: The lower bounds of the searched dimensions, e.g. ``{"min_keep": 0.2}``.
    """
    metric = constraint.metric
    limit = constraint.limit(baseline)
    target = f"{metric}={format_metric(metric, limit)}"
    if constraint.relative:
        target = f"{metric}={constraint.value:g} of the original ({format_metric(metric, limit)})"
    original = baseline.get(metric, 0.0)
    share = smallest / original if original else 0.0
    shown = ", ".join(f"{name}={value:g}" for name, value in settings.items())
    fixes = [f"{how} {name}" for name, how in _fixes(settings)]
    if original and smallest >= original * (1 - 1e-9):
        shown = f"mode '{mode}' does not lower {metric}"
        fixes = ["choose a mode that does"]
    fix = ", ".join(["raise the target", *fixes[:-1]]) + f" or {fixes[-1]}"
    return AutopruneError(
        f"budget {target} is infeasible: the smallest this search can reach is "
        f"{format_metric(metric, smallest, up=True)} ({share:.3g} of the original; {shown}); "
        f"{fix}"
    )


def knob_settings(
    dims: tuple[str, ...], min_keep: float, max_sparsity: float, min_bits: int
) -> dict[str, float | int]:
    """The bounding setting of each searched dimension, in dimension order."""
    values = {"min_keep": min_keep, "max_sparsity": max_sparsity, "min_bits": min_bits}
    return {_KNOBS[d][0]: values[_KNOBS[d][0]] for d in dims}


def _fixes(settings: Mapping[str, float | int]) -> list[tuple[str, str]]:
    how = {name: verb for name, verb in _KNOBS.values()}
    return [(name, how[name]) for name in settings]


def format_metric(metric: str, value: float, *, up: bool = False) -> str:
    """A metric value with its unit, as budgets are written (``up``: round up to the digits).

    Example:
        >>> format_metric("size", 1234.2, up=True), format_metric("latency", 0.123412, up=True)
        ('1,235 bytes', '0.1235 ms')
    """
    if metric in ("latency", "energy"):
        unit = " ms" if metric == "latency" else " mJ"
        return f"{_ceil_digits(value, 4) if up else value:.4g}{unit}"
    unit = _COUNT_UNITS.get(metric, f" {metric}")
    return f"{math.ceil(value - 1e-9) if up else value:,.0f}{unit}"


def _ceil_digits(value: float, digits: int) -> float:
    """``value`` rounded up to ``digits`` significant digits."""
    if value <= 0 or not math.isfinite(value):
        return value
    scale = 10.0 ** (math.floor(math.log10(value)) - digits + 1)
    return math.ceil(value / scale - 1e-9) * scale
