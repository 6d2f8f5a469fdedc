"""Actions of :class:`~envs.compression_env.CompressionEnv`: from ``[-1, 1]^k`` to layer settings.

One function, :func:`decode_action`, turns an agent's action into a :class:`LayerAction`.
Each mode searches some of four dimensions, always in this order (:data:`DIMENSIONS`):

* ``keep``: the keep ratio, linear in ``[min_keep, max_keep]`` (AMC);
* ``sparsity``: fine-grained magnitude sparsity inside the kept channels, linear in
  ``[0, max_sparsity]`` and *reversed* (action -1 gives ``max_sparsity``, +1 gives 0), so
  that in every dimension -1 is the cheapest setting and +1 the largest; it is rounded to
  multiples of :data:`SPARSITY_STEP`;
* ``w_bits`` and ``a_bits``: HAQ's equal-width bins over ``[min_bits, max_bits]``: with
  ``u`` the action mapped to ``[0, 1]``, ``bits = round((max - min + 1) * u + min - 0.5)``
  rounded half up and clipped to ``[min_bits, max_bits]``, so every bit-width gets the same
  share of the interval.

Modes: ``prune`` ``[keep]``; ``quantize`` ``[w_bits, a_bits]``; ``sparse``
``[sparsity, w_bits]`` (Deep Compression / Yang et al.: activations stay float); ``joint``
``[keep, sparsity, w_bits, a_bits]``. The environment then rounds the keep ratio to whole
channels and clips the setting against the budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from autoprune.core.errors import AutopruneError
from autoprune.core.policy import FLOAT_BITS, LayerPolicy
from autoprune.workflow.config import DEFAULT_MAX_SPARSITY

Mode = Literal["prune", "quantize", "sparse", "joint"]
Dimension = Literal["keep", "sparsity", "w_bits", "a_bits"]
MODES: tuple[Mode, ...] = ("prune", "quantize", "sparse", "joint")
DIMENSIONS: dict[Mode, tuple[Dimension, ...]] = {
    "prune": ("keep",),
    "quantize": ("w_bits", "a_bits"),
    "sparse": ("sparsity", "w_bits"),
    "joint": ("keep", "sparsity", "w_bits", "a_bits"),
}
"""The dimensions each mode searches, in action order (also the order of the budget wall)."""
ACTION_DIMS: dict[str, int] = {mode: len(dims) for mode, dims in DIMENSIONS.items()}
"""Action length per mode."""
SPARSITY_GRID = 1000
"""Sparsities are multiples of ``1 / SPARSITY_GRID`` (the evaluator caches them to 3 digits)."""
SPARSITY_STEP = 1.0 / SPARSITY_GRID
"""Resolution of the sparsity dimension."""


@dataclass(frozen=True)
class LayerAction:
    """A decoded action: what the agent asks for one layer, before rounding and clipping.

    Attributes:
        keep_ratio: Fraction of output channels to keep (1.0 when the mode does not prune).
        sparsity: Fraction of the kept weights zeroed by magnitude (0.0 when not searched).
        w_bits: Weight bits (``FLOAT_BITS`` when the mode does not quantize).
        a_bits: Input activation bits (``FLOAT_BITS`` when the mode does not quantize them).
    """

    keep_ratio: float = 1.0
    sparsity: float = 0.0
    w_bits: int = FLOAT_BITS
    a_bits: int = FLOAT_BITS


def unit_interval(value: float) -> float:
    """Map an action component from ``[-1, 1]`` to ``[0, 1]`` (clipping first)."""
    return (min(1.0, max(-1.0, value)) + 1.0) / 2.0


def bits_from_unit(u: float, min_bits: int, max_bits: int) -> int:
    """HAQ's equal-width bins: ``u`` in ``[0, 1]`` to an integer in ``[min_bits, max_bits]``.

    Example:
        >>> [bits_from_unit(u, 2, 8) for u in (0.0, 0.14, 0.15, 0.5, 0.99, 1.0)]
        [2, 2, 3, 5, 8, 8]
    """
    bins = max_bits - min_bits + 1
    bits = math.floor(bins * u + min_bits)  # round-half-up of bins * u + min_bits - 0.5
    return int(min(max_bits, max(min_bits, bits)))


def bits_action(bits: int, min_bits: int, max_bits: int) -> float:
    """The action value at the middle of ``bits``'s bin (the inverse of HAQ's bins).

    Example:
        >>> [bits_from_unit(unit_interval(bits_action(b, 2, 8)), 2, 8) for b in (2, 5, 8)]
        [2, 5, 8]
    """
    bins = max_bits - min_bits + 1
    return 2.0 * (bits - min_bits + 0.5) / bins - 1.0


def round_sparsity(sparsity: float, max_sparsity: float) -> float:
    """``sparsity`` on the grid of :data:`SPARSITY_STEP`, clipped to ``[0, max_sparsity]``.

    Example:
        >>> round_sparsity(0.12345, 0.98), round_sparsity(0.999, 0.98)
        (0.123, 0.98)
    """
    top = math.floor(max_sparsity * SPARSITY_GRID + 1e-9)
    step = min(top, max(0, round(sparsity * SPARSITY_GRID)))
    return step / SPARSITY_GRID


def sparsity_from_unit(u: float, max_sparsity: float) -> float:
    """``u`` in ``[0, 1]`` to a sparsity: 0 gives ``max_sparsity``, 1 gives 0 (rounded).

    Example:
        >>> [sparsity_from_unit(u, 0.9) for u in (0.0, 0.5, 1.0)]
        [0.9, 0.45, 0.0]
    """
    return round_sparsity((1.0 - u) * max_sparsity, max_sparsity)


def decode_action(
    action: np.ndarray,
    mode: Mode,
    *,
    min_keep: float,
    max_keep: float,
    min_bits: int,
    max_bits: int,
    max_sparsity: float = DEFAULT_MAX_SPARSITY,
) -> LayerAction:
    """Decode one action of ``mode`` into a :class:`LayerAction`.

    Args:
        action: Array of ``ACTION_DIMS[mode]`` finite values; values outside ``[-1, 1]`` are
            clipped. Layout: ``DIMENSIONS[mode]``, e.g. joint ``[keep, sparsity, w, a]``.
        mode: ``prune``, ``quantize``, ``sparse`` or ``joint``.
        min_keep: Keep ratio of action -1.
        max_keep: Keep ratio of action +1.
        min_bits: Smallest bit-width (the lowest bin).
        max_bits: Largest bit-width (the highest bin).
        max_sparsity: Sparsity of action -1 (action +1 is dense).

    Raises:
        AutopruneError: When the action has the wrong length or a non-finite value.

    Example:
        >>> decode_action(np.array([0.0, -1.0, -1.0, 1.0]), "joint",
        ...               min_keep=0.5, max_keep=1.0, min_bits=2, max_bits=8)
        LayerAction(keep_ratio=0.75, sparsity=0.995, w_bits=2, a_bits=8)
    """
    values = np.asarray(action, dtype=np.float64).reshape(-1)
    if values.size != ACTION_DIMS[mode]:
        raise AutopruneError(
            f"action has {values.size} values but mode '{mode}' takes {ACTION_DIMS[mode]}; "
            "sample actions from env.action_space"
        )
    if not np.all(np.isfinite(values)):
        raise AutopruneError(f"action {values.tolist()} is not finite; pass values in [-1, 1]")
    units = dict(zip(DIMENSIONS[mode], (unit_interval(float(v)) for v in values), strict=True))
    fields: dict[str, float | int] = {}
    if "keep" in units:
        fields["keep_ratio"] = min_keep + units["keep"] * (max_keep - min_keep)
    if "sparsity" in units:
        fields["sparsity"] = sparsity_from_unit(units["sparsity"], max_sparsity)
    for name in ("w_bits", "a_bits"):
        if name in units:
            fields[name] = bits_from_unit(units[name], min_bits, max_bits)
    return LayerAction(**fields)  # type: ignore[arg-type]


def encode_action(
    layer: LayerAction | LayerPolicy,
    mode: Mode,
    *,
    min_keep: float,
    max_keep: float,
    min_bits: int,
    max_bits: int,
    max_sparsity: float = DEFAULT_MAX_SPARSITY,
) -> np.ndarray:
    """The action that :func:`decode_action` decodes to ``layer`` (values clamped to the
    ranges; bits at the middle of their bin).

    Example:
        >>> ranges = dict(min_keep=0.5, max_keep=1.0, min_bits=2, max_bits=8)
        >>> decode_action(encode_action(LayerAction(0.75, 0.5, 3, 8), "joint", **ranges),
        ...               "joint", **ranges)
        LayerAction(keep_ratio=0.75, sparsity=0.5, w_bits=3, a_bits=8)
    """
    span = max_keep - min_keep
    units = {
        "keep": (layer.keep_ratio - min_keep) / span if span > 0 else 1.0,
        "sparsity": 1.0 - layer.sparsity / max_sparsity if max_sparsity > 0 else 1.0,
        "w_bits": (bits_action(layer.w_bits, min_bits, max_bits) + 1.0) / 2.0,
        "a_bits": (bits_action(layer.a_bits, min_bits, max_bits) + 1.0) / 2.0,
    }
    values = [2.0 * min(1.0, max(0.0, units[dim])) - 1.0 for dim in DIMENSIONS[mode]]
    return np.asarray(values, dtype=np.float32)
