from __future__ import annotations

import math

import pytest

from autoprune.core.errors import AutopruneError
from autoprune.latency import mape, spearman, validate_predictions


def test_spearman_measures_rank_agreement() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 1, 0, -5]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3], [10, 30, 20]) == pytest.approx(0.5)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_mape_is_mean_absolute_percentage_error() -> None:
    assert mape([1.1, 1.8], [1.0, 2.0]) == pytest.approx(10.0)
    assert mape([3.0], [2.0]) == pytest.approx(50.0)


def test_bad_inputs_raise_user_errors() -> None:
    with pytest.raises(AutopruneError, match="2 predictions and 3 measurements"):
        spearman([1, 2], [1, 2, 3])
    with pytest.raises(AutopruneError, match="at least 2"):
        spearman([1], [1])
    with pytest.raises(AutopruneError, match="nonzero"):
        mape([1.0], [0.0])


def test_validate_predictions_reports_ranks_error_and_scale() -> None:
    result = validate_predictions([1.0, 2.0, 4.0, 3.0], [2.0, 4.0, 8.0, 6.0])
    assert result["n"] == 4
    assert result["spearman"] == pytest.approx(1.0)
    assert result["mape_percent"] == pytest.approx(50.0)
    assert result["scale"] == pytest.approx(2.0)
