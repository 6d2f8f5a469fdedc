"""Hand-made coded weights for the coding tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from autoprune.core.qtensor import QuantizedWeight

MakeWeight = Callable[..., QuantizedWeight]


def _codes(rng: np.random.Generator, size: int, alphabet: int, skewed: bool) -> np.ndarray:
    if skewed:  # most codes near the middle, like quantized Gaussian weights
        middle = alphabet // 2
        codes = np.round(rng.normal(middle, max(alphabet / 16, 0.3), size))
        return np.clip(codes, 0, alphabet - 1).astype(np.int32)
    return rng.integers(0, alphabet, size).astype(np.int32)


@pytest.fixture
def make_weight() -> MakeWeight:
    """Factory: ``make_weight(shape, scheme, bits, sparsity=0.0, seed=0, skewed=False)``.

    Codebooks hold no zero, so pruned positions can only be zero through the mask.
    """

    def make(
        shape: tuple[int, ...],
        scheme: str,
        bits: int,
        sparsity: float = 0.0,
        seed: int = 0,
        skewed: bool = False,
    ) -> QuantizedWeight:
        rng = np.random.default_rng(seed)
        size = int(np.prod(shape))
        mask = rng.random(size) >= sparsity if sparsity > 0 else None
        if scheme == "float":
            values = rng.normal(size=size).astype(np.float32)
            return QuantizedWeight(shape, "float", 32, np.zeros(0, np.int32), values, mask)
        if scheme == "linear":
            scales = rng.uniform(0.01, 0.1, shape[0]).astype(np.float32)
            codes = _codes(rng, size, 2**bits, skewed)
            return QuantizedWeight(shape, "linear", bits, codes, scales, mask)
        centroids = np.sort(rng.uniform(0.05, 1.0, 2**bits) * rng.choice([-1, 1], 2**bits))
        codes = _codes(rng, size, 2**bits, skewed)
        return QuantizedWeight(shape, "kmeans", bits, codes, centroids.astype(np.float32), mask)

    return make
