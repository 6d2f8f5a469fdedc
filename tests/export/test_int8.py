"""Static int8 quantization: QDQ graph, agreement with fp32, size, excluded layers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from autoprune.core.errors import AutopruneError
from autoprune.export import export_onnx, onnx_node_names_for, quantize_onnx_int8

Batches = Callable[[int, int, int], list[np.ndarray]]


@pytest.fixture
def fp32_path(trained_net: nn.Module, tmp_path: Path) -> Path:
    return export_onnx(trained_net, torch.zeros(1, 1, 8, 8), tmp_path / "m.onnx")


def _logits(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def _weight_types(path: Path) -> dict[str, int]:
    """ONNX data type of the weight feeding each Conv/Gemm node (through a DequantizeLinear)."""
    graph = onnx.load(str(path)).graph
    initializers = {init.name: init.data_type for init in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    types = {}
    for node in graph.node:
        if node.op_type in ("Conv", "Gemm"):
            weight = node.input[1]
            if weight in producers and producers[weight].op_type == "DequantizeLinear":
                weight = producers[weight].input[0]
            types[node.name] = initializers[weight]
    return types


def test_int8_is_qdq_smaller_and_agrees_with_fp32(
    fp32_path: Path, toy_batches: Batches, tmp_path: Path
) -> None:
    int8_path = quantize_onnx_int8(fp32_path, tmp_path / "m.int8.onnx", toy_batches(4, 32, seed=5))
    ops = {node.op_type for node in onnx.load(str(int8_path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert set(_weight_types(int8_path).values()) == {onnx.TensorProto.INT8}
    assert int8_path.stat().st_size < 0.7 * fp32_path.stat().st_size
    x = toy_batches(1, 400, seed=6)[0]
    reference, quantized = _logits(fp32_path, x), _logits(int8_path, x)
    assert (reference.argmax(1) == quantized.argmax(1)).mean() >= 0.95


def _optimized_ops(path: Path, tmp_path: Path) -> set[str]:
    """Operator types after ONNX Runtime's graph optimisations (where QDQ groups are fused)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return {node.op_type for node in onnx.load(str(tmp_path / "optimized.onnx")).graph.node}


def test_every_conv_and_residual_add_runs_as_an_integer_kernel(
    fp32_path: Path, toy_batches: Batches, tmp_path: Path
) -> None:
    # The stem output feeds both the depthwise conv and the residual add: with int8
    # activations ONNX Runtime leaves such convs in float; uint8 (the default) fuses them.
    int8_path = quantize_onnx_int8(fp32_path, tmp_path / "q.onnx", toy_batches(2, 16, 7))
    ops = _optimized_ops(int8_path, tmp_path)
    assert {"QLinearConv", "QLinearAdd", "QGemm"} <= ops
    assert not ops & {"Conv", "Add", "Gemm"}


def test_int8_activations_and_reduced_range_also_work(
    fp32_path: Path, toy_batches: Batches, tmp_path: Path
) -> None:
    int8_path = quantize_onnx_int8(
        fp32_path,
        tmp_path / "q.onnx",
        toy_batches(2, 16, 7),
        activation_type="int8",
        reduce_range=True,
        per_channel=False,
    )
    x = toy_batches(1, 100, 11)[0]
    agreement = (_logits(fp32_path, x).argmax(1) == _logits(int8_path, x).argmax(1)).mean()
    assert agreement >= 0.9


def test_excluded_layer_keeps_float_weights(
    fp32_path: Path, toy_batches: Batches, tmp_path: Path
) -> None:
    excluded = onnx_node_names_for(fp32_path, ["head.0"])["head.0"]
    int8_path = quantize_onnx_int8(
        fp32_path,
        tmp_path / "m.int8.onnx",
        np.concatenate(toy_batches(2, 32, seed=8)),
        exclude_nodes=excluded,
    )
    types = _weight_types(int8_path)
    assert types.pop("/head/head.0/Conv") == onnx.TensorProto.FLOAT
    assert set(types.values()) == {onnx.TensorProto.INT8}


def test_bad_inputs_raise_and_write_nothing(fp32_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "q.onnx"
    batch = [np.zeros((2, 1, 8, 8), np.float32)]
    with pytest.raises(AutopruneError, match="exclude_nodes"):
        quantize_onnx_int8(fp32_path, out, batch, exclude_nodes=["/no/Conv"])
    with pytest.raises(AutopruneError, match="calibration is empty"):
        quantize_onnx_int8(fp32_path, out, [])
    with pytest.raises(AutopruneError, match="activation_type"):
        quantize_onnx_int8(fp32_path, out, batch, activation_type="int4")  # type: ignore[arg-type]
    with pytest.raises(AutopruneError, match="does not exist"):
        quantize_onnx_int8(tmp_path / "missing.onnx", out, batch)
    assert not out.exists()
