"""The two knapsack projections of Yang et al. (CVPR 2020) onto a model-size budget.

The constraint is one number for the whole model: ``Σ_l bits_l × nonzeros_l ≤ budget``
(bits). Each projection solves one half of it with the other half fixed:

* :func:`project_sparsity` — with the bit-width of every layer fixed, which weights to keep.
  A kept weight ``w`` of layer ``l`` is a knapsack item of value ``w²`` and cost ``b_l`` bits;
  the greedy keeps the items in order of ``w² / b_l`` (highest first) and stops at the first
  item that no longer fits (Dantzig's greedy: the integral part of the LP relaxation, exact up
  to one item's bits). Within a layer this is magnitude pruning; across layers a weight in a
  layer coded with fewer bits is cheaper and so kept more readily.
* :func:`project_bits` — with the kept weights fixed, which bit-width per layer (a
  multiple-choice knapsack). Option ``b`` of a layer costs ``b × nonzeros`` bits and loses
  the k-means distortion of its kept weights at ``b`` bits. Dominated options (more bits, not
  a lower distortion) are removed; every layer starts at its cheapest option and the greedy
  repeatedly takes the upgrade with the largest distortion reduction per extra bit among those
  that still fit. Upgrades may skip options (1 → 3 bits), so a layer whose distortion falls
  late is not stuck behind a flat step.

Both functions are pure: tensors in, masks or bit-widths out; ties go to the earlier layer
(mapping order) and the earlier weight (flat order).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch

from autoprune.compress.kmeans import kmeans_1d
from autoprune.core.errors import AutopruneError

DEFAULT_BIT_OPTIONS = tuple(range(1, 9))
"""Bit-widths searched per layer (Yang et al.: 1..8)."""
DISTORTION_ITERS = 30
"""Lloyd iterations of the k-means that measures an option's distortion."""
DISTORTION_SAMPLE = 16384
"""Kept values per layer beyond which a distortion is estimated on a sample of that size."""


def yang_bits(masks: Mapping[str, torch.Tensor], bits: Mapping[str, int]) -> int:
    """Σ bits × nonzeros over the layers: the model size counted by Yang et al., in bits.

    Example:
        >>> yang_bits({"a": torch.tensor([True, False, True])}, {"a": 4})
        8
    """
    return sum(int(bits[name]) * int(mask.sum()) for name, mask in masks.items())


def project_sparsity(
    weights: Mapping[str, torch.Tensor],
    bits: Mapping[str, int],
    budget_bits: float,
    *,
    index_bits: Mapping[str, int] | None = None,
) -> dict[str, torch.Tensor]:
    """Masks keeping the weights of highest ``w² / b_l`` while the bit budget allows.

    Args:
        weights: The weights to project, by layer name (any shapes).
        bits: The (fixed) bit-width of each layer, a positive integer.
        budget_bits: The budget ``Σ bits_l × kept_l`` must not exceed.
        index_bits: Optional storage overhead per kept weight and layer (e.g. the relative
            index); a kept weight then costs ``b_l + index_bits_l`` and scores
            ``w² / (b_l + index_bits_l)``. None: Yang et al.'s count.

    Returns:
        A boolean mask per layer (True = kept), shaped like its weight.

    Example:
        >>> masks = project_sparsity({"a": torch.tensor([0.5, -0.1, 0.3]),
        ...                           "b": torch.tensor([0.4, 0.05])}, {"a": 2, "b": 4}, 8)
        >>> masks["a"].tolist(), masks["b"].tolist()
        ([True, False, True], [True, False])
    """
    names = list(weights)
    _check_bits_for(names, bits)
    unit = {name: int(bits[name]) + int((index_bits or {}).get(name, 0)) for name in names}
    flats = [weights[name].detach().reshape(-1).to(torch.float64).cpu() for name in names]
    pairs = list(zip(names, flats, strict=True))
    scores = torch.cat([flat * flat / unit[name] for name, flat in pairs])
    costs = torch.cat([torch.full((flat.numel(),), float(unit[name])) for name, flat in pairs])
    order = torch.argsort(scores, descending=True, stable=True)
    spent = torch.cumsum(costs.to(torch.float64)[order], 0)
    count = int(torch.searchsorted(spent, torch.tensor([float(budget_bits)]), right=True))
    keep = torch.zeros(scores.numel(), dtype=torch.bool)
    keep[order[:count]] = True
    masks, start = {}, 0
    for name, flat in pairs:
        mask = keep[start : start + flat.numel()].reshape(weights[name].shape)
        masks[name] = mask.to(weights[name].device)
        start += flat.numel()
    return masks


def _check_bits_for(names: list[str], bits: Mapping[str, int]) -> None:
    for name in names:
        if name not in bits or int(bits[name]) < 1:
            raise AutopruneError(
                f"layer '{name}' has no positive bit-width in bits; give every layer 1..32 bits"
            )


@dataclass(frozen=True)
class BitOption:
    """One choice of the bit-width knapsack for one layer.

    Attributes:
        bits: Code width.
        cost: ``bits × nonzeros`` in bits (plus any storage overhead, see
            :func:`bit_options`).
        distortion: Σ (w − centroid(w))² of the kept weights after k-means at ``bits``.
    """

    bits: int
    cost: int
    distortion: float


def _sample_sorted(flat: torch.Tensor, max_values: int | None) -> torch.Tensor:
    """``max_values`` evenly spaced order statistics of ``flat`` (min and max included)."""
    if max_values is None or flat.numel() <= max_values:
        return flat
    ordered = torch.sort(flat).values
    picks = torch.linspace(0, flat.numel() - 1, max_values, dtype=torch.float64)
    return ordered[picks.round().to(torch.int64)]


def kmeans_distortion(
    values: torch.Tensor,
    bits: int,
    max_iter: int = DISTORTION_ITERS,
    max_values: int | None = DISTORTION_SAMPLE,
) -> float:
    """Squared error of coding ``values`` with a k-means codebook of ``2**bits`` entries.

    Beyond ``max_values`` values the error is estimated on that many evenly spaced order
    statistics (the smallest and largest included) and scaled to the full count.

    Example:
        >>> kmeans_distortion(torch.tensor([0.0, 1.0, 2.0, 3.0]), 1)
        1.0
    """
    flat = values.detach().reshape(-1).to(torch.float64).cpu()
    if flat.numel() == 0:
        return 0.0
    sample = _sample_sorted(flat, max_values)
    centroids, assignments = kmeans_1d(sample, bits, max_iter)
    error = float(((sample - centroids.to(torch.float64)[assignments]) ** 2).sum())
    return error * flat.numel() / sample.numel()


def bit_options(
    values: torch.Tensor,
    options: Iterable[int],
    max_iter: int = DISTORTION_ITERS,
    max_values: int | None = DISTORTION_SAMPLE,
    *,
    index_bits: int = 0,
    codebook_bits: int = 0,
) -> list[BitOption]:
    """The non-dominated options of one layer, by increasing bits (and decreasing distortion).

    An option is dominated when a cheaper one has the same or a lower distortion. Its cost
    is ``(bits + index_bits) × n`` plus ``codebook_bits`` per codebook entry
    (``min(2**bits, n)`` entries); both overheads are 0 in Yang et al.'s count.

    Example:
        >>> [o.bits for o in bit_options(torch.tensor([0.0, 1.0, 2.0, 3.0]), range(1, 9))]
        [1, 2]
    """
    count = values.numel()
    kept: list[BitOption] = []
    for bits in sorted(set(options)):
        distortion = kmeans_distortion(values, bits, max_iter, max_values)
        if not kept or distortion < kept[-1].distortion:
            cost = (bits + index_bits) * count + codebook_bits * min(2**bits, count)
            kept.append(BitOption(bits, cost, distortion))
    return kept


def check_bit_options(options: Iterable[int]) -> tuple[int, ...]:
    """The sorted distinct widths of ``options``; an error unless all are in 1..8."""
    widths = tuple(sorted(set(options)))
    if not widths or any(not 1 <= b <= 8 for b in widths):
        raise AutopruneError(
            f"bit options {list(widths)} must be a non-empty set of widths in 1..8; "
            "use e.g. range(1, 9)"
        )
    return widths


def _best_upgrade(
    table: Mapping[str, list[BitOption]], choice: dict[str, int], room: float
) -> tuple[str, int] | None:
    """The (layer, option index) with the largest distortion drop per extra bit that fits."""
    best, best_ratio = None, -1.0
    for name, opts in table.items():
        current = opts[choice[name]]
        for index in range(choice[name] + 1, len(opts)):
            extra = opts[index].cost - current.cost
            if extra > room:
                break
            ratio = (current.distortion - opts[index].distortion) / extra
            if ratio > best_ratio:
                best, best_ratio = (name, index), ratio
    return best


def choose_bits(table: Mapping[str, list[BitOption]], budget_bits: float) -> dict[str, BitOption]:
    """The greedy multiple-choice knapsack over non-dominated options (see module docstring).

    Raises:
        AutopruneError: When the cheapest option of every layer already exceeds the budget.
    """
    choice = dict.fromkeys(table, 0)
    spent = sum(opts[0].cost for opts in table.values())
    if spent > budget_bits:
        smallest = min((opts[0].bits for opts in table.values()), default=1)
        raise AutopruneError(
            f"budget of {budget_bits:g} bits is below the {spent} bits of the kept weights at "
            f"{smallest} bit(s); prune more weights first (project_sparsity) or raise the budget"
        )
    while (upgrade := _best_upgrade(table, choice, budget_bits - spent)) is not None:
        name, index = upgrade
        spent += table[name][index].cost - table[name][choice[name]].cost
        choice[name] = index
    return {name: table[name][choice[name]] for name in table}


def project_bits(
    weights_masked: Mapping[str, torch.Tensor],
    budget_bits: float,
    options: Iterable[int] = DEFAULT_BIT_OPTIONS,
    *,
    max_iter: int = DISTORTION_ITERS,
    max_values: int | None = DISTORTION_SAMPLE,
    index_bits: Mapping[str, int] | None = None,
    codebook_bits: int = 0,
) -> dict[str, int]:
    """Bit-width per layer minimising the total k-means distortion within the budget.

    Args:
        weights_masked: The kept (unpruned) values of each layer, e.g. ``weight[mask]``;
            every value counts as one nonzero.
        budget_bits: The budget ``Σ bits_l × nonzeros_l`` must not exceed.
        options: Candidate widths, each in 1..8.
        max_iter: Lloyd iterations of each distortion's k-means.
        max_values: Values per layer beyond which the distortion is estimated on a sample.
        index_bits: Optional storage overhead per nonzero and layer (see
            :func:`bit_options`); None: Yang et al.'s count.
        codebook_bits: Optional overhead per codebook entry (32 for float32 centroids).

    Returns:
        The chosen width per layer (a layer without kept values gets the smallest width).

    Raises:
        AutopruneError: When even the smallest width of every layer exceeds the budget.

    Example:
        >>> project_bits({"b": torch.tensor([0.0, 1.0, 2.0, 3.0]),
        ...               "c": torch.arange(8.0)}, budget_bits=20)
        {'b': 1, 'c': 2}
    """
    widths = check_bit_options(options)
    table = {
        name: bit_options(
            values,
            widths,
            max_iter,
            max_values,
            index_bits=int((index_bits or {}).get(name, 0)),
            codebook_bits=codebook_bits,
        )
        for name, values in weights_masked.items()
    }
    return {name: option.bits for name, option in choose_bits(table, budget_bits).items()}
