"""Cost models: size, energy and analytic (roofline) latency of a pruned, quantized model.

Callers pass :class:`~autoprune.core.specs.LayerSpec` objects that already reflect pruning
(fewer channels, fewer MACs) and per-layer :class:`~autoprune.core.policy.LayerPolicy` settings
(bits, sparsity); no model is touched here. A cost model alone knows no weights, so its
``size`` is the analytic estimate; :class:`ApzSizeModel` predicts the real ``.apz`` file
from the trained weights, and the evaluator puts that number in the report
(``CostReport.apz_bytes``, ``size_source == "apz"``).

Latency measured on this machine (lookup tables, the measured cost model, the timer) lives in
:mod:`autoprune.latency`, which builds on this package; so does
:func:`~autoprune.latency.build_cost_model`, the cost model of any profile. A new cost model
supplies per-layer latency to :func:`assemble_report`, which prices sizes and energy.

Example:
    >>> from autoprune.core.specs import LayerSpec
    >>> from autoprune.core.policy import LayerPolicy
    >>> spec = LayerSpec("fc", "linear", 256, 256, (1, 1), (1, 1), 1, (1, 1), (1, 1),
    ...                  65536, 65792, False)
    >>> model = RooflineCostModel(load_profile("bitfusion"))
    >>> fp32 = model.estimate([spec], {}).metric("size")
    >>> int4 = model.estimate([spec], {"fc": LayerPolicy(w_bits=4, a_bits=8)}).metric("size")
    >>> round(fp32 / int4, 1)
    7.6
"""

from autoprune.cost._apz_size import ApzSizeModel, ApzSizeReport
from autoprune.cost._assemble import LatencyFn, assemble_report, resolve_policies
from autoprune.cost._energy import EnergyTable, MemoryLevel
from autoprune.cost._profile import (
    MEASURED_PROFILE,
    HardwareProfile,
    MeasurementSettings,
    Runtime,
    load_profile,
    profile_names,
)
from autoprune.cost._report import METRICS, Bound, CostModel, CostReport, LayerCost
from autoprune.cost._roofline import RooflineCostModel
from autoprune.cost._size import LayerSizes

__all__ = [
    "METRICS",
    "ApzSizeModel",
    "ApzSizeReport",
    "Bound",
    "CostModel",
    "CostReport",
    "EnergyTable",
    "HardwareProfile",
    "LatencyFn",
    "LayerCost",
    "LayerSizes",
    "MeasurementSettings",
    "MemoryLevel",
    "RooflineCostModel",
    "Runtime",
    "assemble_report",
    "MEASURED_PROFILE",
    "load_profile",
    "profile_names",
    "resolve_policies",
]
