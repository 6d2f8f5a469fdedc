"""Deep Compression uses its budget: densities scale up as well as down to the target."""

from __future__ import annotations

from agents._deep_compression_method import fit_to_budget, kmeans_policy


def test_a_sparse_allocation_is_scaled_up_to_use_the_budget(session) -> None:
    evaluator = session.evaluator
    bits = {s.name: 5 for s in evaluator.specs}
    base = {s.name: 0.99 for s in evaluator.specs}  # far below the budget
    limit = 0.1 * evaluator.baseline_metrics["size"]
    before = evaluator.costs(kmeans_policy(evaluator, base, bits), ["size"])["size"]
    assert before < 0.5 * limit
    targets = fit_to_budget(evaluator, base, bits, {"size": limit})
    size = evaluator.costs(kmeans_policy(evaluator, targets, bits), ["size"])["size"]
    assert 0.98 * limit <= size <= limit
    assert all(targets[n] < base[n] for n in base)  # every layer keeps more weights


def test_an_allocation_over_the_budget_is_scaled_down_to_it(session) -> None:
    evaluator = session.evaluator
    bits = {s.name: 5 for s in evaluator.specs}
    base = {s.name: 0.1 for s in evaluator.specs}
    limit = 0.05 * evaluator.baseline_metrics["size"]
    targets = fit_to_budget(evaluator, base, bits, {"size": limit})
    size = evaluator.costs(kmeans_policy(evaluator, targets, bits), ["size"])["size"]
    assert 0.98 * limit <= size <= limit
    assert all(targets[n] > base[n] for n in base)
