from __future__ import annotations

import pytest

from autoprune.core.errors import AutopruneError
from autoprune.latency import LayerSumLine, fit_layer_sum_line


def test_a_line_through_exact_points_is_recovered() -> None:
    summed = [0.4, 0.9, 1.5, 2.2]
    measured = [0.85 * s - 0.12 for s in summed]
    fitted = fit_layer_sum_line(summed, measured)
    assert fitted.scale == pytest.approx(0.85)
    assert fitted.offset_ms == pytest.approx(-0.12)
    assert fitted.points == 4
    assert fitted.apply(1.0) == pytest.approx(0.73)


def test_one_point_or_no_spread_gives_an_offset_only() -> None:
    assert fit_layer_sum_line([2.0], [1.5]) == LayerSumLine(1.0, -0.5, 1)
    assert fit_layer_sum_line([1.0, 1.0], [1.2, 1.4]) == LayerSumLine(1.0, pytest.approx(0.3), 2)


def test_a_falling_line_from_noisy_points_falls_back_to_an_offset() -> None:
    fitted = fit_layer_sum_line([1.0, 2.0], [2.0, 1.0])
    assert fitted.scale == 1.0 and fitted.offset_ms == pytest.approx(0.0)


def test_mismatched_or_empty_points_are_refused() -> None:
    with pytest.raises(AutopruneError, match="one measurement per prediction"):
        fit_layer_sum_line([1.0, 2.0], [1.0])
    with pytest.raises(AutopruneError, match="at least one"):
        fit_layer_sum_line([], [])
