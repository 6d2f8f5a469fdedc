"""A search without a feasible policy says how far the closest one missed, and what to do."""

from __future__ import annotations

from autoprune.cli._search_report import _infeasible_note
from autoprune.core.results import SearchResult


def test_the_closest_policy_and_its_excess_are_named(fake_records) -> None:
    records = fake_records([0.9, 0.7, 0.8])  # budget_use_macs 1.35, 1.05, 1.2: all infeasible
    note = _infeasible_note(SearchResult("tpe", records))
    assert "no feasible policy was found" in note
    assert "episode 1" in note and "macs 5.0% over" in note and "--target" in note


def test_an_empty_search_says_only_that(fake_records) -> None:
    assert _infeasible_note(SearchResult("tpe", [])).endswith("no feasible policy was found[/]")


def test_a_one_shot_method_is_not_told_to_search_longer(fake_records) -> None:
    note = _infeasible_note(SearchResult("admm", fake_records([0.7])))
    assert "macs 5.0% over" in note and "search longer" not in note
