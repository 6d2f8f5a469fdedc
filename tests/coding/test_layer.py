from __future__ import annotations

import numpy as np
import pytest

from autoprune.coding._layer import check_weight, decode_layer, encode_layer, zero_code
from autoprune.core.errors import AutopruneError
from autoprune.core.qtensor import QuantizedWeight


def _round_trip(q: QuantizedWeight, layout: str = "auto", index_bits: int = 3, huffman=True):
    encoded = encode_layer("w", q, index_bits=index_bits, huffman=huffman, layout=layout)
    body, offset, streams = b"", 0, {}
    for role, stream in encoded.streams.items():
        streams[role] = stream.meta(offset)
        body += stream.table + stream.payload
        offset += stream.nbytes
    meta = encoded.meta | {"streams": streams}
    return meta, decode_layer(meta, body)


def _gapped(scheme: str, bits: int, codebook: np.ndarray) -> QuantizedWeight:
    """24 weights kept at 0, 2, 20 only: with 3-bit indices that needs two fillers."""
    mask = np.zeros(24, bool)
    mask[[0, 2, 20]] = True
    codes = np.ones(24, np.int32)
    return QuantizedWeight((4, 6), scheme, bits, codes, codebook.astype(np.float32), mask)


def test_linear_filler_uses_the_real_zero_level() -> None:
    q = _gapped("linear", 4, np.array([0.5, 1.0, 2.0, 4.0]))
    assert zero_code(q) == 7  # level 0 of 4-bit symmetric linear
    meta, back = _round_trip(q, layout="relative")
    assert meta["fillers"] == 2 and meta["entries"] == 5 and meta["kept"] == 3
    assert np.array_equal(back.dequantize(), q.dequantize())
    assert np.flatnonzero(back.mask).tolist() == [0, 2, 10, 18, 20]  # fillers are stored zeros
    assert back.codes[[10, 18]].tolist() == [7, 7]


def test_kmeans_without_zero_centroid_uses_the_extra_code() -> None:
    q = _gapped("kmeans", 2, np.array([-1.0, -0.5, 0.5, 1.0]))
    assert zero_code(q) == 4
    meta, back = _round_trip(q, layout="relative", huffman=False)
    assert meta["streams"]["values"]["width"] == 3  # codes 0..4 need one more bit
    assert np.array_equal(back.mask, q.mask)  # the extra code decodes to a pruned position
    assert np.array_equal(back.dequantize(), q.dequantize())


def test_kmeans_zero_centroid_is_the_zero_code_but_negative_zero_is_not() -> None:
    assert zero_code(_gapped("kmeans", 2, np.array([-1.0, 0.0, 0.5, 1.0]))) == 1
    assert zero_code(_gapped("kmeans", 2, np.array([-1.0, -0.0, 0.5, 1.0]))) == 4
    assert zero_code(_gapped("linear", 1, np.ones(4))) == 2  # binary levels have no zero


@pytest.mark.parametrize("layout", ["dense", "bitmap", "relative"])
@pytest.mark.parametrize("scheme", ["linear", "kmeans", "float"])
def test_every_layout_round_trips(make_weight, scheme: str, layout: str) -> None:
    q = make_weight((5, 3, 3, 3), scheme, 3, sparsity=0.7, seed=3)
    meta, back = _round_trip(q, layout=layout, index_bits=2)
    assert meta["layout"] == layout
    restored = back.dequantize()
    assert restored.dtype == np.float32
    assert np.array_equal(restored.view(np.uint32), q.dequantize().view(np.uint32))


def test_auto_picks_the_smallest_layout(make_weight) -> None:
    dense, _ = _round_trip(make_weight((20, 30), "kmeans", 4), index_bits=5)
    half, _ = _round_trip(make_weight((20, 30), "kmeans", 4, sparsity=0.5), index_bits=5)
    sparse, _ = _round_trip(make_weight((20, 30), "kmeans", 4, sparsity=0.95), index_bits=5)
    assert (dense["layout"], half["layout"], sparse["layout"]) == ("dense", "bitmap", "relative")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"codes": np.zeros(5, np.int32)}, "one integer code per weight"),
        ({"codes": np.full(12, 16, np.int32)}, r"0\.\.15"),
        ({"codebook": np.ones(3, np.float32)}, "one scale per output channel"),
        ({"mask": np.ones(4, bool)}, "one flag per weight"),
        ({"bits": 0}, "outside 1..16"),
        ({"scheme": "int8"}, "unknown scheme"),
    ],
)
def test_malformed_weights_are_rejected(change: dict, message: str) -> None:
    fields = {"shape": (2, 6), "scheme": "linear", "bits": 4, "mask": None}
    fields |= {"codes": np.zeros(12, np.int32), "codebook": np.ones(2, np.float32)}
    q = QuantizedWeight(**(fields | change))
    with pytest.raises(AutopruneError, match=message):
        check_weight("fc", q)
