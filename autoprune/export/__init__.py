"""Deployment export: ONNX (fp32 and static int8) and bundles of files.

Measured latency of exported models lives in :mod:`autoprune.latency`
(:func:`~autoprune.latency.measure_latency`, :func:`~autoprune.latency.compare_latency`).

Example:
    >>> import onnx, tempfile, torch
    >>> from pathlib import Path
    >>> from torch import nn
    >>> from autoprune.export import export_onnx, onnx_node_names_for
    >>> model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = export_onnx(model, torch.zeros(1, 1, 8, 8), Path(tmp) / "m.onnx")
    ...     onnx_node_names_for(path, ["0"])
    {'0': ['/0/Conv']}
"""

from __future__ import annotations

from autoprune.export._bundle import export_bundle
from autoprune.export._int8 import BatchReader, quantize_onnx_int8
from autoprune.export._onnx import INPUT_NAME, OUTPUT_NAME, export_onnx, onnx_node_names_for

__all__ = [
    "INPUT_NAME",
    "OUTPUT_NAME",
    "BatchReader",
    "export_bundle",
    "export_onnx",
    "onnx_node_names_for",
    "quantize_onnx_int8",
]
