"""Budget parsing: fractions, percentages, units, and clear errors."""

from __future__ import annotations

import pytest

from autoprune.core.budget import Budget, Constraint
from autoprune.core.errors import AutopruneError


@pytest.mark.parametrize(
    ("text", "metric", "value", "relative"),
    [
        ("flops=0.5", "macs", 0.5, True),
        ("macs=50%", "macs", 0.5, True),
        ("flops=10M", "macs", 10e6, False),
        ("latency=2ms", "latency", 2.0, False),
        ("latency=500us", "latency", 0.5, False),
        ("size=50KB", "size", 50e3, False),
        ("size=1KiB", "size", 1024.0, False),
        ("energy=0.3mJ", "energy", 0.3, False),
        ("params=20000", "params", 20000.0, False),
        ("bits=0.025", "bits", 0.025, True),
        ("bits=213600", "bits", 213600.0, False),
        ("bits=26.7KB", "bits", 8 * 26.7e3, False),
        ("bits=1KiB", "bits", 8 * 1024.0, False),
        ("bits=100kbit", "bits", 1e5, False),
        ("yang_bits=2%", "bits", 0.02, True),
    ],
)
def test_constraint_forms(text, metric, value, relative):
    c = Constraint.parse(text)
    assert (c.metric, c.relative) == (metric, relative)
    assert c.value == pytest.approx(value)


def test_limits_usage_and_satisfaction():
    budget = Budget.parse(["flops=0.5", "latency=2ms"])
    baseline = {"macs": 1000.0, "latency": 4.0}
    assert budget.limits(baseline) == {"macs": 500.0, "latency": 2.0}
    assert budget.usage({"macs": 250.0, "latency": 2.0}, baseline) == {
        "macs": 0.5,
        "latency": 1.0,
    }
    assert budget.satisfied({"macs": 500.0, "latency": 1.0}, baseline)
    assert not budget.satisfied({"macs": 501.0, "latency": 1.0}, baseline)


def test_round_trip_through_dict():
    budget = Budget.parse(["flops=0.5", "size=50KB", "latency=2ms"])
    assert Budget.parse(budget.to_dict()) == budget


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("flops", "no '='"),
        ("speed=0.5", "unknown budget key"),
        ("flops=abc", "cannot parse"),
        ("latency=2parsecs", "unit 'parsecs'"),
        ("flops=0", "must be positive"),
        ("bits=3ms", "unit 'ms' is not valid for bits"),
    ],
)
def test_bad_targets(text, message):
    with pytest.raises(AutopruneError, match=message):
        Constraint.parse(text)


def test_duplicate_keys_refused():
    with pytest.raises(AutopruneError, match="twice"):
        Budget.parse(["flops=0.5", "macs=0.4"])


def test_size_and_bits_are_separate_targets():
    budget = Budget.parse(["size=30KB", "bits=26.7KB"])
    assert Budget.parse(budget.to_dict()) == budget
    baseline = {"size": 1.07e6, "bits": 8 * 1.07e6}
    assert budget.limits(baseline) == {"size": 30e3, "bits": 213600.0}
    # 25 KB of Yang's count fits, but the file with indices and codebooks does not.
    assert not budget.satisfied({"size": 31e3, "bits": 200e3}, baseline)
    assert budget.satisfied({"size": 29e3, "bits": 200e3}, baseline)


@pytest.mark.parametrize("text", ["size=1/40", "size=40x", "size=0.025x", "size = 1 / 40"])
def test_ratios_and_reduction_factors_are_fractions(text: str) -> None:
    constraint = Constraint.parse(text)
    assert (constraint.metric, constraint.relative) == ("size", True)
    assert constraint.value == pytest.approx(0.025)


@pytest.mark.parametrize(("text", "words"), [("size=40/1", "above"), ("size=1/0", "positive")])
def test_ratios_that_are_no_budget_are_refused(text: str, words: str) -> None:
    with pytest.raises(AutopruneError, match=words):
        Constraint.parse(text)
