from __future__ import annotations

import numpy as np
import pytest

from autoprune.coding._bits import pack_bits, packed_size, unpack_bits, width_for


def test_pack_writes_msb_first() -> None:
    assert pack_bits(np.array([1, 2, 3]), 2) == bytes([0b01101100])
    assert pack_bits(np.array([5]), 3) == bytes([0b10100000])


@pytest.mark.parametrize("width", [1, 2, 3, 5, 8, 11, 16])
def test_round_trip_every_width(width: int) -> None:
    rng = np.random.default_rng(width)
    values = rng.integers(0, 2**width, 1001)
    data = pack_bits(values, width)
    assert len(data) == packed_size(1001, width) == (1001 * width + 7) // 8
    assert np.array_equal(unpack_bits(data, width, 1001), values)


def test_empty_stream() -> None:
    assert pack_bits(np.zeros(0, np.int64), 4) == b""
    assert unpack_bits(b"", 4, 0).size == 0


def test_width_for_alphabet() -> None:
    assert [width_for(n) for n in (1, 2, 3, 4, 5, 16, 17, 256)] == [1, 1, 2, 2, 3, 4, 5, 8]


def test_short_data_is_rejected() -> None:
    with pytest.raises(ValueError, match="cannot hold"):
        unpack_bits(b"\x00", 3, 3)
