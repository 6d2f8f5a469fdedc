"""Deployment export: ONNX (fp32 and static int8), bundles of files, measured latency.

Example:
    >>> from torch import nn
    >>> from autoprune.export import export_onnx, measure_latency
    >>> model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
    >>> stats = measure_latency(model, (1, 8, 8), runtime="torch", repeats=3)
    >>> stats.p10_ms <= stats.median_ms <= stats.p90_ms
    True
"""

from __future__ import annotations

from autoprune.export._bundle import export_bundle
from autoprune.export._compare import compare_latency
from autoprune.export._int8 import BatchReader, quantize_onnx_int8
from autoprune.export._latency import LatencyStats, measure_latency
from autoprune.export._onnx import INPUT_NAME, OUTPUT_NAME, export_onnx, onnx_node_names_for

__all__ = [
    "INPUT_NAME",
    "OUTPUT_NAME",
    "BatchReader",
    "LatencyStats",
    "compare_latency",
    "export_bundle",
    "export_onnx",
    "measure_latency",
    "onnx_node_names_for",
    "quantize_onnx_int8",
]
