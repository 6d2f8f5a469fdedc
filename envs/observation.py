"""Observations of :class:`~envs.compression_env.CompressionEnv`: one float32 vector per step.

Every feature lies in ``[0, 1]``. Static features describe the layer (AMC's embedding plus
HAQ's feature-map size and the cost model's latency and energy shares); dynamic ones describe
what the episode has decided so far (MACs, the budget left in the target's unit, the mean
density and weight bits) and the previous step. :data:`FEATURES` names them in order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from autoprune.core.policy import FLOAT_BITS, LayerPolicy
from autoprune.core.specs import LayerSpec
from autoprune.cost import CostReport

FEATURES: tuple[str, ...] = (
    "layer_index",
    "type_conv",
    "type_depthwise",
    "type_grouped",
    "type_linear",
    "in_channels",
    "out_channels",
    "stride",
    "kernel",
    "log_params",
    "log_macs",
    "input_fmap",
    "latency_share",
    "energy_share",
    "macs_reduced",
    "macs_rest",
    "budget_headroom",
    "budget_left",
    "decided_density",
    "decided_w_bits",
    "prev_keep",
    "prev_sparsity",
    "prev_w_bits",
    "prev_a_bits",
    "keep_searched",
    "sparsity_searched",
    "bits_searched",
)
"""Observation layout (see the table in :class:`~envs.compression_env.CompressionEnv`)."""
OBS_SIZE = len(FEATURES)
_KINDS = ("conv", "depthwise", "grouped", "linear")
_STATIC = FEATURES.index("macs_reduced")


def _minmax(values: Sequence[float]) -> np.ndarray:
    """Min-max normalise over the network; all zeros when every value is the same."""
    array = np.asarray(values, dtype=np.float64)
    span = float(array.max() - array.min())
    return (array - array.min()) / span if span > 0 else np.zeros_like(array)


def _shares(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    total = float(array.sum())
    return array / total if total > 0 else np.zeros_like(array)


def layer_table(specs: Sequence[LayerSpec], report: CostReport) -> np.ndarray:
    """Static features 0-13 of every layer, shape ``(len(specs), 14)``.

    Args:
        specs: Every layer of the model in execution order.
        report: The cost model's report of the uncompressed model (one entry per spec).
    """
    count = len(specs)
    table = np.zeros((count, _STATIC), dtype=np.float64)
    table[:, 0] = np.arange(count) / max(1, count - 1)
    for row, spec in enumerate(specs):
        table[row, 1 + _KINDS.index(spec.kind)] = 1.0
    table[:, 5] = _minmax([s.in_channels for s in specs])
    table[:, 6] = _minmax([s.out_channels for s in specs])
    table[:, 7] = _minmax([max(s.stride) for s in specs])
    table[:, 8] = _minmax([max(s.kernel) for s in specs])
    table[:, 9] = _minmax([math.log(max(1, s.params)) for s in specs])
    table[:, 10] = _minmax([math.log(max(1, s.macs)) for s in specs])
    table[:, 11] = _minmax([s.in_hw[0] * s.in_hw[1] for s in specs])
    by_name = {layer.name: layer for layer in report.layers}
    table[:, 12] = _shares([by_name[s.name].latency_ms for s in specs])
    table[:, 13] = _shares([by_name[s.name].energy_mj for s in specs])
    return table


def rest_macs(specs: Sequence[LayerSpec]) -> np.ndarray:
    """AMC's "FLOPs of the rest": share of the model's MACs in the layers after each layer."""
    macs = np.asarray([s.macs for s in specs], dtype=np.float64)
    after = macs[::-1].cumsum()[::-1] - macs
    total = float(macs.sum())
    return after / total if total > 0 else np.zeros_like(macs)


def bits_feature(bits: int) -> float:
    """``log2(bits) / 5``: 2 bits 0.2, 4 bits 0.4, 8 bits 0.6, float 1.0."""
    return math.log2(bits) / math.log2(FLOAT_BITS)


def headroom(
    limits: Mapping[str, float], low: Mapping[str, float], high: Mapping[str, float]
) -> float:
    """Share of the remaining range the budget still allows, for the tightest constraint.

    ``low`` and ``high`` are the costs with the current and later layers at their minimum and
    maximum. 1 means the budget cannot bind any more (or there is none), 0 that every
    remaining layer must take its minimum.
    """
    room = 1.0
    for metric, limit in limits.items():
        span = high[metric] - low[metric]
        if span > 0:
            room = min(room, (limit - low[metric]) / span)
    return min(1.0, max(0.0, room))


def budget_left(
    limits: Mapping[str, float], low: Mapping[str, float], baseline: Mapping[str, float]
) -> float:
    """Budget still free, in the target's unit, as a share of the original, tightest constraint.

    ``low`` prices the decided layers with this and every later layer at its minimum, so
    ``limit - low`` is what the remaining layers may still spend above their minimum. 1 when
    there is no budget.

    Example:
        >>> budget_left({"size": 50.0}, {"size": 30.0}, {"size": 1000.0})
        0.02
    """
    left = 1.0
    for metric, limit in limits.items():
        if baseline.get(metric, 0.0) > 0:
            left = min(left, (limit - low[metric]) / baseline[metric])
    return min(1.0, max(0.0, left))


def decided_means(
    specs: Sequence[LayerSpec], decided: Mapping[str, LayerPolicy]
) -> tuple[float, float]:
    """Parameter-weighted mean density (1 - sparsity) and weight-bits feature of ``decided``.

    ``(1.0, 1.0)`` (dense float) before any layer is decided.
    """
    weights, density, bits = 0.0, 0.0, 0.0
    for spec in specs:
        layer = decided.get(spec.name)
        if layer is None:
            continue
        weights += spec.params
        density += spec.params * (1.0 - layer.sparsity)
        bits += spec.params * bits_feature(layer.w_bits)
    if weights <= 0:
        return 1.0, 1.0
    return density / weights, bits / weights


def observation(
    static: np.ndarray,
    dynamic: Sequence[float],
    previous: LayerPolicy,
    searched: tuple[bool, bool, bool],
) -> np.ndarray:
    """Assemble one observation.

    Args:
        static: The layer's row of :func:`layer_table`.
        dynamic: ``(macs_reduced, macs_rest, budget_headroom, budget_left, decided_density,
            decided_w_bits)``.
        previous: The setting chosen at the previous step (``LayerPolicy()`` at the first).
        searched: Whether this layer's keep ratio, sparsity and bit-widths are searched.
    """
    tail = [
        previous.keep_ratio,
        previous.sparsity,
        bits_feature(previous.w_bits),
        bits_feature(previous.a_bits),
        *(float(flag) for flag in searched),
    ]
    values = np.concatenate([static, np.asarray(dynamic, dtype=np.float64), tail])
    assert values.shape == (OBS_SIZE,)
    return np.clip(values, 0.0, 1.0).astype(np.float32)
