"""Cost models: size, energy and latency of a pruned, quantized model, layer by layer.

Callers pass :class:`~autoprune.specs.LayerSpec` objects that already reflect pruning
(fewer channels, fewer MACs) and per-layer :class:`~autoprune.policy.LayerPolicy` settings
(bits, sparsity); no model is touched here. A cost model alone knows no weights, so its
``size`` is the analytic estimate; :class:`ApzSizeModel` predicts the real ``.apz`` file
from the trained weights, and the evaluator puts that number in the report
(``CostReport.apz_bytes``, ``size_source == "apz"``).

Example:
    >>> from autoprune.specs import LayerSpec
    >>> from autoprune.policy import LayerPolicy
    >>> spec = LayerSpec("fc", "linear", 256, 256, (1, 1), (1, 1), 1, (1, 1), (1, 1),
    ...                  65536, 65792, False)
    >>> model = build_cost_model(load_profile("bitfusion"))
    >>> fp32 = model.estimate([spec], {}).metric("size")
    >>> int4 = model.estimate([spec], {"fc": LayerPolicy(w_bits=4, a_bits=8)}).metric("size")
    >>> round(fp32 / int4, 1)
    7.6
"""

from autoprune.cost._apz_size import ApzSizeModel, ApzSizeReport
from autoprune.cost._build import build_cost_model
from autoprune.cost._energy import EnergyTable
from autoprune.cost._layer_graphs import LayerKey, derive_pads
from autoprune.cost._lut import LatencyTable, RuntimeSettings
from autoprune.cost._measure import measure_onnx_latency, measure_torch_latency
from autoprune.cost._measured import MeasuredCostModel
from autoprune.cost._profile import HardwareProfile, load_profile, profile_names
from autoprune.cost._report import METRICS, CostModel, CostReport, LayerCost
from autoprune.cost._roofline import RooflineCostModel

__all__ = [
    "METRICS",
    "ApzSizeModel",
    "ApzSizeReport",
    "CostModel",
    "CostReport",
    "EnergyTable",
    "HardwareProfile",
    "LatencyTable",
    "LayerCost",
    "LayerKey",
    "MeasuredCostModel",
    "RooflineCostModel",
    "RuntimeSettings",
    "build_cost_model",
    "derive_pads",
    "load_profile",
    "measure_onnx_latency",
    "measure_torch_latency",
    "profile_names",
]
