"""The shared, framework-free form of one compressed weight tensor.

The quantizers (``autoprune.compress``) produce a :class:`QuantizedWeight` per layer and
the storage coder (``autoprune.coding``) writes it; both sides compute the float weights
with :meth:`QuantizedWeight.dequantize`, so a decoded file equals the compressed model
bit for bit.

Schemes:
    ``linear``: symmetric per-output-channel; ``codebook`` holds one float32 scale per
        channel and ``weight[c, ...] = codebook[c] * linear_levels(bits)[code]``.
    ``kmeans``: one shared float32 codebook of at most ``2**bits`` centroids per layer;
        ``weight = codebook[code]``.
    ``float``: no quantization; ``codebook`` holds the float32 values in flat order.
Pruned positions (``mask`` False) are exactly zero in every scheme.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Scheme = Literal["linear", "kmeans", "float"]


def linear_levels(bits: int) -> np.ndarray:
    """Integer level of each code for symmetric linear quantization.

    ``bits == 1`` gives the binary levels ``{-1, +1}``; otherwise the ``2**bits - 1``
    symmetric levels ``-(2**(bits-1) - 1) .. 2**(bits-1) - 1`` (the top code is unused).

    Example:
        >>> linear_levels(2).tolist()
        [-1, 0, 1, 2]
        >>> linear_levels(1).tolist()
        [-1, 1]
    """
    if bits == 1:
        return np.array([-1, 1], dtype=np.int32)
    half = 2 ** (bits - 1) - 1
    return np.arange(-half, 2**bits - half, dtype=np.int32)


def linear_max_level(bits: int) -> int:
    """Largest level magnitude used by :func:`linear_levels` (1 for binary)."""
    return 1 if bits == 1 else 2 ** (bits - 1) - 1


@dataclass(frozen=True)
class QuantizedWeight:
    """One layer's weight in coded form.

    Attributes:
        shape: Shape of the float weight; dim 0 is the output channel.
        scheme: ``linear``, ``kmeans`` or ``float`` (see module docstring).
        bits: Bits per code (32 for ``float``).
        codes: int32 array of ``prod(shape)`` codes in flat order (empty for ``float``).
        codebook: float32 scales (linear), centroids (kmeans) or flat values (float).
        mask: bool array of ``prod(shape)`` entries, False where the weight is pruned;
            None when nothing is pruned.

    Example:
        >>> q = QuantizedWeight((2, 2), "kmeans", 1, np.array([0, 1, 1, 0], np.int32),
        ...                     np.array([-0.5, 0.5], np.float32), None)
        >>> q.dequantize().tolist()
        [[-0.5, 0.5], [0.5, -0.5]]
    """

    shape: tuple[int, ...]
    scheme: Scheme
    bits: int
    codes: np.ndarray
    codebook: np.ndarray
    mask: np.ndarray | None

    @property
    def size(self) -> int:
        """Number of weights."""
        return int(np.prod(self.shape))

    @property
    def nonzeros(self) -> int:
        """Number of unpruned weights."""
        return self.size if self.mask is None else int(self.mask.sum())

    def dequantize(self) -> np.ndarray:
        """The float32 weight this code stands for."""
        if self.scheme == "float":
            flat = self.codebook.astype(np.float32, copy=True)
        elif self.scheme == "kmeans":
            flat = self.codebook.astype(np.float32)[self.codes]
        elif self.scheme == "linear":
            levels = linear_levels(self.bits).astype(np.float32)[self.codes]
            per_channel = levels.reshape(self.shape[0], -1)
            flat = (self.codebook.astype(np.float32)[:, None] * per_channel).reshape(-1)
        else:
            raise ValueError(f"unknown scheme {self.scheme!r}")
        if self.mask is not None:
            flat = np.where(self.mask, flat, np.float32(0.0))
        return flat.reshape(self.shape)
