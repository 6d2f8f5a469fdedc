"""The one-line error for a budget that even the cheapest policy of a search violates."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from autoprune.core.budget import Budget, Constraint
from autoprune.core.errors import AutopruneError

_KNOBS: dict[str, tuple[str, str]] = {
    "keep": ("min_keep", "lower"),
    "sparsity": ("max_sparsity", "raise"),
    "w_bits": ("min_bits", "lower"),
    "a_bits": ("min_bits", "lower"),
}
"""The setting that bounds each dimension from below, and how to widen it."""
_COUNT_UNITS = {"macs": " MACs", "params": " params", "size": " bytes", "bits": " bits"}


def check_reachable(
    budget: Budget,
    baseline: Mapping[str, float],
    cheapest: Mapping[str, float],
    space: str,
    settings: Mapping[str, float | int],
    fixes: Sequence[str] | None = None,
) -> None:
    """Refuse the first constraint that even the cheapest policy of a space violates.

    Args:
        budget: The search's budget.
        baseline: Metrics of the uncompressed model.
        cheapest: The budget's metrics of the space's cheapest policy.
        space: What is searched, for the message (``"mode 'sparse'"``).
        settings: The bounds of the space, shown in the message.
        fixes: How to widen the space (None: derived from ``settings``' names).

    Raises:
        AutopruneError: The one-line refusal of :func:`infeasible_error`.
    """
    for constraint in budget.constraints:
        limit = constraint.limit(baseline)
        if cheapest[constraint.metric] > limit * (1 + 1e-9):
            raise infeasible_error(
                constraint, baseline, cheapest[constraint.metric], space, settings, fixes
            )


def infeasible_error(
    constraint: Constraint,
    baseline: Mapping[str, float],
    smallest: float,
    space: str,
    settings: Mapping[str, float | int],
    fixes: Sequence[str] | None = None,
) -> AutopruneError:
    """The error naming the target, the smallest reachable value and the fix.

    The smallest value is rounded *up* to the digits shown, so that passing it back as the
    target gives a feasible budget.

    Args:
        constraint: The violated constraint.
        baseline: Metrics of the uncompressed model.
        smallest: The constrained metric of the search's cheapest policy.
        space: What is searched, e.g. ``"mode 'prune'"``.
        settings: The lower bounds of the searched dimensions, e.g. ``{"min_keep": 0.2}``.
        fixes: How to widen the space (None: derived from ``settings``' names).
    """
    metric = constraint.metric
    limit = constraint.limit(baseline)
    target = f"{metric}={format_metric(metric, limit)}"
    if constraint.relative:
        target = f"{metric}={constraint.value:g} of the original ({format_metric(metric, limit)})"
    original = baseline.get(metric, 0.0)
    share = smallest / original if original else 0.0
    shown = ", ".join(f"{name}={value:g}" for name, value in settings.items())
    fixes = list(fixes) if fixes is not None else [f"{how} {n}" for n, how in _fixes(settings)]
    if original and smallest >= original * (1 - 1e-9):
        shown = f"{space} does not lower {metric}"
        fixes = ["choose a mode or method that does"]
    fix = "raise the target"
    if fixes:
        fix = ", ".join([fix, *fixes[:-1]]) + f" or {fixes[-1]}"
    return AutopruneError(
        f"budget {target} is infeasible: the smallest this search ({space}) can reach is "
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
