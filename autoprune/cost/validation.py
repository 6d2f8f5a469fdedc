"""How well predicted costs match measured ones: rank correlation and percentage error."""

from __future__ import annotations

import math
from collections.abc import Sequence

from autoprune.errors import AutopruneError


def _pair(a: Sequence[float], b: Sequence[float], least: int) -> None:
    if len(a) != len(b):
        raise AutopruneError(
            f"got {len(a)} predictions and {len(b)} measurements; pass one of each per model"
        )
    if len(a) < least:
        raise AutopruneError(f"need at least {least} predictions to compare, got {len(a)}")


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation of ``a`` and ``b``; NaN when either is constant.

    Example:
        >>> spearman([1, 2, 3], [10, 30, 20])
        0.5
    """
    _pair(a, b, 2)
    if len(set(a)) < 2 or len(set(b)) < 2:
        return math.nan
    from scipy.stats import spearmanr  # slow import (about a second): only when used

    return float(spearmanr(a, b).statistic)


def mape(pred: Sequence[float], measured: Sequence[float]) -> float:
    """Mean absolute percentage error of ``pred`` against ``measured``, in percent.

    Example:
        >>> mape([1.1, 1.8], [1.0, 2.0])
        10.0
    """
    _pair(pred, measured, 1)
    if any(m == 0 for m in measured):
        raise AutopruneError("a measured value is 0; percentage errors need nonzero measurements")
    errors = [abs(p - m) / abs(m) for p, m in zip(pred, measured, strict=True)]
    return round(100.0 * sum(errors) / len(errors), 12)


def validate_predictions(predicted: Sequence[float], measured: Sequence[float]) -> dict:
    """Summary of a cost model against measurements on several (pruned) models.

    Returns:
        ``n``, ``spearman`` (rank agreement, what a search needs), ``mape_percent`` and
        ``scale`` (median measured / predicted: a constant factor the ranks do not care about).

    Example:
        >>> validate_predictions([1.0, 2.0, 4.0], [2.0, 4.0, 8.0])["scale"]
        2.0
    """
    _pair(predicted, measured, 2)
    ratios = sorted(m / p for p, m in zip(predicted, measured, strict=True) if p != 0)
    middle = len(ratios) // 2
    if not ratios:
        scale = math.nan
    elif len(ratios) % 2:
        scale = ratios[middle]
    else:
        scale = (ratios[middle - 1] + ratios[middle]) / 2
    return {
        "n": len(predicted),
        "spearman": spearman(predicted, measured),
        "mape_percent": mape(predicted, measured),
        "scale": scale,
    }
