"""Latency from a measured lookup table; sizes and energy priced like the roofline models."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from autoprune.core.policy import LayerPolicy
from autoprune.core.specs import LayerSpec
from autoprune.cost import (
    Bound,
    CostReport,
    HardwareProfile,
    LayerSizes,
    MemoryLevel,
    assemble_report,
    resolve_policies,
)
from autoprune.latency._epilogues import Epilogue
from autoprune.latency._kernels import KernelTiming
from autoprune.latency._layer_graphs import LayerKey
from autoprune.latency._layer_sum_line import LayerSumLine
from autoprune.latency._lut import LatencyTable


def chained_times(timings: Sequence[KernelTiming]) -> list[float]:
    """Each layer's time inside a chain of layers, from their single-layer timings.

    A layer that reads the blocked NCHWc layout pays its input conversion only when the
    layer before it writes plain NCHW (or it is the first), and its output conversion only
    when the next layer reads plain NCHW (or it is the last): between two blocked layers
    ONNX Runtime keeps the blocked layout.

    Example:
        >>> blocked = KernelTiming(1.0, reorder_in_ms=0.1, reorder_out_ms=0.2)
        >>> plain = KernelTiming(1.0)
        >>> chained_times([blocked, blocked, plain])
        [1.1, 1.2, 1.0]
    """
    times = []
    for index, timing in enumerate(timings):
        before = timings[index - 1] if index > 0 else None
        after = timings[index + 1] if index + 1 < len(timings) else None
        total = timing.kernel_ms
        if before is None or before.reorder_out_ms == 0:
            total += timing.reorder_in_ms
        if after is None or after.reorder_in_ms == 0:
            total += timing.reorder_out_ms
        times.append(total)
    return times


class MeasuredCostModel:
    """Per-layer latency looked up in a :class:`LatencyTable` measured on this machine.

    Each layer is timed with the operators that follow it in its model (its
    :class:`~autoprune.latency._epilogues.Epilogue`: activation, pooling, residual add), so
    ONNX Runtime fuses them as it does in the whole model; layout conversions are charged
    only where the layout really changes (:func:`chained_times`). With ONNX Runtime a layer
    whose weights and activations are both <= 8 bits is timed as an int8 QDQ graph (its
    epilogue too), else as fp32; the torch runtime times fp32 layers alone.

    The summed layer times become a latency through a :class:`LayerSumLine` fitted to
    whole-model measurements of this model (:func:`autoprune.latency._fit.fit_latency_model`);
    without one, the measured per-call overhead is added once.

    Example:
        >>> from autoprune.cost import load_profile
        >>> profile = load_profile("cpu")
        >>> table = LatencyTable(profile.measurement,
        ...                      measure=lambda keys, s: [KernelTiming(0.2) for _ in keys],
        ...                      measure_fixed=lambda s, batch_size: 0.1)
        >>> model = MeasuredCostModel(profile, table)
        >>> spec = LayerSpec("fc", "linear", 64, 10, (1, 1), (1, 1), 1, (1, 1), (1, 1),
        ...                  640, 650, False)
        >>> round(model.estimate([spec], {}).latency_ms, 3)
        0.3
    """

    def __init__(
        self,
        profile: HardwareProfile,
        table: LatencyTable,
        epilogues: Mapping[str, Epilogue] | None = None,
        line: LayerSumLine | None = None,
    ) -> None:
        assert profile.kind == "measured", "MeasuredCostModel needs a measured profile"
        self.profile = profile
        self.table = table
        self._keys: dict[tuple[LayerSpec, bool], LayerKey] = {}
        self._epilogues: dict[str, Epilogue] = dict(epilogues or {})
        self.line = line
        """Line from summed layer times to model latency; ``None``: add the call overhead."""

    @property
    def epilogues(self) -> dict[str, Epilogue]:
        """Operators after each layer in the model being priced, by layer name."""
        return self._epilogues

    @epilogues.setter
    def epilogues(self, value: Mapping[str, Epilogue]) -> None:
        self._epilogues = dict(value)
        self._keys.clear()

    def keys(
        self, specs: Sequence[LayerSpec], layers: Mapping[str, LayerPolicy]
    ) -> dict[str, LayerKey]:
        """The table key of every layer under ``layers``."""
        policies = resolve_policies(specs, layers)
        return {
            spec.name: self._key(spec, policy.w_bits <= 8 and policy.a_bits <= 8)
            for spec, policy in zip(specs, policies, strict=True)
        }

    def _key(self, spec: LayerSpec, low_bits: bool) -> LayerKey:
        """The key of one layer, memoised: a search prices the same shapes many times."""
        memo = (spec, low_bits)
        key = self._keys.get(memo)
        if key is None:
            int8 = self.table.settings.runtime == "onnxruntime"
            key = LayerKey.from_spec(
                spec,
                LayerPolicy(w_bits=8, a_bits=8) if low_bits else LayerPolicy(),
                batch_size=self.table.batch_size,
                int8=int8,
                epilogue=self._epilogues.get(spec.name) if int8 else None,
            )
            self._keys[memo] = key
        return key

    def summed_ms(self, specs: Sequence[LayerSpec], layers: Mapping[str, LayerPolicy]) -> float:
        """Sum of the layers' chained times (what the layer-sum line is fitted on)."""
        return sum(chained_times(self.table.timings(list(self.keys(specs, layers).values()))))

    def estimate(self, specs: Sequence[LayerSpec], layers: Mapping[str, LayerPolicy]) -> CostReport:
        """Price ``specs`` (already pruned); unseen layer shapes are measured first."""
        keys = self.keys(specs, layers)
        chained = chained_times(self.table.timings(list(keys.values())))
        times = dict(zip(keys, chained, strict=True))
        line = self.line or LayerSumLine(offset_ms=self.table.overhead_ms)

        def latency(
            spec: LayerSpec, policy: LayerPolicy, sizes: LayerSizes, level: MemoryLevel
        ) -> tuple[float, Bound]:
            return line.scale * times[spec.name], "measured"

        return assemble_report(specs, layers, self.profile, latency, line.offset_ms)
