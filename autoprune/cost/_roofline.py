"""Roofline latency for declared hardware: ``max(compute time, memory time)`` per layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from autoprune.core.policy import FLOAT_BITS, LayerPolicy
from autoprune.core.specs import LayerSpec
from autoprune.cost._assemble import assemble_report
from autoprune.cost._energy import MemoryLevel
from autoprune.cost._profile import HardwareProfile
from autoprune.cost._report import Bound, CostReport
from autoprune.cost._size import LayerSizes


def brick_width(bits: int, brick_bits: int) -> int:
    """Operand width a bit-flexible array uses: ``brick_bits * 2**k``, at least ``bits``."""
    width = brick_bits
    while width < bits:
        width *= 2
    return width


def throughput_factor(profile: HardwareProfile, w_bits: int, a_bits: int) -> float:
    """Throughput at (``w_bits``, ``a_bits``) as a multiple of the 8x8-bit peak.

    Example:
        >>> from autoprune.cost._profile import load_profile
        >>> throughput_factor(load_profile("bitfusion"), 4, 2)
        8.0
    """
    if profile.bit_scaling == "brick":
        w = brick_width(w_bits, profile.brick_bits)
        a = brick_width(a_bits, profile.brick_bits)
        return (8 / w) * (8 / a)
    if w_bits >= FLOAT_BITS or a_bits >= FLOAT_BITS:
        return 1.0 / profile.float_slowdown
    return 1.0


class RooflineCostModel:
    """Latency from a declared peak throughput and memory bandwidths; energy from the table.

    Compute time is ``B * MACs / (peak * throughput_factor)``. Memory time moves the layer's
    stored weights once and ``B`` samples of activations at their bit-widths, at the on-chip
    bandwidth when the model's stored weights fit ``sram_bytes`` and at DRAM bandwidth
    otherwise. Sparsity shrinks the bytes moved (coded form) but not the MACs (dense array).

    Example:
        >>> from autoprune.cost._profile import load_profile
        >>> from autoprune.core.specs import LayerSpec
        >>> spec = LayerSpec("fc", "linear", 1024, 1024, (1, 1), (1, 1), 1, (1, 1), (1, 1),
        ...                  1024 * 1024, 1024 * 1025, False)
        >>> report = RooflineCostModel(load_profile("bitfusion")).estimate([spec], {})
        >>> report.layers[0].bound
        'memory'
    """

    def __init__(self, profile: HardwareProfile) -> None:
        assert profile.kind == "roofline", "RooflineCostModel needs a roofline profile"
        assert profile.peak_macs_per_s and profile.dram_bandwidth_gbps
        assert profile.sram_bandwidth_gbps
        self.profile = profile

    def _latency(
        self, spec: LayerSpec, policy: LayerPolicy, sizes: LayerSizes, level: MemoryLevel
    ) -> tuple[float, Bound]:
        profile = self.profile
        assert profile.peak_macs_per_s and profile.dram_bandwidth_gbps
        assert profile.sram_bandwidth_gbps
        batch = profile.batch_size
        rate = profile.peak_macs_per_s * throughput_factor(profile, policy.w_bits, policy.a_bits)
        compute_s = batch * spec.macs / rate
        gbps = profile.sram_bandwidth_gbps if level == "sram" else profile.dram_bandwidth_gbps
        memory_s = (sizes.stored_bytes + batch * sizes.act_bytes) / (gbps * 1e9)
        bound: Bound = "compute" if compute_s >= memory_s else "memory"
        return max(compute_s, memory_s) * 1e3, bound

    def estimate(self, specs: Sequence[LayerSpec], layers: Mapping[str, LayerPolicy]) -> CostReport:
        """Price ``specs`` (already pruned) under the per-layer ``layers`` settings."""
        return assemble_report(specs, layers, self.profile, self._latency, self.profile.overhead_ms)
