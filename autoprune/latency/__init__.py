"""Latency measured on this machine: the timer, the lookup table, the fitted model, its check.

One timer serves every measurement: :func:`time_calls` (interleaved rounds of calls) inside
:func:`pinned` (the measuring thread on fixed CPUs), keeping a :func:`quantile` of the calls,
the profile's for the cost model and the median for deployed models. On it:

- single-layer graphs (:class:`LayerKey`, with the :class:`Epilogue` of operators that follow
  each layer in its model) timed by ONNX Runtime's profiler (:func:`measure_together`) and
  cached in a :class:`LatencyTable` per machine and
  :class:`~autoprune.cost.MeasurementSettings` (a measured profile's ``measurement``);
- :class:`MeasuredCostModel`, the cost model of ``measured`` profiles, which sums those
  timings through a :class:`LayerSumLine` line; :func:`build_cost_model` gives the cost
  model of any profile (roofline ones come from :mod:`autoprune.cost`);
- :func:`fit_latency_model`: a network's epilogues and layer-sum line, fitted on randomly
  pruned versions timed whole; :func:`validate_latency` checks predictions on others;
- :func:`measure_latency` and :func:`compare_latency`: deployed (exported) models, for
  ``apply``, the CLI and the benchmarks.

This package builds on :mod:`autoprune.cost` (profiles, reports) and :mod:`autoprune.export`
(ONNX files); neither imports it.

Example:
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
    >>> stats = measure_latency(model, (1, 8, 8), runtime="torch", repeats=3)
    >>> stats.p10_ms <= stats.median_ms <= stats.p90_ms
    True
"""

from autoprune.latency._epilogues import Epilogue, graph_epilogues, model_epilogues
from autoprune.latency._fit import (
    CALIBRATION_SEED,
    LINE_VERSIONS,
    WholeModelTimes,
    fit_latency_model,
    measure_whole_models,
    model_id,
    random_prune_policies,
)
from autoprune.latency._from_profile import build_cost_model
from autoprune.latency._kernels import KernelTiming, measure_together
from autoprune.latency._layer_graphs import LayerKey, derive_pads, layer_onnx, layer_torch
from autoprune.latency._layer_sum_line import LayerSumLine, fit_layer_sum_line
from autoprune.latency._lut import LatencyTable
from autoprune.latency._measure import (
    measure_onnx_latency,
    measure_torch_latency,
    pinned,
    quantile,
    time_calls,
)
from autoprune.latency._measured import MeasuredCostModel, chained_times
from autoprune.latency._model_timing import LatencyStats, measure_latency
from autoprune.latency._speedup import compare_latency
from autoprune.latency._validation import (
    LatencyValidation,
    mape,
    spearman,
    validate_latency,
    validate_predictions,
)

__all__ = [
    "CALIBRATION_SEED",
    "LINE_VERSIONS",
    "Epilogue",
    "KernelTiming",
    "LayerSumLine",
    "LatencyStats",
    "LatencyTable",
    "LatencyValidation",
    "LayerKey",
    "MeasuredCostModel",
    "WholeModelTimes",
    "build_cost_model",
    "chained_times",
    "compare_latency",
    "derive_pads",
    "fit_layer_sum_line",
    "fit_latency_model",
    "graph_epilogues",
    "layer_onnx",
    "layer_torch",
    "mape",
    "measure_latency",
    "measure_onnx_latency",
    "measure_torch_latency",
    "measure_together",
    "measure_whole_models",
    "model_epilogues",
    "model_id",
    "pinned",
    "quantile",
    "random_prune_policies",
    "spearman",
    "time_calls",
    "validate_latency",
    "validate_predictions",
]
