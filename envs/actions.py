"""Actions of :class:`~envs.compression_env.CompressionEnv`: from ``[-1, 1]^k`` to layer settings.

One function, :func:`decode_action`, turns an agent's action into a keep ratio and bit-widths:

* the keep ratio is linear in ``[min_keep, max_keep]`` (AMC);
* bit-widths use HAQ's equal-width bins over ``[min_bits, max_bits]``: with ``u`` the action
  mapped to ``[0, 1]``, ``bits = round((max - min + 1) * u + min - 0.5)`` rounded half up and
  clipped to ``[min_bits, max_bits]``, so every bit-width gets the same share of the interval.

The environment then rounds the keep ratio to whole channels and clips it against the budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from autoprune.errors import AutopruneError
from autoprune.policy import FLOAT_BITS

Mode = Literal["prune", "quantize", "joint"]
MODES: tuple[Mode, ...] = ("prune", "quantize", "joint")
ACTION_DIMS: dict[str, int] = {"prune": 1, "quantize": 2, "joint": 3}
"""Action length per mode: keep ratio; (w_bits, a_bits); (keep ratio, w_bits, a_bits)."""


@dataclass(frozen=True)
class LayerAction:
    """A decoded action: what the agent asks for one layer, before rounding and clipping.

    Attributes:
        keep_ratio: Fraction of output channels to keep (1.0 when the mode does not prune).
        w_bits: Weight bits (``FLOAT_BITS`` when the mode does not quantize).
        a_bits: Input activation bits (``FLOAT_BITS`` when the mode does not quantize).
    """

    keep_ratio: float = 1.0
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


def decode_action(
    action: np.ndarray,
    mode: Mode,
    *,
    min_keep: float,
    max_keep: float,
    min_bits: int,
    max_bits: int,
) -> LayerAction:
    """Decode one action of ``mode`` into a :class:`LayerAction`.

    Args:
        action: Array of ``ACTION_DIMS[mode]`` finite values; values outside ``[-1, 1]`` are
            clipped. Layout: prune ``[keep]``, quantize ``[w, a]``, joint ``[keep, w, a]``.
        mode: ``prune``, ``quantize`` or ``joint``.
        min_keep: Keep ratio of action -1.
        max_keep: Keep ratio of action +1.
        min_bits: Smallest bit-width (the lowest bin).
        max_bits: Largest bit-width (the highest bin).

    Raises:
        AutopruneError: When the action has the wrong length or a non-finite value.

    Example:
        >>> decode_action(np.array([0.0, -1.0, 1.0]), "joint",
        ...               min_keep=0.5, max_keep=1.0, min_bits=2, max_bits=8)
        LayerAction(keep_ratio=0.75, w_bits=2, a_bits=8)
    """
    values = np.asarray(action, dtype=np.float64).reshape(-1)
    if values.size != ACTION_DIMS[mode]:
        raise AutopruneError(
            f"action has {values.size} values but mode '{mode}' takes {ACTION_DIMS[mode]}; "
            "sample actions from env.action_space"
        )
    if not np.all(np.isfinite(values)):
        raise AutopruneError(f"action {values.tolist()} is not finite; pass values in [-1, 1]")
    units = [unit_interval(float(v)) for v in values]
    if mode == "prune":
        return LayerAction(keep_ratio=_keep(units[0], min_keep, max_keep))
    if mode == "quantize":
        return LayerAction(
            w_bits=bits_from_unit(units[0], min_bits, max_bits),
            a_bits=bits_from_unit(units[1], min_bits, max_bits),
        )
    return LayerAction(
        keep_ratio=_keep(units[0], min_keep, max_keep),
        w_bits=bits_from_unit(units[1], min_bits, max_bits),
        a_bits=bits_from_unit(units[2], min_bits, max_bits),
    )


def _keep(u: float, min_keep: float, max_keep: float) -> float:
    return min_keep + u * (max_keep - min_keep)
