"""Canonical Huffman coding of non-negative integer symbols.

The code is stored as its table of code lengths, one byte per symbol ``0 .. A - 1``
(0 = symbol absent); both sides rebuild the same canonical codes from it (shorter codes
first, ties by symbol value), so no code words are stored. Bits are written MSB first.

A stream with one distinct symbol gets a 1-bit code, so it costs one bit per symbol.
"""

from __future__ import annotations

import heapq

import numpy as np

MAX_CODE_LENGTH = 32
"""Longest code word; a deeper tree is flattened (frequencies halved) until it fits."""


def _tree_depths(weights: list[int]) -> list[int]:
    """Leaf depths of a Huffman tree over ``weights`` (at least two positive weights)."""
    count = len(weights)
    heap = [(weight, node) for node, weight in enumerate(weights)]
    heapq.heapify(heap)
    parent = [0] * (2 * count - 1)
    next_node = count
    while len(heap) > 1:
        weight_a, node_a = heapq.heappop(heap)
        weight_b, node_b = heapq.heappop(heap)
        parent[node_a] = parent[node_b] = next_node
        heapq.heappush(heap, (weight_a + weight_b, next_node))
        next_node += 1
    depth = [0] * (2 * count - 1)
    for node in range(2 * count - 3, -1, -1):  # parents always have larger ids than children
        depth[node] = depth[parent[node]] + 1
    return depth[:count]


def code_lengths(freqs: np.ndarray, max_length: int = MAX_CODE_LENGTH) -> np.ndarray:
    """Huffman code length of each symbol (uint8, 0 for symbols with zero frequency).

    Example:
        >>> code_lengths(np.array([5, 2, 1, 1])).tolist()
        [1, 2, 3, 3]
    """
    freqs = np.asarray(freqs, dtype=np.int64)
    lengths = np.zeros(freqs.size, dtype=np.uint8)
    present = np.flatnonzero(freqs > 0)
    if present.size == 1:
        lengths[present] = 1
    if present.size <= 1:
        return lengths
    assert present.size <= 1 << max_length, "alphabet too large for the length limit"
    weights = freqs[present]
    depths = _tree_depths(weights.tolist())
    while max(depths) > max_length:
        weights = (weights + 1) // 2  # flatter distribution, every weight stays >= 1
        depths = _tree_depths(weights.tolist())
    lengths[present] = depths
    return lengths


def _canonical_order(lengths: np.ndarray) -> np.ndarray:
    """Present symbols sorted by (code length, symbol)."""
    present = np.flatnonzero(lengths)
    return present[np.argsort(lengths[present], kind="stable")]


def canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """Canonical code word of each symbol (uint64; read with its length, MSB first).

    Example:
        >>> canonical_codes(np.array([1, 2, 3, 3])).tolist()
        [0, 2, 6, 7]
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    codes = np.zeros(lengths.size, dtype=np.uint64)
    code = 0
    previous = 0
    for symbol in _canonical_order(lengths).tolist():
        length = int(lengths[symbol])
        code <<= length - previous
        codes[symbol] = code
        code += 1
        previous = length
    return codes


def _check_table(lengths: np.ndarray) -> None:
    """Raise ValueError unless ``lengths`` describe a prefix-free code."""
    if lengths.size == 0 or int(lengths.max()) == 0:
        raise ValueError("Huffman table has no symbols")
    longest = int(lengths.max())
    if longest > MAX_CODE_LENGTH:
        raise ValueError(f"Huffman code length {longest} exceeds {MAX_CODE_LENGTH}")
    used = lengths[lengths > 0].astype(np.int64)
    if int(np.sum(np.left_shift(1, longest - used))) > 1 << longest:
        raise ValueError("Huffman table violates the Kraft inequality")


def encode_with(symbols: np.ndarray, lengths: np.ndarray) -> tuple[bytes, int]:
    """Encode ``symbols`` with the canonical code of ``lengths``; returns (bytes, bit count)."""
    symbols = np.asarray(symbols, dtype=np.int64).ravel()
    if symbols.size == 0:
        return b"", 0
    lengths = np.asarray(lengths, dtype=np.int64)
    codes = canonical_codes(lengths)
    longest = int(lengths.max())
    # Row s of `table` holds the code of symbol s, MSB first, zero beyond its length.
    column = np.arange(longest)[None, :]
    inside = column < lengths[:, None]
    shifts = np.where(inside, lengths[:, None] - 1 - column, 0).astype(np.uint64)
    table = ((codes[:, None] >> shifts) & np.uint64(1)).astype(np.uint8)
    bits = table[symbols][inside[symbols]]
    return np.packbits(bits).tobytes(), int(bits.size)


def huffman_encode(symbols: np.ndarray) -> tuple[bytes, bytes, int]:
    """Huffman-code a stream of non-negative integers.

    Returns:
        ``(table, payload, bit_count)``: the code-length table (one byte per symbol up to the
        largest one present), the packed code words and how many payload bits are used.

    Example:
        >>> table, payload, nbits = huffman_encode(np.array([0, 0, 0, 1, 2]))
        >>> list(table), nbits, huffman_decode(table, payload, 5).tolist()
        ([1, 2, 2], 7, [0, 0, 0, 1, 2])
    """
    symbols = np.asarray(symbols, dtype=np.int64).ravel()
    if symbols.size == 0:
        return b"", b"", 0
    assert symbols.min() >= 0, "symbols must be non-negative"
    lengths = code_lengths(np.bincount(symbols))
    payload, bit_count = encode_with(symbols, lengths)
    return lengths.tobytes(), payload, bit_count


def _windows(payload: bytes, width: int) -> np.ndarray:
    """The ``width`` bits starting at every bit position of ``payload`` (zero-padded)."""
    data = np.frombuffer(payload, dtype=np.uint8)
    padded = np.concatenate([data, np.zeros(8, dtype=np.uint8)]).astype(np.uint64)
    words = np.zeros(data.size, dtype=np.uint64)
    for k in range(8):  # big-endian 64-bit word at every byte offset
        words = (words << np.uint64(8)) | padded[k : k + data.size]
    position = np.arange(data.size * 8)
    aligned = words[position >> 3] << (position & 7).astype(np.uint64)
    return aligned >> np.uint64(64 - width)


def huffman_decode(table: bytes, payload: bytes, count: int) -> np.ndarray:
    """Decode ``count`` symbols written by :func:`huffman_encode` (int64 array).

    Raises:
        ValueError: The table is not a valid code or the payload ends too early.
    """
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    lengths = np.frombuffer(table, dtype=np.uint8).astype(np.int64)
    _check_table(lengths)
    longest = int(lengths.max())
    order = _canonical_order(lengths)
    codes = canonical_codes(lengths)[order]
    # Canonical codes, left-aligned, increase in canonical order: the code at a bit
    # position is the last one whose left-aligned value is <= the window there.
    starts = codes << (longest - lengths[order]).astype(np.uint64)
    entry = np.searchsorted(starts, _windows(payload, longest), side="right") - 1
    step = lengths[order][entry].tolist()
    total_bits = len(payload) * 8
    if count > total_bits:  # every symbol takes at least one bit: checked before allocating
        raise ValueError(f"{count} symbols cannot fit in {len(payload)} bytes")
    positions = [0] * count
    position = 0
    for index in range(count):
        if position >= total_bits:
            raise ValueError("Huffman payload ends before the last symbol")
        positions[index] = position
        position += step[position]
    if position > total_bits:
        raise ValueError("Huffman payload ends inside the last symbol")
    return order[entry[np.asarray(positions)]].astype(np.int64)
