"""Fixed-width bit packing of non-negative integer codes, most significant bit first."""

from __future__ import annotations

import numpy as np

MAX_WIDTH = 32
"""Widest code :func:`pack_bits` accepts."""


def width_for(alphabet_size: int) -> int:
    """Bits needed to write the codes ``0 .. alphabet_size - 1`` (at least 1).

    Example:
        >>> width_for(16), width_for(17), width_for(1)
        (4, 5, 1)
    """
    return max(1, (int(alphabet_size) - 1).bit_length())


def packed_size(count: int, width: int) -> int:
    """Bytes that :func:`pack_bits` writes for ``count`` codes of ``width`` bits."""
    return (count * width + 7) // 8


def pack_bits(values: np.ndarray, width: int) -> bytes:
    """Write each value in ``width`` bits, MSB first, zero-padded to whole bytes.

    Example:
        >>> pack_bits(np.array([1, 2, 3]), 2).hex()
        '6c'
    """
    assert 1 <= width <= MAX_WIDTH, width
    flat = np.asarray(values).astype(np.int64).ravel()
    if flat.size == 0:
        return b""
    assert flat.min() >= 0 and int(flat.max()) < (1 << width), "value does not fit the width"
    bits = np.empty((flat.size, width), dtype=np.uint8)
    for column in range(width):
        bits[:, column] = (flat >> (width - 1 - column)) & 1
    return np.packbits(bits.ravel()).tobytes()


def unpack_bits(data: bytes, width: int, count: int) -> np.ndarray:
    """Read ``count`` values of ``width`` bits written by :func:`pack_bits` (int64).

    Raises:
        ValueError: ``data`` holds fewer than ``count * width`` bits.
    """
    if not 1 <= width <= MAX_WIDTH:
        raise ValueError(f"bit width {width} is outside 1..{MAX_WIDTH}")
    if len(data) < packed_size(count, width):
        raise ValueError(f"{len(data)} bytes cannot hold {count} codes of {width} bits")
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    raw = np.frombuffer(data, dtype=np.uint8)
    bits = np.unpackbits(raw, count=count * width).reshape(count, width)
    values = np.zeros(count, dtype=np.int64)
    for column in range(width):
        values = (values << 1) | bits[:, column]
    return values
