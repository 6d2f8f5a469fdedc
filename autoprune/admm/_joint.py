"""The ADMM projection step: the nearest sparse, k-means-coded copy V within the size budget.

The exact projection (minimise ‖X − V‖² over masks and bit-widths with Σ bits × nonzeros
≤ budget) is a joint knapsack; as Yang et al. (2020) we solve it by alternating the two
knapsacks of :mod:`autoprune.admm._projection`: (a) the sparsity knapsack with the bit-widths
fixed, then (b) the bit-width knapsack with the new masks fixed (``rounds`` times).

The alternation has self-consistent fixed points: started at 8 bits, (a) keeps ``B / 8``
weights and (b) can then afford 8 bits for all of them again. So the projection runs the
alternation from several starts — the current bit-widths and every uniform width of the
options — and keeps the result with the smallest projection error
``Σ pruned x² + Σ k-means distortion``, the quantity the projection minimises. Every start
ends with (b), so every candidate satisfies the budget.

Optionally (:class:`Overhead`) the budget also counts what a file stores beyond the codes:
an index per kept weight and float32 codebooks. Step (a) then reserves full codebooks at the
current widths and scores weights by ``w² / (b_l + index_l)``; step (b) prices each option
with its indices and codebook. Without it the count is exactly Yang et al.'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch

from autoprune.admm._projection import (
    DEFAULT_BIT_OPTIONS,
    DISTORTION_ITERS,
    bit_options,
    check_bit_options,
    choose_bits,
    project_sparsity,
    yang_bits,
)
from autoprune.compress.kmeans import kmeans_1d


@dataclass(frozen=True)
class Projection:
    """The projected copy V of a set of layer weights.

    Attributes:
        masks: Kept weights per layer (True = kept).
        bits: k-means code width per layer.
        values: V itself: kept weights replaced by their k-means centroid, pruned ones zero.
        error: Estimated ‖X − V‖² (pruned energy plus k-means distortion).
        cost_bits: The budgeted size of V: Σ bits × nonzeros plus any overhead.

    Example:
        >>> p = project_joint({"a": torch.tensor([0.0, 1.0, 2.0, 3.0])}, budget_bits=8)
        >>> p.bits, p.masks["a"].tolist(), p.yang_bits
        ({'a': 2}, [True, True, True, True], 8)
    """

    masks: dict[str, torch.Tensor]
    bits: dict[str, int]
    values: dict[str, torch.Tensor]
    error: float
    cost_bits: int

    @property
    def yang_bits(self) -> int:
        """Σ bits × nonzeros of V."""
        return yang_bits(self.masks, self.bits)


def quantize_kept(
    weight: torch.Tensor, mask: torch.Tensor, bits: int, max_iter: int
) -> torch.Tensor:
    """``weight`` with kept entries replaced by their k-means centroid and the rest zeroed."""
    flat = weight.detach().reshape(-1)
    keep = mask.reshape(-1)
    out = torch.zeros_like(flat)
    if bool(keep.any()):
        centroids, assignments = kmeans_1d(flat[keep], bits, max_iter)
        out[keep] = centroids.to(flat.dtype)[assignments]
    return out.reshape(weight.shape)


@dataclass(frozen=True)
class Overhead:
    """Storage the budget counts beyond Yang et al.'s Σ bits × nonzeros (none by default).

    Example:
        >>> Overhead({"fc": 5}, codebook_bits=32).bits({"fc": 2})
        128
    """

    index_bits: Mapping[str, int] | None = None
    """Bits per kept weight and layer (e.g. relative indices: 5 fc, 8 conv)."""
    codebook_bits: int = 0
    """Bits per codebook entry (32 for float32 centroids)."""

    def index(self, name: str) -> int:
        """Index bits of one layer."""
        return int((self.index_bits or {}).get(name, 0))

    def bits(self, widths: Mapping[str, int]) -> int:
        """Upper bound of the codebooks' bits at these widths (full codebooks)."""
        return sum(self.codebook_bits * 2**b for b in widths.values())


def _alternate(
    weights: Mapping[str, torch.Tensor],
    bits: dict[str, int],
    budget_bits: float,
    settings: tuple[tuple[int, ...], int, int, Overhead],
) -> tuple[dict[str, torch.Tensor], dict[str, int], float, int]:
    """(a) then (b), ``rounds`` times; the masks, bits, estimated error and cost in bits."""
    widths, rounds, max_iter, overhead = settings
    for _ in range(rounds):
        room = budget_bits - overhead.bits(bits)
        masks = project_sparsity(weights, bits, room, index_bits=overhead.index_bits)
        table = {
            n: bit_options(
                weights[n][masks[n]],
                widths,
                max_iter,
                index_bits=overhead.index(n),
                codebook_bits=overhead.codebook_bits,
            )
            for n in weights
        }
        chosen = choose_bits(table, budget_bits)
        bits = {name: option.bits for name, option in chosen.items()}
    error = sum(option.distortion for option in chosen.values())
    error += sum(float((weights[n][~masks[n]].double() ** 2).sum()) for n in weights)
    return masks, bits, error, sum(option.cost for option in chosen.values())


def project_joint(
    weights: Mapping[str, torch.Tensor],
    budget_bits: float,
    *,
    bits: Mapping[str, int] | None = None,
    options: Iterable[int] = DEFAULT_BIT_OPTIONS,
    rounds: int = 1,
    max_iter: int = DISTORTION_ITERS,
    overhead: Overhead | None = None,
) -> Projection:
    """Project ``weights`` onto sparse k-means-coded tensors with Σ bits × nonzeros ≤ budget.

    Args:
        weights: The tensors to project (ADMM passes W + Y), by layer name.
        budget_bits: The size budget in bits.
        bits: Current bit-widths (one more start of the alternation); None: only the
            uniform starts.
        options: Candidate widths per layer, in 1..8.
        rounds: Alternations of (a) and (b) per start.
        max_iter: Lloyd iterations of the k-means inside the projection.
        overhead: Storage counted beyond Σ bits × nonzeros (None: Yang et al.'s count).
    """
    widths = check_bit_options(options)
    settings = (widths, max(1, rounds), max_iter, overhead or Overhead())
    starts = [dict.fromkeys(weights, width) for width in widths]
    if bits is not None and all(bits.get(n) in widths for n in weights):
        starts.insert(0, {n: int(bits[n]) for n in weights})
    best = None
    for start in starts:
        candidate = _alternate(weights, start, budget_bits, settings)
        if best is None or candidate[2] < best[2]:
            best = candidate
    assert best is not None
    masks, chosen, error, cost = best
    assert yang_bits(masks, chosen) <= cost <= budget_bits, "projection left the budget"
    values = {n: quantize_kept(weights[n], masks[n], chosen[n], max_iter) for n in weights}
    return Projection(masks, chosen, values, error, cost)
