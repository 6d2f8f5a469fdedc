"""Sparse positions as relative indices (Deep Compression) or as a bitmap.

Relative indices: each stored entry records the gap to the previous stored entry
(the first one's gap counts from position -1), written as ``gap - 1`` in ``index_bits``
bits, so gaps ``1 .. 2**index_bits`` fit. A longer gap gets *filler* entries, each
exactly ``2**index_bits`` past the previous entry; the caller stores a weight code that
decodes to zero for every filler (Han et al. 2016, Fig. 2: 3-bit indices, gaps up to 8).
"""

from __future__ import annotations

import numpy as np


def relative_encode(positions: np.ndarray, index_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Gap-encode sorted flat positions, inserting fillers where a gap overflows.

    Args:
        positions: Strictly increasing flat indices of the kept weights.
        index_bits: Bits per stored gap.

    Returns:
        ``(stored, source)``: ``stored[i] = gap_i - 1`` for every entry (fillers included)
        and ``source[i]``, the index into ``positions`` of entry ``i`` or -1 for a filler.

    Example:
        >>> stored, source = relative_encode(np.array([0, 2, 20]), index_bits=3)
        >>> stored.tolist(), source.tolist()
        ([0, 1, 7, 7, 1], [0, 1, -1, -1, 2])
    """
    assert index_bits >= 1
    positions = np.asarray(positions, dtype=np.int64).ravel()
    span = 1 << index_bits
    gaps = np.diff(positions, prepend=-1)
    assert positions.size == 0 or gaps.min() >= 1, "positions must be strictly increasing"
    fillers = (gaps - 1) // span
    ends = np.cumsum(fillers + 1) - 1  # entry index of each real position
    stored = np.full(int(ends[-1]) + 1 if positions.size else 0, span - 1, dtype=np.int64)
    stored[ends] = gaps - 1 - fillers * span
    source = np.full(stored.size, -1, dtype=np.int64)
    source[ends] = np.arange(positions.size)
    return stored, source


def relative_decode(stored: np.ndarray) -> np.ndarray:
    """Flat position of every entry (fillers included) from the stored ``gap - 1`` values.

    Example:
        >>> relative_decode(np.array([0, 1, 7, 7, 1])).tolist()
        [0, 2, 10, 18, 20]
    """
    return np.cumsum(np.asarray(stored, dtype=np.int64) + 1) - 1


def bitmap_encode(mask: np.ndarray) -> bytes:
    """One bit per weight, MSB first, 1 where the weight is kept."""
    return np.packbits(np.asarray(mask, dtype=bool).ravel()).tobytes()


def bitmap_decode(data: bytes, size: int) -> np.ndarray:
    """The bool mask of ``size`` weights written by :func:`bitmap_encode`.

    Raises:
        ValueError: ``data`` holds fewer than ``size`` bits.
    """
    if len(data) * 8 < size:
        raise ValueError(f"{len(data)} bytes cannot hold a mask of {size} weights")
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8), count=size).astype(bool)
