"""What a cost model returns: per-layer costs and model totals, and the model interface."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal, Protocol

from autoprune.core.errors import unknown_name
from autoprune.core.policy import LayerPolicy
from autoprune.core.specs import LayerSpec

Bound = Literal["compute", "memory", "measured"]

METRICS: tuple[str, ...] = ("macs", "flops", "params", "size", "bits", "latency", "energy")
"""Keys accepted by :meth:`CostReport.metric`."""
SizeSource = Literal["apz", "analytic"]


@dataclass(frozen=True)
class LayerCost:
    """Cost of one layer after pruning and quantization.

    Bytes of weights are per model; activation bytes, MACs and energy are per sample and
    latency is per forward pass of the profile's batch (see :class:`CostReport`).

    Attributes:
        name: Module name.
        macs: Multiply-accumulates for one sample (dense; sparsity does not remove MACs).
        params: Weights and biases left after pruning.
        weight_bits: Weight bit-width (32 = float).
        act_bits: Input activation bit-width (32 = float).
        weight_bytes: Dense weights at ``weight_bits``, float biases, scales or codebook.
        coded_bytes: Estimated sparse coded form (values, relative indices, fillers,
            codebook); equal to ``weight_bytes`` when the layer has no sparsity.
        act_bytes: Input plus output activations of one sample at ``act_bits``.
        latency_ms: Time of this layer for one batch (fixed overhead excluded).
        energy_mj: ``compute_energy_mj + memory_energy_mj`` for one batch.
        compute_energy_mj: MAC energy.
        memory_energy_mj: Energy of reading the stored weights and the activations.
        bound: ``compute`` or ``memory`` for roofline models, ``measured`` for a lookup table.
        yang_bits: ``weight_bits`` x nonzero weights (Yang et al. 2020), in bits.
    """

    name: str
    macs: int
    params: int
    weight_bits: int
    act_bits: int
    weight_bytes: int
    coded_bytes: int
    act_bytes: int
    latency_ms: float
    energy_mj: float
    compute_energy_mj: float
    memory_energy_mj: float
    bound: Bound
    yang_bits: int = 0

    @property
    def stored_bytes(self) -> int:
        """Bytes the deployed layer keeps: the coded form when it is smaller."""
        return min(self.weight_bytes, self.coded_bytes)


@dataclass(frozen=True)
class CostReport:
    """Per-layer costs of a compressed model and their totals.

    ``macs`` are per sample; ``latency_ms`` and ``energy_mj`` are for one forward pass of
    ``batch_size`` samples. The ``flops`` metric equals ``macs`` (one MAC counted as one
    FLOP, as AMC reported it), so budgets in FLOPs and MACs mean the same number.

    Two model sizes: ``size`` is the bytes of the ``.apz`` file ``apply`` writes
    (:attr:`apz_bytes`, predicted from the trained weights by
    :class:`~autoprune.cost.ApzSizeModel`) when the report has it, else the analytic
    :attr:`stored_bytes` (cost models alone have no weights); :attr:`size_source` says which.
    ``bits`` is the count of Yang et al. 2020, Σ weight bits x nonzero weights, in bits
    (no indices, codebooks, biases or header).

    Example:
        >>> layer = LayerCost("fc", 12, 15, 8, 8, 27, 27, 7, 0.5, 1e-6, 4e-7, 6e-7, "memory")
        >>> report = CostReport(layers=(layer,), profile="demo", overhead_ms=0.1)
        >>> report.metric("flops"), round(report.latency_ms, 3)
        (12, 0.6)
    """

    layers: tuple[LayerCost, ...]
    profile: str
    batch_size: int = 1
    overhead_ms: float = 0.0
    """Fixed time per inference; a calibrated measured model may make it negative (its
    single-layer timings then overstate what the layers cost inside the model)."""
    memory_level: Literal["sram", "dram"] = "dram"
    apz_bytes: int | None = None
    """Predicted bytes of the ``.apz`` file (None when the weights are unknown)."""

    columns: ClassVar[tuple[str, ...]] = (
        "layer",
        "MACs",
        "params",
        "w/a bits",
        "bytes",
        "latency ms",
        "energy mJ",
        "bound",
    )
    """Header of :meth:`to_rows`."""

    @property
    def macs(self) -> int:
        """Total MACs per sample."""
        return sum(layer.macs for layer in self.layers)

    @property
    def params(self) -> int:
        """Total parameters of the compressible layers."""
        return sum(layer.params for layer in self.layers)

    @property
    def weight_bytes(self) -> int:
        """Total dense weight bytes."""
        return sum(layer.weight_bytes for layer in self.layers)

    @property
    def coded_bytes(self) -> int:
        """Total estimated coded bytes (dense bytes for layers without sparsity)."""
        return sum(layer.coded_bytes for layer in self.layers)

    @property
    def stored_bytes(self) -> int:
        """Total bytes deployed: per layer the smaller of the dense and coded forms."""
        return sum(layer.stored_bytes for layer in self.layers)

    @property
    def size_bytes(self) -> int:
        """The ``size`` metric: :attr:`apz_bytes` when known, else :attr:`stored_bytes`."""
        return self.stored_bytes if self.apz_bytes is None else self.apz_bytes

    @property
    def size_source(self) -> SizeSource:
        """``apz`` (predicted file bytes) or ``analytic`` (weight-free estimate)."""
        return "analytic" if self.apz_bytes is None else "apz"

    @property
    def yang_bits(self) -> int:
        """Σ weight bits x nonzero weights over the layers (Yang et al. 2020), in bits."""
        return sum(layer.yang_bits for layer in self.layers)

    @property
    def act_bytes(self) -> int:
        """Total activation bytes per sample."""
        return sum(layer.act_bytes for layer in self.layers)

    @property
    def latency_ms(self) -> float:
        """Sum of the layers' latencies plus the fixed per-inference overhead."""
        return sum(layer.latency_ms for layer in self.layers) + self.overhead_ms

    @property
    def energy_mj(self) -> float:
        """Total energy of one forward pass."""
        return sum(layer.energy_mj for layer in self.layers)

    def metric(self, key: str) -> float:
        """One total by name: ``macs``, ``flops`` (== macs), ``params``, ``size`` (bytes, see
        :attr:`size_bytes`), ``bits`` (Yang's count), ``latency`` (ms) or ``energy`` (mJ)."""
        values: dict[str, float] = {
            "macs": self.macs,
            "flops": self.macs,
            "params": self.params,
            "size": self.size_bytes,
            "bits": self.yang_bits,
            "latency": self.latency_ms,
            "energy": self.energy_mj,
        }
        if key not in values:
            raise unknown_name("cost metric", key, METRICS)
        return values[key]

    def totals(self) -> dict[str, float]:
        """All totals as a flat dictionary."""
        return {
            "macs": self.macs,
            "params": self.params,
            "weight_bytes": self.weight_bytes,
            "coded_bytes": self.coded_bytes,
            "stored_bytes": self.stored_bytes,
            "size_bytes": self.size_bytes,
            "yang_bits": self.yang_bits,
            "act_bytes": self.act_bytes,
            "latency_ms": self.latency_ms,
            "energy_mj": self.energy_mj,
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form with the totals and every layer."""
        return {
            "profile": self.profile,
            "batch_size": self.batch_size,
            "overhead_ms": self.overhead_ms,
            "memory_level": self.memory_level,
            "size_source": self.size_source,
            "totals": self.totals(),
            "layers": [asdict(layer) for layer in self.layers],
        }

    def to_rows(self) -> list[tuple[str, ...]]:
        """String rows matching :attr:`columns`, one per layer and a final total row."""
        rows = [
            (
                layer.name,
                f"{layer.macs:,}",
                f"{layer.params:,}",
                f"{layer.weight_bits}/{layer.act_bits}",
                f"{layer.stored_bytes:,}",
                f"{layer.latency_ms:.4f}",
                f"{layer.energy_mj:.4g}",
                layer.bound,
            )
            for layer in self.layers
        ]
        total = (
            "total",
            f"{self.macs:,}",
            f"{self.params:,}",
            "",
            f"{self.stored_bytes:,}",
            f"{self.latency_ms:.4f}",
            f"{self.energy_mj:.4g}",
            self.memory_level,
        )
        return [*rows, total]


class CostModel(Protocol):
    """Anything that prices a pruned, quantized model layer by layer."""

    def estimate(self, specs: Sequence[LayerSpec], layers: Mapping[str, LayerPolicy]) -> CostReport:
        """Cost of ``specs`` (already reflecting pruning) under per-layer ``layers`` settings.

        Layers missing from ``layers`` are priced as float (``LayerPolicy()``).
        """
        ...
