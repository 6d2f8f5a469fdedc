"""The joint projection: several starts, the lowest projection error, always feasible."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from autoprune.admm import Overhead, project_bits, project_joint, project_sparsity
from autoprune.admm._joint import quantize_kept
from autoprune.core.errors import AutopruneError


def test_projection_escapes_the_eight_bit_fixed_point() -> None:
    # Four values, four times each, budget 32 bits.
    # Start at 8 bits: (a) keeps the four 4.0s; (b) codes them with 1 bit (one centroid is
    # exact); the error is the pruned energy 4 * (1 + 4 + 9) = 56.
    # Start at 1 bit: (a) keeps all 16; (b) buys 2 bits (16 -> 32 bits), which codes the four
    # distinct values exactly: error 0. The projection keeps the smaller error.
    weights = {"a": torch.tensor([1.0, 2.0, 3.0, 4.0]).repeat_interleave(4)}
    stuck = project_sparsity(weights, {"a": 8}, 32)
    assert int(stuck["a"].sum()) == 4
    assert project_bits({"a": weights["a"][stuck["a"]]}, 32) == {"a": 1}
    projection = project_joint(weights, 32, bits={"a": 8})
    assert projection.bits == {"a": 2}
    assert bool(projection.masks["a"].all())
    assert projection.error == 0.0
    assert torch.equal(projection.values["a"], weights["a"])
    assert projection.yang_bits == 32


def test_quantize_kept_zeroes_pruned_and_shares_values() -> None:
    weight = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    mask = torch.tensor([[True, True, True, False]])
    assert quantize_kept(weight, mask, 1, 100).tolist() == [[0.5, 0.5, 2.0, 0.0]]
    assert quantize_kept(weight, torch.zeros_like(mask), 1, 100).tolist() == [[0.0] * 4]


@settings(max_examples=25, deadline=None)
@given(
    shapes=st.lists(st.tuples(st.integers(1, 6), st.integers(1, 6)), min_size=1, max_size=3),
    fraction=st.floats(0.001, 1.0),
    seed=st.integers(0, 10_000),
)
def test_projection_is_feasible_and_coded(
    shapes: list[tuple[int, int]], fraction: float, seed: int
) -> None:
    generator = torch.Generator().manual_seed(seed)
    weights = {f"l{i}": torch.randn(*s, generator=generator) for i, s in enumerate(shapes)}
    budget = fraction * 32 * sum(w.numel() for w in weights.values())
    projection = project_joint(weights, budget)
    assert projection.yang_bits <= budget
    for name, values in projection.values.items():
        mask = projection.masks[name]
        assert values.shape == weights[name].shape
        assert bool((values[~mask] == 0).all())
        assert len(set(values[mask].tolist())) <= 2 ** projection.bits[name]
    # V is never farther from the weights than pruning everything.
    total = sum(float((w.double() ** 2).sum()) for w in weights.values())
    assert projection.error <= total + 1e-9


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=3),
    fraction=st.floats(0.01, 1.0),
    seed=st.integers(0, 10_000),
)
def test_projection_with_overhead_counts_indices_and_codebooks(
    sizes: list[int], fraction: float, seed: int
) -> None:
    generator = torch.Generator().manual_seed(seed)
    weights = {f"l{i}": torch.randn(n, generator=generator) for i, n in enumerate(sizes)}
    overhead = Overhead({f"l{i}": 5 for i in range(len(sizes))}, codebook_bits=32)
    budget = fraction * 32 * sum(sizes)
    projection = project_joint(weights, budget, overhead=overhead)
    cost = 0
    for name, mask in projection.masks.items():
        kept, bits = int(mask.sum()), projection.bits[name]
        cost += (bits + 5) * kept + 32 * min(2**bits, kept)
    assert projection.cost_bits == cost <= budget
    assert projection.yang_bits <= cost


def test_projection_rejects_bad_options() -> None:
    with pytest.raises(AutopruneError, match="1..8"):
        project_joint({"a": torch.ones(3)}, 10, options=(9,))
