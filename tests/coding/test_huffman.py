from __future__ import annotations

import math

import numpy as np
import pytest

from autoprune.coding._huffman import (
    MAX_CODE_LENGTH,
    canonical_codes,
    code_lengths,
    encode_with,
    huffman_decode,
    huffman_encode,
)


def _words(lengths: np.ndarray) -> list[str]:
    codes = canonical_codes(lengths)
    return [format(int(c), f"0{int(n)}b") for c, n in zip(codes, lengths, strict=True) if n]


def test_hand_example_lengths_and_codes() -> None:
    lengths = code_lengths(np.array([5, 2, 1, 1]))  # a, b, c, d
    assert lengths.tolist() == [1, 2, 3, 3]
    assert _words(lengths) == ["0", "10", "110", "111"]
    table, payload, nbits = huffman_encode(np.array([0] * 5 + [1] * 2 + [2, 3]))
    assert nbits == 5 * 1 + 2 * 2 + 3 + 3
    assert list(table) == [1, 2, 3, 3]
    assert len(payload) == math.ceil(nbits / 8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_codes_are_prefix_free_complete_and_near_entropy(seed: int) -> None:
    freqs = np.random.default_rng(seed).integers(0, 1000, 40)
    lengths = code_lengths(freqs)
    words = _words(lengths)
    assert not any(a != b and b.startswith(a) for a in words for b in words)
    used = lengths[lengths > 0].astype(float)
    assert math.isclose(np.sum(2.0**-used), 1.0)  # complete code (Kraft equality)
    p = freqs[freqs > 0] / freqs.sum()
    entropy = -np.sum(p * np.log2(p))
    average = np.sum(p * used)
    assert entropy <= average < entropy + 1


@pytest.mark.parametrize("kind", ["uniform", "skewed", "sparse_alphabet"])
def test_round_trip(kind: str) -> None:
    rng = np.random.default_rng(7)
    if kind == "uniform":
        symbols = rng.integers(0, 256, 5000)
    elif kind == "skewed":
        symbols = rng.geometric(0.4, 5000) - 1
    else:
        symbols = rng.choice([3, 100, 4000], 5000, p=[0.8, 0.15, 0.05])
    table, payload, nbits = huffman_encode(symbols)
    assert np.array_equal(huffman_decode(table, payload, symbols.size), symbols)
    if kind == "skewed":
        assert nbits < symbols.size * int(symbols.max()).bit_length()


def test_single_symbol_costs_one_bit_each() -> None:
    symbols = np.full(20, 9)
    table, payload, nbits = huffman_encode(symbols)
    assert nbits == 20 and len(payload) == 3
    assert np.array_equal(huffman_decode(table, payload, 20), symbols)


def test_empty_stream() -> None:
    assert huffman_encode(np.zeros(0, np.int64)) == (b"", b"", 0)
    assert huffman_decode(b"", b"", 0).size == 0
    assert code_lengths(np.zeros(4)).tolist() == [0, 0, 0, 0]


def test_deep_tree_is_limited_and_still_decodes() -> None:
    fibonacci = [1, 1]
    while len(fibonacci) < 50:
        fibonacci.append(fibonacci[-1] + fibonacci[-2])
    lengths = code_lengths(np.array(fibonacci))
    assert lengths.max() <= MAX_CODE_LENGTH
    symbols = np.arange(50).repeat(3)
    payload, _ = encode_with(symbols, lengths)
    assert np.array_equal(huffman_decode(lengths.tobytes(), payload, symbols.size), symbols)


def test_invalid_table_and_short_payload_are_rejected() -> None:
    with pytest.raises(ValueError, match="Kraft"):
        huffman_decode(bytes([1, 1, 1]), b"\x00", 3)
    table, payload, _ = huffman_encode(np.arange(16).repeat(4))
    with pytest.raises(ValueError, match="ends"):
        huffman_decode(table, payload[:-2], 64)
