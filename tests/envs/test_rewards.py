"""Rewards on hand-made metrics with hand-computed values."""

from __future__ import annotations

import math

import pytest

from autoprune.core.errors import AutopruneError
from envs.rewards import make_reward, reward_names

BASELINE = {
    "accuracy": 0.95,
    "macs": 1e6,
    "params": 1e4,
    "size": 40.0,
    "latency": 2.0,
    "energy": 6.0,
}
METRICS = {
    "accuracy": 0.9,
    "macs": math.exp(10),
    "params": 5e3,
    "size": 10.0,
    "latency": 1.0,
    "energy": 3.0,
}


def test_names() -> None:
    assert reward_names() == ["accuracy", "amc", "mnas", "weighted"]


def test_accuracy_is_the_accuracy() -> None:
    assert make_reward("accuracy")(METRICS, BASELINE, {"latency": 1.5}) == 0.9


def test_amc_is_minus_error_times_log_flops() -> None:
    # error 0.1, log(e^10) = 10
    assert make_reward("amc")(METRICS, BASELINE, {}) == pytest.approx(-1.0)


def test_amc_prefers_fewer_flops_at_equal_accuracy() -> None:
    amc = make_reward("amc")
    fewer = amc({**METRICS, "macs": 1e3}, BASELINE, {})
    assert fewer > amc({**METRICS, "macs": 1e6}, BASELINE, {})


def test_mnas_uses_budget_limits_when_constrained() -> None:
    # latency 1.0 against the limit 0.5: 0.9 * 2^-0.07; energy 3.0 against its limit 3.0: 1
    reward = make_reward("mnas")(METRICS, BASELINE, {"latency": 0.5, "energy": 3.0})
    assert reward == pytest.approx(0.9 * 2.0**-0.07)
    assert reward == pytest.approx(0.85737, abs=1e-5)


def test_mnas_falls_back_to_the_baseline() -> None:
    # latency 1/2 and energy 3/6 of the baseline: 0.9 * 0.5^-0.07 * 0.5^-0.07
    reward = make_reward("mnas")(METRICS, BASELINE, {})
    assert reward == pytest.approx(0.9 * 0.5**-0.14)
    assert reward == pytest.approx(0.99171, abs=1e-5)


def test_mnas_weights_are_arguments() -> None:
    reward = make_reward("mnas", latency_weight=-1.0, energy_weight=0.0)
    assert reward(METRICS, BASELINE, {}) == pytest.approx(0.9 * 2.0)


def test_weighted_subtracts_normalised_costs() -> None:
    # 0.9 - 0.1 * (1/2 + 3/6 + 10/40)
    assert make_reward("weighted")(METRICS, BASELINE, {}) == pytest.approx(0.775)


def test_weighted_lambdas_are_arguments() -> None:
    reward = make_reward("weighted", latency_weight=0.0, energy_weight=0.0, size_weight=2.0)
    assert reward(METRICS, BASELINE, {}) == pytest.approx(0.9 - 2.0 * 0.25)


def test_unknown_name_lists_the_names() -> None:
    with pytest.raises(AutopruneError, match="unknown reward 'fps'.*accuracy, amc, mnas"):
        make_reward("fps")


def test_unknown_argument_lists_the_arguments() -> None:
    with pytest.raises(AutopruneError, match="latency_weight, energy_weight"):
        make_reward("mnas", alpha=1.0)
    with pytest.raises(AutopruneError, match="none"):
        make_reward("accuracy", weight=1.0)
