from __future__ import annotations

import numpy as np
import pytest

from autoprune.coding._sparse import (
    bitmap_decode,
    bitmap_encode,
    relative_decode,
    relative_encode,
)


def test_hand_example_with_two_fillers() -> None:
    # 3-bit indices hold gaps 1..8; 2 -> 20 is a gap of 18 = 8 (filler at 10) + 8 (filler
    # at 18) + 2.
    stored, source = relative_encode(np.array([0, 2, 20]), index_bits=3)
    assert stored.tolist() == [0, 1, 7, 7, 1]
    assert source.tolist() == [0, 1, -1, -1, 2]
    assert relative_decode(stored).tolist() == [0, 2, 10, 18, 20]


def test_largest_gap_needs_no_filler_and_one_more_does() -> None:
    stored, source = relative_encode(np.array([7]), index_bits=3)
    assert stored.tolist() == [7] and source.tolist() == [0]
    stored, source = relative_encode(np.array([8]), index_bits=3)
    assert stored.tolist() == [7, 0] and source.tolist() == [-1, 0]
    assert relative_decode(stored).tolist() == [7, 8]


def test_empty_positions() -> None:
    stored, source = relative_encode(np.zeros(0, np.int64), index_bits=5)
    assert stored.size == 0 and source.size == 0


@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 0.99])
@pytest.mark.parametrize("index_bits", [1, 3, 5, 8])
def test_random_masks_round_trip(sparsity: float, index_bits: int) -> None:
    rng = np.random.default_rng(index_bits)
    positions = np.flatnonzero(rng.random(3000) >= sparsity)
    stored, source = relative_encode(positions, index_bits)
    assert stored.max(initial=0) < 2**index_bits
    decoded = relative_decode(stored)
    assert np.array_equal(decoded[source >= 0], positions)
    assert np.array_equal(source[source >= 0], np.arange(positions.size))
    gaps = np.diff(positions, prepend=-1)
    assert np.sum(source < 0) == np.sum((gaps - 1) // 2**index_bits)


def test_bitmap_round_trip() -> None:
    mask = np.random.default_rng(0).random(77) > 0.3
    data = bitmap_encode(mask)
    assert len(data) == 10
    assert np.array_equal(bitmap_decode(data, 77), mask)
    with pytest.raises(ValueError):
        bitmap_decode(data, 81)
