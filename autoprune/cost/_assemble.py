"""Shared pricing of sizes and energy; each cost model only supplies per-layer latency."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from autoprune.core.errors import AutopruneError
from autoprune.core.policy import LayerPolicy
from autoprune.core.specs import LayerSpec
from autoprune.cost._energy import MemoryLevel, memory_level
from autoprune.cost._profile import HardwareProfile
from autoprune.cost._report import Bound, CostReport, LayerCost
from autoprune.cost._size import LayerSizes, layer_sizes

LatencyFn = Callable[[LayerSpec, LayerPolicy, LayerSizes, MemoryLevel], tuple[float, Bound]]
"""Per-layer latency in ms for one batch and what bounds it."""

PJ_PER_MJ = 1e9


def resolve_policies(
    specs: Sequence[LayerSpec], layers: Mapping[str, LayerPolicy]
) -> list[LayerPolicy]:
    """One checked policy per spec; missing layers are float, unknown names are an error."""
    names = {spec.name for spec in specs}
    unknown = sorted(name for name in layers if name not in names)
    if unknown:
        raise AutopruneError(
            f"policy names layers the specs do not have: {', '.join(unknown)}; "
            "price the policy with the specs of the model it was made for"
        )
    policies = [layers.get(spec.name, LayerPolicy()) for spec in specs]
    for spec, policy in zip(specs, policies, strict=True):
        policy.check(spec.name)
    return policies


def assemble_report(
    specs: Sequence[LayerSpec],
    layers: Mapping[str, LayerPolicy],
    profile: HardwareProfile,
    latency: LatencyFn,
    overhead_ms: float,
) -> CostReport:
    """Price every layer: bytes, memory level of the whole model, energy and latency.

    The model's stored weights (coded form where smaller) decide the memory level for all
    layers: on chip when their total fits ``profile.sram_bytes``, else DRAM. Energy for one
    batch is ``B * MACs * mac_pj`` plus ``(stored weight bits + B * activation bits)`` times
    the level's energy per bit.
    """
    policies = resolve_policies(specs, layers)
    sizes = [layer_sizes(spec, policy) for spec, policy in zip(specs, policies, strict=True)]
    level = memory_level(sum(s.stored_bytes for s in sizes), profile.sram_bytes)
    bit_pj = profile.energy.bit_pj(level, profile.sram_bytes)
    batch = profile.batch_size
    costs = []
    for spec, policy, size in zip(specs, policies, sizes, strict=True):
        compute_pj = batch * spec.macs * profile.energy.mac_pj(policy.w_bits, policy.a_bits)
        memory_pj = (size.stored_bytes + batch * size.act_bytes) * 8 * bit_pj
        latency_ms, bound = latency(spec, policy, size, level)
        costs.append(
            LayerCost(
                name=spec.name,
                macs=spec.macs,
                params=spec.params,
                weight_bits=policy.w_bits,
                act_bits=policy.a_bits,
                weight_bytes=size.weight_bytes,
                coded_bytes=size.coded_bytes,
                act_bytes=size.act_bytes,
                latency_ms=latency_ms,
                energy_mj=(compute_pj + memory_pj) / PJ_PER_MJ,
                compute_energy_mj=compute_pj / PJ_PER_MJ,
                memory_energy_mj=memory_pj / PJ_PER_MJ,
                bound=bound,
                yang_bits=size.yang_bits,
            )
        )
    return CostReport(
        layers=tuple(costs),
        profile=profile.name,
        batch_size=batch,
        overhead_ms=overhead_ms,
        memory_level=level,
    )
