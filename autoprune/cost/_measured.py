"""Latency from a measured lookup table; sizes and energy priced like the roofline models."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from autoprune.cost._assemble import assemble_report, resolve_policies
from autoprune.cost._energy import MemoryLevel
from autoprune.cost._layer_graphs import LayerKey
from autoprune.cost._lut import LatencyTable
from autoprune.cost._profile import HardwareProfile
from autoprune.cost._report import Bound, CostReport
from autoprune.cost._size import LayerSizes
from autoprune.policy import LayerPolicy
from autoprune.specs import LayerSpec


class MeasuredCostModel:
    """Per-layer latency looked up in a :class:`LatencyTable` measured on this machine.

    Each single-layer timing includes the runtime's fixed per-call cost, which a whole model
    pays once; so a layer's latency is its timing minus the measured overhead (never below
    zero) and the report adds the overhead once. With ONNX Runtime a layer whose weights
    and activations are both <= 8 bits is timed as an int8 graph, else as fp32; the torch
    runtime times fp32 only. Operations between layers (pooling, additions) are not timed.

    Example:
        >>> from autoprune.cost._lut import RuntimeSettings
        >>> from autoprune.cost._profile import load_profile
        >>> table = LatencyTable(RuntimeSettings(), measure=lambda key, s: 0.3,
        ...                      measure_fixed=lambda s: 0.1)
        >>> model = MeasuredCostModel(load_profile("cpu"), table)
        >>> spec = LayerSpec("fc", "linear", 64, 10, (1, 1), (1, 1), 1, (1, 1), (1, 1),
        ...                  640, 650, False)
        >>> round(model.estimate([spec], {}).latency_ms, 3)
        0.3
    """

    def __init__(self, profile: HardwareProfile, table: LatencyTable) -> None:
        assert profile.kind == "measured", "MeasuredCostModel needs a measured profile"
        self.profile = profile
        self.table = table

    def keys(
        self, specs: Sequence[LayerSpec], layers: Mapping[str, LayerPolicy]
    ) -> dict[str, LayerKey]:
        """The table key of every layer under ``layers``."""
        policies = resolve_policies(specs, layers)
        int8 = self.table.settings.runtime == "onnxruntime"
        batch = self.table.settings.batch_size
        return {
            spec.name: LayerKey.from_spec(spec, policy, batch_size=batch, int8=int8)
            for spec, policy in zip(specs, policies, strict=True)
        }

    def estimate(self, specs: Sequence[LayerSpec], layers: Mapping[str, LayerPolicy]) -> CostReport:
        """Price ``specs`` (already pruned); unseen layer shapes are measured first."""
        keys = self.keys(specs, layers)
        self.table.ensure(keys.values())
        overhead = self.table.overhead_ms

        def latency(
            spec: LayerSpec, policy: LayerPolicy, sizes: LayerSizes, level: MemoryLevel
        ) -> tuple[float, Bound]:
            return max(self.table.latency_ms(keys[spec.name]) - overhead, 0.0), "measured"

        return assemble_report(specs, layers, self.profile, latency, overhead)
