from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from autoprune.core.errors import AutopruneError
from autoprune.core.policy import LayerPolicy
from autoprune.core.specs import LayerSpec
from autoprune.latency import LayerKey, derive_pads, layer_onnx, layer_torch
from autoprune.latency._layer_graphs import overhead_onnx

from ._specs import conv_spec, linear_spec

INT8 = LayerPolicy(w_bits=8, a_bits=8)


def _run(model: bytes, key: LayerKey, optimized: Path | None = None) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    if optimized is not None:
        options.optimized_model_filepath = str(optimized)
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    dtype = np.float32 if key.precision == "fp32" else np.uint8
    feed = {i.name: np.ones(i.shape, np.float32) for i in session.get_inputs()[1:]}
    return session.run(None, {"x": np.ones(key.input_shape, dtype), **feed})


def _layer_output(model: bytes) -> tuple[tuple[int, ...], int]:
    """Shape and element type of the layer's output ``y`` (what the sink reads)."""
    inferred = onnx.shape_inference.infer_shapes(onnx.load_from_string(model), strict_mode=True)
    info = next(v for v in inferred.graph.value_info if v.name == "y")
    dims = tuple(d.dim_value for d in info.type.tensor_type.shape.dim)
    return dims, info.type.tensor_type.elem_type


def test_derive_pads_recovers_pytorch_padding() -> None:
    for size, k, s, p in itertools.product((7, 8, 28), (1, 3, 5), (1, 2), (0, 1, 2)):
        if p > k // 2:
            continue
        out = (size + 2 * p - k) // s + 1
        top, left, bottom, right = derive_pads((size, size), (out, out), (k, k), (s, s))
        assert (size + top + bottom - k) // s + 1 == out
        assert (top, left) == (bottom, right)
        if s == 1:
            assert top == p


def test_derive_pads_handles_asymmetric_and_rejects_impossible_shapes() -> None:
    assert derive_pads((8, 8), (8, 8), (4, 4), (1, 1)) == (1, 1, 2, 2)
    assert derive_pads((28, 28), (14, 14), (3, 3), (2, 2)) == (1, 1, 1, 1)
    with pytest.raises(AutopruneError, match="cannot give output"):
        derive_pads((8, 8), (4, 4), (3, 3), (1, 1))


def test_layer_key_captures_shape_precision_and_batch() -> None:
    spec = conv_spec("conv", 4, 8, 8, stride=2)
    key = LayerKey.from_spec(spec, INT8, batch_size=1)
    assert str(key) == "conv|i4|o8|k3x3|s2x2|g1|hw8x8|p1x1x1x1|int8|b1"
    assert key.input_shape == (1, 4, 8, 8)
    assert LayerKey.from_spec(spec, LayerPolicy(w_bits=4, a_bits=32), batch_size=1).precision == (
        "fp32"
    )
    assert LayerKey.from_spec(spec, INT8, batch_size=1, int8=False).precision == "fp32"
    assert str(LayerKey.from_spec(spec, INT8, batch_size=4)) != str(key)
    fc = LayerKey.from_spec(linear_spec("fc", 32, 10), INT8, batch_size=2)
    assert fc.input_shape == (2, 32) and fc.pads == (0, 0, 0, 0)


SPECS = [
    conv_spec("conv", 4, 8, 9, stride=2),
    conv_spec("dw", 8, 8, 8, groups=8),
    conv_spec("grouped", 8, 12, 6, groups=4, k=1),
    linear_spec("fc", 32, 10),
    LayerSpec("same4", "conv", 2, 3, (4, 4), (1, 1), 1, (8, 8), (8, 8), 3 * 2 * 16 * 64, 99, True),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
@pytest.mark.parametrize("policy", [LayerPolicy(), INT8], ids=["fp32", "int8"])
def test_single_layer_onnx_graphs_produce_the_layer_output_shape(
    spec: LayerSpec, policy: LayerPolicy
) -> None:
    key = LayerKey.from_spec(spec, policy, batch_size=2)
    model = layer_onnx(key)
    onnx.checker.check_model(onnx.load_from_string(model))
    (sink,) = _run(model, key)
    assert sink.shape == ()  # the sink reduces the layer output to one value
    expected = (
        (2, spec.out_channels) if spec.kind == "linear" else (2, spec.out_channels, *spec.out_hw)
    )
    shape, elem = _layer_output(model)
    assert shape == expected == key.output_shape
    assert elem == (onnx.TensorProto.FLOAT if policy.w_bits == 32 else onnx.TensorProto.UINT8)


@pytest.mark.parametrize("spec, fused", [(SPECS[0], "QLinearConv"), (SPECS[3], "QGemm")])
def test_int8_graphs_run_as_fused_integer_kernels(
    spec: LayerSpec, fused: str, tmp_path: Path
) -> None:
    key = LayerKey.from_spec(spec, INT8, batch_size=1)
    optimized = tmp_path / "optimized.onnx"
    _run(layer_onnx(key), key, optimized)
    ops = {node.op_type for node in onnx.load(str(optimized)).graph.node}
    assert fused in ops
    assert not ops & {"Conv", "Gemm", "DequantizeLinear"}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_torch_layers_produce_the_layer_output_shape(spec: LayerSpec) -> None:
    key = LayerKey.from_spec(spec, LayerPolicy(), batch_size=1)
    with torch.no_grad():
        out = layer_torch(key)(torch.zeros(key.input_shape))
    assert tuple(out.shape[1:]) == (
        (spec.out_channels,) if spec.kind == "linear" else (spec.out_channels, *spec.out_hw)
    )


def test_overhead_graph_is_a_single_cheap_op() -> None:
    model = onnx.load_from_string(overhead_onnx(3))
    assert [node.op_type for node in model.graph.node] == ["Relu"]
