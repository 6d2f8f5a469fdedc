"""The two knapsack projections: hand-computed answers and budget properties."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from autoprune.admm import (
    BitOption,
    bit_options,
    choose_bits,
    kmeans_distortion,
    project_bits,
    project_sparsity,
    yang_bits,
)
from autoprune.core.errors import AutopruneError

# Layer "a" at 2 bits, layer "b" at 4 bits. Scores w²/b:
#   a0 0.25/2 = 0.125, a1 0.01/2 = 0.005, a2 0.09/2 = 0.045, b0 0.16/4 = 0.04, b1 0.0025/4
# Greedy order a0 (2 bits), a2 (2), b0 (4), a1 (2), b1 (4): cumulative 2, 4, 8, 10, 14.
HAND_WEIGHTS = {"a": torch.tensor([0.5, -0.1, 0.3]), "b": torch.tensor([0.4, 0.05])}
HAND_BITS = {"a": 2, "b": 4}


@pytest.mark.parametrize(
    ("budget", "kept_a", "kept_b"),
    [
        (1, [False, False, False], [False, False]),
        (4, [True, False, True], [False, False]),
        # b0 (|0.4| > |0.3|) costs 4 bits and does not fit: the greedy stops there.
        (6, [True, False, True], [False, False]),
        (8, [True, False, True], [True, False]),
        (10, [True, True, True], [True, False]),
        (14, [True, True, True], [True, True]),
    ],
)
def test_sparsity_knapsack_hand_example(budget: int, kept_a: list, kept_b: list) -> None:
    masks = project_sparsity(HAND_WEIGHTS, HAND_BITS, budget)
    assert masks["a"].tolist() == kept_a
    assert masks["b"].tolist() == kept_b
    assert yang_bits(masks, HAND_BITS) <= budget


def test_index_overhead_changes_cost_and_ranking() -> None:
    # With 2 index bits on "a", every weight costs 4 bits; scores w²/4:
    #   a0 0.0625, b0 0.04, a2 0.0225, a1 0.0025, b1 0.000625 -> budget 8 keeps a0 and b0.
    masks = project_sparsity(HAND_WEIGHTS, HAND_BITS, 8, index_bits={"a": 2})
    assert masks["a"].tolist() == [True, False, False]
    assert masks["b"].tolist() == [True, False]


def test_sparsity_ties_go_to_the_earlier_layer_and_position() -> None:
    weights = {"x": torch.tensor([[1.0, -1.0]]), "y": torch.tensor([[1.0]])}
    masks = project_sparsity(weights, {"x": 1, "y": 1}, 2)
    assert masks["x"].tolist() == [[True, True]]
    assert masks["y"].tolist() == [[False]]
    assert masks["x"].shape == (1, 2)


def test_sparsity_needs_a_width_for_every_layer() -> None:
    with pytest.raises(AutopruneError, match="bit-width"):
        project_sparsity(HAND_WEIGHTS, {"a": 2}, 8)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=4),
    widths=st.lists(st.integers(1, 8), min_size=4, max_size=4),
    budget=st.floats(0.0, 600.0),
    seed=st.integers(0, 10_000),
)
def test_sparsity_is_feasible_and_greedy(
    sizes: list[int], widths: list[int], budget: float, seed: int
) -> None:
    generator = torch.Generator().manual_seed(seed)
    weights = {
        f"l{i}": torch.randn(n, generator=generator, dtype=torch.float64)
        for i, n in enumerate(sizes)
    }
    bits = {f"l{i}": widths[i] for i in range(len(sizes))}
    masks = project_sparsity(weights, bits, budget)
    spent = yang_bits(masks, bits)
    assert spent <= budget
    items = [  # (score, layer, position, cost, kept)
        (float(w * w) / bits[name], layer, pos, bits[name], bool(masks[name][pos]))
        for layer, (name, values) in enumerate(weights.items())
        for pos, w in enumerate(values)
    ]
    kept = [item for item in items if item[4]]
    pruned = [item for item in items if not item[4]]
    if kept and pruned:  # every kept weight scores at least as high as every pruned one
        assert min(i[0] for i in kept) >= max(i[0] for i in pruned)
    if pruned:  # the greedy stopped at the first weight (in its order) that did not fit
        first = min(pruned, key=lambda i: (-i[0], i[1], i[2]))
        assert spent + first[3] > budget


def test_kmeans_distortion_by_hand() -> None:
    # 0..7 at 1 bit: centroids 1.5 and 5.5, squared errors 2*(2.25 + 0.25) per half.
    values = torch.arange(8.0)
    assert kmeans_distortion(values, 1) == pytest.approx(10.0)
    # 2 bits: pairs {0,1} {2,3} {4,5} {6,7}, each 2 * 0.25.
    assert kmeans_distortion(values, 2) == pytest.approx(2.0)
    assert kmeans_distortion(values, 3) == 0.0
    assert kmeans_distortion(torch.zeros(0), 4) == 0.0


def test_bit_options_drop_dominated_widths() -> None:
    assert bit_options(torch.arange(8.0), range(1, 9)) == [
        BitOption(1, 8, 10.0),
        BitOption(2, 16, 2.0),
        BitOption(3, 24, 0.0),
    ]
    assert bit_options(torch.tensor([0.7, 0.7, 0.7]), range(1, 9)) == [BitOption(1, 3, 0.0)]
    # With 5 index bits per weight and 32 bits per centroid: (b + 5) * 8 + 32 * 2**b.
    assert bit_options(torch.arange(8.0), range(1, 9), index_bits=5, codebook_bits=32) == [
        BitOption(1, 6 * 8 + 32 * 2, 10.0),
        BitOption(2, 7 * 8 + 32 * 4, 2.0),
        BitOption(3, 8 * 8 + 32 * 8, 0.0),
    ]


# Layer "b" = 0..3: options (1 bit, 4, D=1), (2 bits, 8, D=0).
# Layer "c" = 0..7: options (1 bit, 8, D=10), (2 bits, 16, D=2), (3 bits, 24, D=0).
# Start at 12 bits. Ratios: c 1->2 8/8 = 1, c 1->3 10/16 = 0.625, b 1->2 1/4 = 0.25.
# After c->2 (20 bits): b 1->2 1/4 = 0.25 and c 2->3 2/8 = 0.25 (tie: b first), then c->3.
@pytest.mark.parametrize(
    ("budget", "expected"),
    [
        (12, {"b": 1, "c": 1}),
        (19, {"b": 2, "c": 1}),  # c 1->2 does not fit; the best upgrade that fits is b
        (20, {"b": 1, "c": 2}),
        (24, {"b": 2, "c": 2}),
        (31, {"b": 2, "c": 2}),
        (32, {"b": 2, "c": 3}),
        (1000, {"b": 2, "c": 3}),
    ],
)
def test_bit_knapsack_hand_example(budget: int, expected: dict[str, int]) -> None:
    layers = {"b": torch.arange(4.0), "c": torch.arange(8.0)}
    assert project_bits(layers, budget) == expected


def test_bit_knapsack_may_skip_a_flat_option() -> None:
    # x: 1 -> 2 bits saves 1 per 10 bits, 1 -> 3 bits saves 100 per 20 bits; y 1 -> 2 saves
    # 40 per 10 bits. Next-option greedy would buy y->2 then x->2 (distortion 109); jumping
    # x straight to 3 bits (ratio 5) ends at distortion 50.
    table = {
        "x": [BitOption(1, 10, 100.0), BitOption(2, 20, 99.0), BitOption(3, 30, 0.0)],
        "y": [BitOption(1, 10, 50.0), BitOption(2, 20, 10.0)],
    }
    chosen = choose_bits(table, 40)
    assert {n: o.bits for n, o in chosen.items()} == {"x": 3, "y": 1}


def test_bit_knapsack_rejects_an_impossible_budget_and_bad_options() -> None:
    layers = {"b": torch.arange(4.0), "c": torch.arange(8.0)}
    with pytest.raises(AutopruneError, match="below the 12 bits"):
        project_bits(layers, 11)
    with pytest.raises(AutopruneError, match="1..8"):
        project_bits(layers, 100, options=[0, 4])
    with pytest.raises(AutopruneError, match="1..8"):
        project_bits(layers, 100, options=[])


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 30), min_size=1, max_size=4),
    slack=st.floats(0.0, 400.0),
    seed=st.integers(0, 10_000),
)
def test_bit_knapsack_is_feasible_and_maximal(sizes: list[int], slack: float, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    layers = {f"l{i}": torch.randn(n, generator=generator) for i, n in enumerate(sizes)}
    budget = sum(sizes) + slack  # every layer fits at 1 bit
    bits = project_bits(layers, budget)
    spent = sum(bits[n] * v.numel() for n, v in layers.items())
    assert spent <= budget
    for name, values in layers.items():  # no non-dominated upgrade still fits
        for option in bit_options(values, range(1, 9)):
            if option.bits > bits[name]:
                assert spent + option.cost - bits[name] * values.numel() > budget
